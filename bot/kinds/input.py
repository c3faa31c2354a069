"""input: a typed answer, checked by a validator (`validate:` email, phone, number, text or
date)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from yaml.nodes import Node, ScalarNode

from bot.flow.grammar import MAX_TEXT, ref, strict
from bot.flow.model import Check, Choice, Step, StepKind, Validator
from bot.flow.nodes import suggest
from bot.flow.steps import StepReader
from bot.kinds.base import WAITING, Get, Kind, Turn
from bot.texts import Builtin
from bot.validators import check

VALIDATOR_TYPES = tuple(sorted(c.value for c in Check))
VALIDATOR_KEYS = ("type", "min", "max", "hint", "order")
DATE_ORDERS = ("day-first", "month-first")  # how "12/3" reads: 12 March, or December 3
_TYPE = {"enum": list(VALIDATOR_TYPES)}
_DAYS = re.compile(r"^(-?\d{1,4})d$")  # a date bound in days from today: 90d, -30d
_DATE_BOUND = {
    "oneOf": [
        {"type": "number"},
        {"type": "string", "pattern": r"^(today|-?\d{1,4}d|\d{4}-\d{2}-\d{2})$"},
    ],
    "description": "number and text: a number; date: today, a count of days from today (90d, "
    "-30d) or a date (2026-12-31)",
}


class Input(Kind):
    name = StepKind.INPUT
    implied_by = "ask"  # a step that asks without choices
    keys = WAITING | {"save_as", "validate"}
    own = {
        "validate": {
            "oneOf": [
                _TYPE,
                strict(
                    {
                        "type": _TYPE,
                        "min": _DATE_BOUND,
                        "max": _DATE_BOUND,
                        "hint": ref("text"),
                        "order": {"enum": list(DATE_ORDERS)},
                    },
                    ("type",),
                ),
            ]
        }
    }
    needs = ("ask",)
    commitment = ("{name}_given", 10)
    answer = "answered"
    numbers_pick_choices = False  # a typed number is the answer, not an extra button's number

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        return {"validator": validator(reader, get("validate"), where)}

    def on_text(self, turn: Turn, step: Step, text: str, choices: tuple[Choice, ...]) -> None:
        today = turn.now.astimezone(turn.zone()).date()
        checked = check(step.validator, text, today, turn.language)
        if checked.value is None:
            turn.reject(step, checked.hint or "")
            return
        if step.save_as:
            turn.conv = turn.conv.with_(answers={**turn.conv.answers, step.save_as: checked.value})
        if checked.understood is not None:  # "12 reps": say what was taken
            turn.say(turn.text(Builtin.UNDERSTOOD).format(checked.understood))
        turn.emit("answered")
        turn.commit(step)
        turn.go_on(step)


def validator(reader: StepReader, node: Node | None, where: str) -> Validator:
    if node is None:
        return Validator()
    if isinstance(node, ScalarNode):
        kind = validator_type(reader, node, where)
        return Validator(kind=kind or Check.TEXT)
    fields = reader.fields(node, f"{where}: validate", VALIDATOR_KEYS, required=("type",))
    if fields is None or "type" not in fields:
        return Validator()
    kind = validator_type(reader, fields["type"].value, where) or Check.TEXT
    if kind == Check.DATE:
        return date_validator(reader, fields, where)
    if "order" in fields:
        reader.error(fields["order"].key, where, "`order` only applies to date")
    bounds: dict[str, float | None] = {"min": None, "max": None}
    for key in bounds:
        if key not in fields:
            continue
        if kind not in (Check.NUMBER, Check.TEXT):
            reader.error(fields[key].key, where, f"`{key}` only applies to number, text and date")
            continue
        found = reader.number(fields[key].value, where, key)
        if kind == Check.TEXT and found is not None and (found < 0 or not found.is_integer()):
            reader.error(
                fields[key].value,
                where,
                f"`{key}` of a text is a length: a whole number of characters, 0 or more",
            )
            continue
        if kind == Check.TEXT and found is not None and found > MAX_TEXT:
            reader.error(
                fields[key].value,
                where,
                f"`{key}` of a text should be at most {MAX_TEXT} (Telegram's longest message)",
            )
            continue
        bounds[key] = found
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        reader.error(fields["min"].value, where, f"`min` ({low:g}) is more than `max` ({high:g})")
    hint = None
    if "hint" in fields:
        hint = reader.text(fields["hint"].value, where, "hint")
    return Validator(kind=kind, min=low, max=high, hint=hint)


def date_validator(reader: StepReader, fields: dict[str, Any], where: str) -> Validator:
    limits: dict[str, int | date | None] = {"min": None, "max": None}
    for key in limits:
        if key in fields:
            limits[key] = date_bound(reader, fields[key].value, where, key)
    low, high = limits["min"], limits["max"]
    days = isinstance(low, int) and isinstance(high, int) and low > high
    dates = isinstance(low, date) and isinstance(high, date) and low > high
    if days or dates:
        reader.error(fields["min"].value, where, f"`min` ({low}) is after `max` ({high})")
    month_first = False
    if "order" in fields:
        order = reader.scalar(fields["order"].value, where, "order", "day-first or month-first")
        if order is not None and order not in DATE_ORDERS:
            reader.error(fields["order"].value, where, "`order` is day-first or month-first")
        month_first = order == "month-first"
    hint = reader.text(fields["hint"].value, where, "hint") if "hint" in fields else None
    return Validator(kind=Check.DATE, earliest=low, latest=high, month_first=month_first, hint=hint)


def date_bound(reader: StepReader, node: Node, where: str, key: str) -> int | date | None:
    """`today`, a count of days from today (`90d`, `-30d`) or an ISO date."""
    value = reader.scalar(node, where, key, "today, a count of days like 90d, or a date")
    if value is None:
        return None
    if value == "today":
        return 0
    days = _DAYS.match(value)
    if days:
        return int(days.group(1))
    try:
        return date.fromisoformat(value)
    except ValueError:
        reader.error(
            node, where, f"`{key}` of a date is today, a count of days like 90d, or 2026-12-31"
        )
        return None


def validator_type(reader: StepReader, node: Node, where: str) -> Check | None:
    value = reader.scalar(node, where, "validate", "a validator name")
    if value is None:
        return None
    if value not in VALIDATOR_TYPES:
        reader.error(
            node,
            where,
            f"unknown validator {value!r}{suggest(value, VALIDATOR_TYPES)}; use one of "
            + ", ".join(VALIDATOR_TYPES),
        )
        return None
    return Check(value)


KIND = Input()
