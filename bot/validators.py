"""Checks for typed answers (input steps): each returns the normalised value or a hint."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil import parser as dateparser

from bot.flow.model import Check, Validator
from bot.texts import DEFAULT_LANGUAGE, Builtin, text

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


def check(
    validator: Validator | None,
    answer: str,
    today: date | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> Checked:
    """Validate typed input against the step's validator (None: any non-empty text); `today`
    is the prospect's date in their time zone (date answers: "tomorrow", `min: today`); a hint
    is in `language` (the flow's own `hint:` comes translated by the flow)."""
    validator = validator or Validator()
    answer = answer.strip()
    if validator.kind == Check.DATE:
        result = _date(validator, answer, today or date.today(), language)
    else:
        result = _CHECKS[validator.kind](validator, answer, language)
    if result.ok or validator.hint is None:
        return result
    return Checked(hint=validator.hint)


def _hint(language: str, key: Builtin, **values: object) -> Checked:
    return Checked(hint=text(key, language).format(**values))


def _email(_: Validator, answer: str, language: str) -> Checked:
    if _EMAIL.match(answer):
        local, domain = answer.rsplit("@", 1)
        return Checked(f"{local}@{domain.lower()}")
    return _hint(language, Builtin.EMAIL_INVALID)


def _phone(_: Validator, answer: str, language: str) -> Checked:
    digits = _PHONE_NOISE.sub("", answer)
    plus = digits.startswith("+")
    digits = digits.removeprefix("+")
    if digits.isdigit() and 7 <= len(digits) <= 15:
        return Checked(("+" if plus else "") + digits)
    return _hint(language, Builtin.PHONE_INVALID)


def _number(validator: Validator, answer: str, language: str) -> Checked:
    found, taken = _as_number(answer), False
    if found is None:  # "12 reps", "about 40": the one number in the answer
        said = [_as_number(word.strip(_AROUND).rstrip(".,")) for word in answer.split()]
        numbers = [n for n in said if n is not None]
        found, taken = (numbers[0], True) if len(numbers) == 1 else (None, False)
    if found is None:
        return _range_hint(language, Builtin.NUMBER_NEEDED, validator)
    low, high = validator.min, validator.max
    if (low is not None and found < low) or (high is not None and found > high):
        return _range_hint(language, Builtin.NUMBER_OUT_OF_RANGE, validator)
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


def _range_hint(language: str, what: Builtin, validator: Validator) -> Checked:
    low, high, said = validator.min, validator.max, text(what, language)
    if low is not None and high is not None:
        return _hint(language, Builtin.RANGE_BETWEEN, what=said, low=f"{low:g}", high=f"{high:g}")
    if low is not None:
        return _hint(language, Builtin.RANGE_AT_LEAST, what=said, low=f"{low:g}")
    if high is not None:
        return _hint(language, Builtin.RANGE_AT_MOST, what=said, high=f"{high:g}")
    return _hint(language, Builtin.RANGE_ANY, what=said)


def _text(validator: Validator, answer: str, language: str) -> Checked:
    shortest = int(validator.min) if validator.min is not None else 1
    longest = int(validator.max) if validator.max is not None else 4096
    if len(answer) < shortest:
        if shortest <= 1:
            return _hint(language, Builtin.TEXT_EMPTY)
        return _hint(language, Builtin.TEXT_SHORT, n=shortest)
    if len(answer) > longest:
        return _hint(language, Builtin.TEXT_LONG, n=longest)
    return Checked(answer)


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE_DAYS = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "day after tomorrow": 2}
_NUMERIC_DATE = re.compile(r"^\d{1,2}[/.\-]\d{1,2}([/.\-]\d{2,4})?\.?$")


def read_date(text: str, today: date, month_first: bool = False) -> date | None:
    """The date `text` names, read on `today`: ISO (2026-12-03), written ("3 Dec", "Dec 3rd",
    "12/3": day first unless `month_first`), relative ("tomorrow", "friday", "next friday").
    A date without a year is the next one on or after today. None when it cannot be read."""
    said = " ".join(text.lower().replace(",", " ").split()).removesuffix(".")
    if said in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[said])
    words = said.split()
    if words and words[-1] in _WEEKDAYS and words[:-1] in ([], ["next"], ["this"], ["on"]):
        ahead = (_WEEKDAYS.index(words[-1]) - today.weekday()) % 7
        return today + timedelta(days=ahead or 7)  # "friday" on a friday: the one a week on
    try:
        return date.fromisoformat(said)
    except ValueError:
        pass
    if said.isdigit() or not any(c.isdigit() for c in said):  # "5", "soon": not a date
        return None
    dayfirst = not month_first
    if _NUMERIC_DATE.match(said):  # "3.12." and "3-12" as "3/12": the parser reads 3.12 as a time
        said = re.sub(r"[.\-]", "/", said).strip("/")
    try:  # two default years: a date read the same in both had its year written
        first, second = (
            dateparser.parse(said, dayfirst=dayfirst, default=datetime(year, 1, 1)).date()
            for year in (today.year, today.year + 4)  # both leap years or neither
        )
    except (ValueError, OverflowError):
        return None
    if first != second and first < today:
        return first.replace(year=first.year + 1)
    return first


def bound(limit: int | date, today: date) -> date:
    """A date bound on `today`: a number of days from it, or a date."""
    return today + timedelta(days=limit) if isinstance(limit, int) else limit


def _date(validator: Validator, answer: str, today: date, language: str) -> Checked:
    found = read_date(answer, today, validator.month_first)
    numeric = "%-m/%-d" if validator.month_first else "%-d/%-m"
    example = (today + timedelta(days=7)).strftime(numeric)
    if found is None:
        return _hint(language, Builtin.DATE_INVALID, example=example)
    low = bound(validator.earliest, today) if validator.earliest is not None else None
    high = bound(validator.latest, today) if validator.latest is not None else None
    if (low is not None and found < low) or (high is not None and found > high):
        return _date_range_hint(language, low, high)
    return Checked(found.isoformat(), understood=found.strftime("%a %-d %b %Y"))


def _date_range_hint(language: str, low: date | None, high: date | None) -> Checked:
    def say(day: date) -> str:
        return day.strftime("%a %-d %b %Y")

    if low is not None and high is not None:
        return _hint(language, Builtin.DATE_BETWEEN, low=say(low), high=say(high))
    if low is not None:
        return _hint(language, Builtin.DATE_AFTER, low=say(low))
    assert high is not None
    return _hint(language, Builtin.DATE_BEFORE, high=say(high))


_CHECKS = {Check.EMAIL: _email, Check.PHONE: _phone, Check.NUMBER: _number, Check.TEXT: _text}
