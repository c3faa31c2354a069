"""Chat commands, parsed once for every channel: what a prospect's message means.

`/start <payload>`, `/restart`, `/stop` and `/help` are engine events; `/forget` is answered by
bot.forget (ask, then erase) and never reaches the engine. A command may name the bot
(`/start@ladder_bot`, as Telegram groups send it) and is case-insensitive; an unknown command,
or a message without text (a sticker, a photo), is a call for help, so the prospect learns how
to answer. Anything else is typed text."""

from __future__ import annotations

from dataclasses import dataclass

from domain.model import Event, Help, Restart, Start, Stop, Text


@dataclass(frozen=True)
class ForgetRequest:
    """`/forget`: the prospect asks to be erased (bot.forget confirms first)."""


_EVENTS: dict[str, Event] = {"restart": Restart(), "stop": Stop(), "help": Help()}


def parse(text: str | None) -> Event | ForgetRequest:
    """What a message means: a command, typed text, or a call for help."""
    if text is None or not text.strip():
        return Help()
    if not text.startswith("/"):
        return Text(text)
    word, _, rest = text.partition(" ")
    command = word[1:].split("@", 1)[0].lower()
    if command == "start":
        return Start(rest.strip())
    if command == "forget":
        return ForgetRequest()
    return _EVENTS.get(command, Help())
