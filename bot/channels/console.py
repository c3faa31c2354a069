"""The terminal as a channel: `ladder chat FLOW` plays the prospect's conversation.

Numbered choices, typed answers, each domain event and the Slack alert it would raise printed
as they happen. Reads stdin line by line, so a test (or a demo script) can drive it."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TextIO

from bot.app import Services
from bot.commands import ForgetRequest, parse
from bot.delivery import Deliveries
from bot.forget import FORGET, ForgetConfirmation
from bot.service import Outcome
from bot.texts import language_code
from bot.worker import Worker
from domain.clock import ScaledClock
from domain.model import (
    Action,
    Alert,
    Button,
    Conversation,
    DomainEvent,
    Event,
    LinkButton,
    LinkOpened,
    Press,
    Profile,
    Relay,
    Say,
    SendCalendar,
    SendDocument,
    SendMedia,
    Start,
)
from storage.notices import RedisNotices

CHANNEL = "console"
_WAIT = re.compile(r"^/wait\s+(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CHAT_HELP = (
    "Type an answer or a choice's number. /wait 24h moves time on (follow-ups fire), "
    "/restart, /stop, /help, /quit."
)


@dataclass
class ConsoleSender:
    """Prints what the bot says; remembers the last buttons so a number can press one."""

    out: TextIO = sys.stdout
    buttons: list[Button | LinkButton] = field(default_factory=list)
    language: str = ""  # the prospect's language as last shown with an event

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        for action in actions:
            self.show(action)

    def show(self, action: Action) -> None:
        if isinstance(action, Say):
            lines = action.text.splitlines() or [""]
            self.print(f"bot › {lines[0]}", *(f"      {line}".rstrip() for line in lines[1:]))
            if action.share_contact:  # Telegram shows a one-tap button; here the number is typed
                self.print(f"        [{action.share_contact}: type the number]")
            if action.buttons:
                self.buttons = list(action.buttons)
                for n, button in enumerate(action.buttons, 1):
                    link = f"  → {button.url}" if isinstance(button, LinkButton) else ""
                    self.print(f"        {n}) {button.label}{link}")
        elif isinstance(action, SendDocument):
            self.print(f"bot › [document] {action.path} {action.caption}".rstrip())
        elif isinstance(action, SendMedia):
            self.print(f"bot › [{action.kind}] {action.source} {action.caption}".rstrip())
        elif isinstance(action, SendCalendar):
            self.print(f"bot › [calendar invite] {action.title}, {action.start}")
        elif isinstance(action, Alert):
            pass  # shown from the conversation by `show_alert`, which has the whole picture
        elif isinstance(action, Relay):
            self.print(f"      [relayed to the sales team's Slack thread] {action.text}")

    def show_events(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            data = {k: v for k, v in event.data.items() if v}
            if data.get("language") == self.language:  # shown when it starts or changes
                del data["language"]
            self.language = data.get("language", self.language)
            detail = " ".join(f"{k}={v}" for k, v in data.items())
            self.print(f"      · {event.name} [{event.step}] {detail}".rstrip())

    def show_alerts(self, alerts: Sequence[Alert], conv: Conversation, title: str) -> None:
        """The Slack alert the step raises (one message per channel, naming every reason)."""
        by_channel: dict[str, list[str]] = {}
        for alert in alerts:
            by_channel.setdefault(alert.channel or "the default channel", []).append(alert.reason)
        for channel, reasons in by_channel.items():
            self.show_alert(channel, ", ".join(reasons), conv, title)

    def show_alert(self, channel: str, reasons: str, conv: Conversation, title: str) -> None:
        profile = conv.profile
        who = " ".join(p for p in (profile.first_name, profile.last_name) if p) or conv.id
        handle = f" (@{profile.username})" if profile.username else ""
        answers = ", ".join(f"{k}: {v}" for k, v in conv.answers.items())
        climbed = " → ".join(c.name for c in conv.commitments)
        self.print(
            f"      🔔 Slack alert to {channel}: {reasons}",
            f"         {who}{handle} · source: {conv.source or '-'} · score {conv.score}",
            f"         {title} v{conv.version}",
            f"         answers: {answers or '-'}",
            f"         commitments: {climbed or '-'}",
        )

    def print(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.out)
        self.out.flush()


class ConsoleChat:
    """One prospect talking to one flow in the terminal."""

    def __init__(
        self, services: Services, sender: ConsoleSender, conversation_id: str, profile: Profile
    ) -> None:
        self.services = services
        self.sender = sender
        self.conversation_id = conversation_id
        self.profile = profile
        services.senders[CHANNEL] = sender
        conversations = services.conversations
        self.confirmation = ForgetConfirmation(
            conversations,
            RedisNotices(services.redis),
            Deliveries(conversations, services.senders).now,
        )

    def event_for(self, line: str) -> Event | ForgetRequest:
        """A typed line as the engine sees it: a command, a pressed button, or text."""
        if line.isdigit() and 1 <= int(line) <= len(self.sender.buttons):
            button = self.sender.buttons[int(line) - 1]
            if isinstance(button, LinkButton):
                self.sender.print(f"      (you open {button.url})")
                return LinkOpened(button.step)
            return Press(button.step, button.choice)
        return parse(line)

    async def send(self, event: Event | ForgetRequest) -> Outcome | None:
        """Apply what the prospect did; /forget and its answer go to bot.forget (None)."""
        if isinstance(event, ForgetRequest):
            await self.confirmation.ask(self.conversation_id, None)
            return None
        if isinstance(event, Press) and event.step == FORGET:
            await self.confirmation.answer(self.conversation_id, None, event.choice == "yes")
            return None
        outcome = await self.services.conversations.handle(
            self.conversation_id, event, profile=self.profile, durable=False
        )
        await self.show(outcome)
        return outcome

    async def show(self, outcome: Outcome) -> None:
        await self.sender.deliver(outcome.conversation, outcome.actions)
        self.sender.show_events(outcome.events)
        alerts = [a for a in outcome.actions if isinstance(a, Alert)]
        if alerts:
            conv = outcome.conversation
            flow = await self.services.flows.compiled(conv.flow, conv.version)
            self.sender.show_alerts(alerts, conv, flow.flow.title)


def parse_wait(line: str) -> timedelta | None:
    """`/wait 24h` -> 24 hours; None when the line is not a wait."""
    found = _WAIT.match(line.strip())
    if not found:
        return None
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


async def run_chat(
    services: Services,
    worker: Worker,
    clock: ScaledClock,
    *,
    source: TextIO,
    out: TextIO,
    conversation_id: str,
    profile: Profile,
    payload: str = "",
    speed: float = 1.0,
) -> None:
    """The chat loop: start the flow, then one line in, the bot's answer out, until EOF or /quit.

    Follow-ups fire as time passes: `/wait` jumps the clock from one due follow-up to the next,
    and with speed > 1 a background tick lets them fire on their own."""
    sender = ConsoleSender(out)
    chat = ConsoleChat(services, sender, conversation_id, profile)
    echo = not source.isatty()
    flow = await services.flows.latest(services.flows.default_name)
    sender.print(f"ladderbot · {flow.flow.title} (v{flow.flow.version})", CHAT_HELP, "")
    if profile.language and language_code(profile.language) not in flow.flow.languages:
        speaks = ", ".join(flow.flow.languages)
        sender.print(f"(the flow speaks {speaks}: showing {flow.flow.default_language})", "")
    await chat.send(Start(payload))
    ticker = asyncio.create_task(_tick_forever(worker)) if speed > 1 else None
    try:
        while True:
            if not echo:
                out.write("you › ")
                out.flush()
            line = await asyncio.to_thread(source.readline)
            if line == "":
                break
            line = line.strip()
            if echo:
                sender.print(f"you › {line}")
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            wait = parse_wait(line)
            if wait is not None:
                await worker.fast_forward(clock, clock.now() + wait)
                continue
            await chat.send(chat.event_for(line))
            await worker.tick()
    finally:
        if ticker:
            ticker.cancel()


async def _tick_forever(worker: Worker) -> None:
    while True:
        await worker.tick()
        await asyncio.sleep(0.2)
