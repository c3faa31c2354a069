"""Checks for typed answers (input steps): each returns the normalised value or a hint."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.flow.model import Check, Validator

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_NOISE = re.compile(r"[\s().\-/]")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)?|[.,]\d+)$")


@dataclass(frozen=True)
class Checked:
    """`value` when the answer passed, else `hint` (what to tell the prospect); `understood`
    says what was taken from an answer that held more than the value ("12 reps": 12)."""

    value: str | None = None
    hint: str | None = None
    understood: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def check(validator: Validator | None, text: str) -> Checked:
    """Validate typed input against the step's validator (None: any non-empty text)."""
    validator = validator or Validator()
    text = text.strip()
    result = _CHECKS[validator.kind](validator, text)
    if result.ok or validator.hint is None:
        return result
    return Checked(hint=validator.hint)


def _email(_: Validator, text: str) -> Checked:
    if _EMAIL.match(text):
        local, domain = text.rsplit("@", 1)
        return Checked(f"{local}@{domain.lower()}")
    return Checked(hint="That doesn't look like an email address. Something like name@company.com?")


def _phone(_: Validator, text: str) -> Checked:
    digits = _PHONE_NOISE.sub("", text)
    plus = digits.startswith("+")
    digits = digits.removeprefix("+")
    if digits.isdigit() and 7 <= len(digits) <= 15:
        return Checked(("+" if plus else "") + digits)
    return Checked(hint="Please send a phone number with its country code, e.g. +49 30 1234567.")


def _number(validator: Validator, text: str) -> Checked:
    found, taken = _as_number(text), False
    if found is None:  # "12 reps", "about 40": the one number in the answer
        said = [_as_number(word.strip(_AROUND).rstrip(".,")) for word in text.split()]
        numbers = [n for n in said if n is not None]
        found, taken = (numbers[0], True) if len(numbers) == 1 else (None, False)
    if found is None:
        return Checked(hint=_range_hint("Please answer with a number", validator))
    low, high = validator.min, validator.max
    if (low is not None and found < low) or (high is not None and found > high):
        return Checked(hint=_range_hint("That number is out of range", validator))
    value = str(int(found)) if found.is_integer() else str(found)
    return Checked(value, understood=value if taken else None)


_AROUND = "()[]{}<>\"'!?:;$€£%~*#"  # around a number in a sentence: "($12)", "~40", "#3"


def _as_number(text: str) -> float | None:
    """The number `text` is (spaces and _ between digits, 1,000 and 1.5 or 1,5), or None."""
    compact = text.replace(" ", "").replace("_", "")
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", compact):  # 1,000,000
        compact = compact.replace(",", "")
    if not _NUMBER.match(compact):
        return None
    number = float(compact.replace(",", "."))
    return number if math.isfinite(number) else None


def _range_hint(prefix: str, validator: Validator) -> str:
    low, high = validator.min, validator.max
    if low is not None and high is not None:
        return f"{prefix} between {low:g} and {high:g}."
    if low is not None:
        return f"{prefix} of at least {low:g}."
    if high is not None:
        return f"{prefix} of at most {high:g}."
    return f"{prefix}."


def _text(validator: Validator, text: str) -> Checked:
    shortest = int(validator.min) if validator.min is not None else 1
    longest = int(validator.max) if validator.max is not None else 4096
    if len(text) < shortest:
        if shortest <= 1:
            return Checked(hint="Please type your answer.")
        return Checked(hint=f"Could you say a bit more? At least {shortest} characters, please.")
    if len(text) > longest:
        return Checked(hint=f"That's a little long. {longest} characters at most, please.")
    return Checked(text)


_CHECKS = {Check.EMAIL: _email, Check.PHONE: _phone, Check.NUMBER: _number, Check.TEXT: _text}
