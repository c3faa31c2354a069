"""`kind: contact` in the engine: the one-tap button on the ask, the prospect's own card taken,
another's asked again; a card shared at a step that asked for text counts as typed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot import engine
from bot.flow.compile import CompiledFlow, compile_flow
from bot.flow.loader import parse_flow
from bot.kinds.contact import SHARE_LABEL
from bot.texts import Builtin, text
from domain.model import ContactShared, Conversation, Event, Say, Start

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
FLOW = """\
flow: calls
steps:
  - id: phone
    kind: contact
    ask: Your number?
    save_as: phone
  - id: email
    ask: Your email?
    validate: email
    save_as: email
  - id: done
    kind: end
"""


def walk(events: list[Event]) -> tuple[Conversation, list[Say]]:
    flow: CompiledFlow = compile_flow(replace(parse_flow(FLOW, "calls.yaml"), version=1))
    conv = Conversation(id="telegram:1", flow="calls", version=1)
    said: list[Say] = []
    for event in events:
        result = engine.step(flow, conv, event, NOW)
        conv = result.conversation
        said = [a for a in result.actions if isinstance(a, Say)]
    return conv, said


def test_the_ask_carries_the_share_button_and_the_own_card_is_taken() -> None:
    conv, said = walk([Start()])
    assert [(s.text, s.share_contact) for s in said] == [("Your number?", SHARE_LABEL)]
    conv, said = walk([Start(), ContactShared("+49 30 1234567", own=True)])
    assert conv.answers["phone"] == "+49301234567"
    assert conv.step == "email"
    assert [(s.text, s.share_contact) for s in said] == [("Your email?", "")]
    assert [c.name for c in conv.commitments] == ["phone_shared"]


def test_another_persons_card_is_asked_again() -> None:
    conv, said = walk([Start(), ContactShared("+49 30 7654321", own=False)])
    assert conv.step == "phone" and "phone" not in conv.answers and conv.invalid == 1
    assert (
        said[0].text.startswith(text(Builtin.CONTACT_NOT_YOURS, "en"))
        and said[0].share_contact == SHARE_LABEL
    )


def test_a_card_at_a_step_that_asks_for_text_counts_as_typed() -> None:
    card = ContactShared("+49301234567", own=True)
    conv, said = walk([Start(), card, card])
    assert conv.step == "email" and "email" not in conv.answers  # a phone is no email
    assert said[0].text.startswith("That doesn't look like an email address")
