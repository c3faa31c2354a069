"""Time as a dependency, so tests and `ladder chat --speed` can move it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class MovableClock(Clock, Protocol):
    """A clock that can be moved on: tests (ManualClock) and `ladder chat --speed` (ScaledClock)."""

    def advance(self, delta: timedelta) -> None: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment


class ScaledClock:
    """Wall time sped up by `speed` from the moment it is created (speed 3600: an hour a second)."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        self.speed = speed
        self._origin = start or datetime.now(UTC)
        self._mono = time.monotonic()
        self._offset = timedelta()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._mono) * self.speed
        return self._origin + timedelta(seconds=elapsed) + self._offset

    def advance(self, delta: timedelta) -> None:
        """Jump ahead (e.g. straight to the next due follow-up)."""
        self._offset += delta
