"""Calendar invitations: an RFC 5545 `.ics` file for a booked webinar slot, for any channel."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from domain.model import Conversation, SendCalendar

FILENAME = "webinar.ics"


def invitation(conversation: Conversation, action: SendCalendar, stamp: datetime) -> bytes:
    """The `.ics` file of `action` for the prospect; its UID is stable per conversation and
    flow, so a re-sent invitation updates the event instead of adding one."""
    uid = hashlib.sha256(f"{conversation.id}|{conversation.flow}".encode()).hexdigest()[:24]
    text = calendar_ics(
        action.title,
        datetime.fromisoformat(action.start),
        action.minutes,
        description=action.description,
        uid=f"{uid}@ladderbot",
        stamp=stamp,
    )
    return text.encode()


def calendar_ics(
    title: str, start: datetime, minutes: int, *, description: str, uid: str, stamp: datetime
) -> str:
    """An RFC 5545 calendar with one event; `uid` is stable so a re-sent invite updates it."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ladderbot//webinar//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_time(stamp)}",
        f"DTSTART:{_time(start)}",
        f"DTEND:{_time(start + timedelta(minutes=minutes))}",
        f"SUMMARY:{_text(title)}",
        f"DESCRIPTION:{_text(description)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def _text(value: str) -> str:
    """Escape TEXT for iCalendar (RFC 5545 3.3.11)."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character (RFC 5545 3.1)."""
    parts: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # continuation lines start with a space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
