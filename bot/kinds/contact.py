"""contact: a phone number, shared with one tap (Telegram's contact button) or typed.

Only the prospect's own contact card is taken: a card forwarded from someone else is asked
again. A typed answer is checked as a phone number."""

from __future__ import annotations

from typing import Any

from bot.flow.grammar import ref
from bot.flow.model import Check, Choice, Step, StepKind, Validator
from bot.flow.steps import StepReader
from bot.kinds.base import WAITING, Get, Kind, Turn
from bot.texts import Builtin
from bot.validators import check
from domain.model import ContactShared

SHARE_LABEL = "Share my phone number"
PHONE = Validator(kind=Check.PHONE)


class Contact(Kind):
    name = StepKind.CONTACT
    keys = WAITING | {"save_as", "button"}
    own = {"button": ref("label")}
    needs = ("ask",)
    commitment = ("{id}_shared", 15)
    answer = "shared"
    numbers_pick_choices = False  # a typed number is the phone, not a button's number

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        button = get("button")
        label = reader.label(button, where, "button") if button is not None else None
        return {"button": label or SHARE_LABEL}

    def share_contact(self, step: Step) -> str:
        return step.button or SHARE_LABEL

    def on_contact(
        self, turn: Turn, step: Step, contact: ContactShared, choices: tuple[Choice, ...]
    ) -> None:
        if not contact.own:
            turn.reject(step, turn.text(Builtin.CONTACT_NOT_YOURS))
            return
        self.on_text(turn, step, contact.phone, choices)

    def on_text(self, turn: Turn, step: Step, text: str, choices: tuple[Choice, ...]) -> None:
        checked = check(PHONE, text, language=turn.language)
        if checked.value is None:
            turn.reject(step, checked.hint or "")
            return
        if step.save_as:
            turn.conv = turn.conv.with_(answers={**turn.conv.answers, step.save_as: checked.value})
        turn.emit("answered")
        turn.commit(step)
        turn.go_on(step)


KIND = Contact()
