"""`validate: date`: written dates read in the prospect's time zone, bounds, a re-ask with an
example, and the loader's errors for bad bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from bot import engine
from bot.flow.compile import CompiledFlow, compile_flow
from bot.flow.loader import parse_flow
from bot.validators import read_date
from domain.errors import FlowErrors
from domain.model import Conversation, Profile, Start, Text

FLOW = """\
flow: dates
timezone: Europe/Berlin
steps:
  - id: when
    ask: When would you like the call?
    save_as: call_date
    validate: {{type: date{bounds}}}
  - id: done
    kind: end
    say: Booked.
"""

WEDNESDAY = date(2026, 12, 2)


def compiled(bounds: str = "") -> CompiledFlow:
    return compile_flow(replace(parse_flow(FLOW.format(bounds=bounds), "dates.yaml"), version=1))


def answer(flow: CompiledFlow, text: str, now: datetime, zone: str = "") -> Conversation:
    conv = Conversation(
        id="telegram:1", flow="dates", version=1, profile=Profile(first_name="Pat", timezone=zone)
    )
    conv = engine.step(flow, conv, Start(), now).conversation
    return engine.step(flow, conv, Text(text), now).conversation


@pytest.mark.parametrize(
    ("said", "month_first", "read"),
    [
        ("2026-12-03", False, date(2026, 12, 3)),
        ("2026-12-03", True, date(2026, 12, 3)),  # ISO is never day-first
        ("3 Dec", False, date(2026, 12, 3)),
        ("Dec 3rd", False, date(2026, 12, 3)),
        ("12/3", False, date(2027, 3, 12)),  # day first; March has passed: next year's
        ("12/3", True, date(2026, 12, 3)),
        ("3.12.", False, date(2026, 12, 3)),
        ("3/12/2027", False, date(2027, 12, 3)),
        ("tomorrow", False, date(2026, 12, 3)),
        ("Today", False, WEDNESDAY),
        ("friday", False, date(2026, 12, 4)),
        ("next Friday", False, date(2026, 12, 4)),
        ("next wednesday", False, date(2026, 12, 9)),  # said on a wednesday: a week on
        ("1 Jan", False, date(2027, 1, 1)),  # no year, already past: the coming one
        ("1 Jan 2026", False, date(2026, 1, 1)),  # a written year is kept
    ],
)
def test_written_dates_are_read(said: str, month_first: bool, read: date) -> None:
    assert read_date(said, WEDNESDAY, month_first) == read


@pytest.mark.parametrize("said", ["soon", "5", "whenever", "31/31", "next month-ish 99"])
def test_what_is_not_a_date_is_not_read(said: str) -> None:
    assert read_date(said, WEDNESDAY) is None


def test_tomorrow_is_the_prospects_tomorrow_in_their_time_zone() -> None:
    """At 23:30 UTC on Dec 2 it is already Dec 3 in Berlin, still Dec 2 in New York."""
    flow = compiled()
    late = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    berlin = answer(flow, "tomorrow", late, "Europe/Berlin")
    new_york = answer(flow, "tomorrow", late, "America/New_York")
    assert berlin.answers["call_date"] == "2026-12-04"
    assert new_york.answers["call_date"] == "2026-12-03"
    assert berlin.step == new_york.step == "done"
    flows_zone = answer(flow, "today", late)  # no profile zone: the flow's (Berlin)
    assert flows_zone.answers["call_date"] == "2026-12-03"


def test_an_unreadable_date_is_asked_again_with_an_example() -> None:
    flow = compiled()
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    conv = Conversation(id="telegram:1", flow="dates", version=1)
    conv = engine.step(flow, conv, Start(), now).conversation
    result = engine.step(flow, conv, Text("sometime soon"), now)
    assert result.conversation.step == "when"
    assert "call_date" not in result.conversation.answers
    said = " ".join(a.text for a in result.actions if hasattr(a, "text"))
    assert "e.g. 9/12" in said  # a week from today, day first


def test_bounds_today_and_days_from_today() -> None:
    flow = compiled(", min: today, max: 90d")
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    past = answer(flow, "2026-12-01", now)
    assert past.step == "when" and "call_date" not in past.answers
    far = answer(flow, "2027-03-03", now)  # 91 days on
    assert far.step == "when" and "call_date" not in far.answers
    edge = answer(flow, "2027-03-02", now)  # 90 days on
    assert edge.answers["call_date"] == "2027-03-02"
    first = answer(flow, "today", now)
    assert first.answers["call_date"] == "2026-12-02"


def test_bounds_as_dates_and_the_hint_names_them() -> None:
    flow = compiled(", min: 2027-01-01, max: 2027-01-31")
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    conv = Conversation(id="telegram:1", flow="dates", version=1)
    conv = engine.step(flow, conv, Start(), now).conversation
    result = engine.step(flow, conv, Text("2027-02-01"), now)
    said = " ".join(a.text for a in result.actions if hasattr(a, "text"))
    assert "between Fri 1 Jan 2027 and Sun 31 Jan 2027" in said
    assert answer(flow, "15 Jan", now).answers["call_date"] == "2027-01-15"


@pytest.mark.parametrize(
    ("bounds", "problem"),
    [
        (", min: soon", "`min` of a date is today"),
        (", min: 10d, max: today", "`min` (10) is after `max` (0)"),
        (", order: sideways", "`order` is day-first or month-first"),
    ],
)
def test_bad_date_bounds_are_named_with_their_place(bounds: str, problem: str) -> None:
    with pytest.raises(FlowErrors) as caught:
        parse_flow(FLOW.format(bounds=bounds), "dates.yaml")
    found = [str(e) for e in caught.value.errors]
    assert any(problem in f and "dates.yaml:7:" in f for f in found), found


def test_order_belongs_to_date_only() -> None:
    text = FLOW.format(bounds="").replace("type: date", "type: number, order: month-first")
    with pytest.raises(FlowErrors) as caught:
        parse_flow(text, "dates.yaml")
    assert any("`order` only applies to date" in str(e) for e in caught.value.errors)
