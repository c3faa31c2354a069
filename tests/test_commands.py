"""Chat commands, parsed once for every channel (bot.commands)."""

from __future__ import annotations

from bot.commands import ForgetRequest, parse
from domain.model import Help, Restart, Start, Stop, Text


def test_messages_map_to_engine_events() -> None:
    assert parse("/start") == Start("")
    assert parse("/start webinar-ladder__linkedin") == Start("webinar-ladder__linkedin")
    assert parse("/start@ladder_bot promo") == Start("promo")
    assert parse("/restart") == Restart()
    assert parse("/STOP") == Stop()
    assert parse("/help") == Help()
    assert parse("/forget") == ForgetRequest()
    assert parse("/unknown") == Help()
    assert parse("Founder") == Text("Founder")
    assert parse("ada@example.com") == Text("ada@example.com")


def test_messages_without_text_ask_for_help() -> None:
    assert parse(None) == Help()
    assert parse("   ") == Help()
