"""Calendar invitations (bot.calendar): RFC 5545, checked by parsing them with icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar

from bot.calendar import calendar_ics


def test_calendar_invitation_parses_as_rfc5545() -> None:
    start = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    stamp = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    description = "Live demo; bring questions, and a colleague.\nSee you there — 30 minutes."
    title = "AI for Sales — webinar"
    text = calendar_ics(title, start, 45, description=description, uid="abc@ladderbot", stamp=stamp)
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == "abc@ladderbot"
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTEND") == start + timedelta(minutes=45)
    assert event.decoded("DTSTAMP") == stamp
    assert str(event["SUMMARY"]) == "AI for Sales — webinar"
    assert str(event["DESCRIPTION"]) == description


def test_calendar_lines_are_folded_at_75_octets_with_crlf() -> None:
    title = "Ünïcödé webinar " * 20
    start, stamp = datetime(2026, 12, 3, 15, 0, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    text = calendar_ics(title, start, 30, description="", uid="u", stamp=stamp)
    assert text.endswith("\r\n")
    lines = text.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 75 for line in lines)
    assert "\n" not in text.replace("\r\n", "")
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == title


def test_calendar_start_in_another_zone_is_written_in_utc() -> None:
    start = datetime.fromisoformat("2026-12-03T16:00:00+01:00")
    text = calendar_ics(
        "W", start, 30, description="", uid="u", stamp=datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert "DTSTART:20261203T150000Z\r\n" in text
