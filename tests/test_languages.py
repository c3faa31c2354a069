"""The engine speaks the prospect's language: a saved `language` answer, else the channel's,
else the flow's default; the bot's own texts come from the same language's catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import engine
from bot.flow.compile import CompiledFlow, compile_flow
from bot.flow.loader import parse_flow
from bot.texts import Builtin, text
from domain.model import Conversation, Due, Help, Profile, Say, Start, StepResult, Text

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
FLOW = """\
flow: t
default_language: en
languages: [en, de, es]
steps:
  - id: language
    ask: "Which language?"
    choices: [{label: English, value: en}, {label: Deutsch, value: de}, {label: Español, value: es}]
    save_as: language
  - id: demo
    kind: webinar
    ask: "Pick a time:"
    slots: ["2027-03-04T16:00:00+01:00"]
    reminders: [1h]
  - id: done
    kind: end
    outcome: won
    say: "Thanks!"
translations:
  de:
    steps:
      language: {ask: "Welche Sprache?", choices: [Englisch, Deutsch, Spanisch]}
      demo: {ask: "Wähle einen Termin:"}
      done: {say: "Danke!"}
  es:
    steps:
      language: {ask: "¿Qué idioma?", choices: [Inglés, Alemán, Español]}
      demo: {ask: "Elige una hora:"}
      done: {say: "¡Gracias!"}
"""


def compiled() -> CompiledFlow:
    return compile_flow(parse_flow(FLOW))


def said(result: StepResult) -> list[str]:
    return [a.text for a in result.actions if isinstance(a, Say)]


def start(flow: CompiledFlow, language: str) -> StepResult:
    profile = Profile(first_name="Pat", language=language)
    conv = Conversation(id="telegram:1", flow="t", version=1, profile=profile)
    return engine.step(flow, conv, Start(), NOW)


def test_the_channels_language_then_the_default() -> None:
    flow = compiled()
    assert said(start(flow, "de-DE")) == ["Welche Sprache?"]
    assert said(start(flow, "es")) == ["¿Qué idioma?"]
    assert said(start(flow, "fr")) == ["Which language?"]
    assert said(start(flow, "")) == ["Which language?"]


def test_a_saved_language_answer_wins_from_the_next_step_on() -> None:
    flow = compiled()
    german = start(flow, "de")
    spanish = engine.step(flow, german.conversation, Text("spanisch"), NOW)  # a German label
    assert spanish.conversation.answers["language"] == "es"
    assert said(spanish) == ["Elige una hora:"]
    helped = engine.step(flow, spanish.conversation, Help(), NOW)
    assert said(helped)[0].startswith(text(Builtin.HELP, "es"))
    unclear = engine.step(flow, spanish.conversation, Text("?"), NOW)
    assert said(unclear)[0].startswith("Perdona, no lo he entendido.")


def test_a_german_booking_and_its_reminder() -> None:
    flow = compiled()
    at_demo = engine.step(flow, start(flow, "de").conversation, Text("deutsch"), NOW)
    booked = engine.step(flow, at_demo.conversation, Text("1"), NOW)
    assert said(booked)[0].startswith("Du bist angemeldet für ")
    (reminder,) = [t for t in booked.schedule if t.kind == "reminder"]
    due = datetime.fromisoformat(reminder.due)
    reminded = engine.step(flow, booked.conversation, Due(reminder), due + timedelta(seconds=1))
    assert said(reminded) == ["Erinnerung: t beginnt in 60 Minuten, Thu 04 Mar, 15:00 (UTC)."]
