"""What is waiting in Redis, read at once for /metrics: the outbox, dead letters, timers.

These describe the shared Redis, not one process, so every process reads the same figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from storage import keys


@dataclass(frozen=True)
class Backlog:
    outbox: int  # items not yet delivered (each is deleted once it is)
    outbox_oldest_seconds: float  # age of the oldest of them (0 when there is none)
    dead_letters: int
    timers_scheduled: int
    timers_due: int  # due by now and not yet claimed by a worker
    timers_late: int  # of those, due more than `late_after` seconds ago
    events: int  # the event log's length


async def backlog(redis: Redis, now: datetime, late_after: float) -> Backlog:
    """One round trip: queue lengths, the oldest outbox item's age (by Redis's clock, which
    stamped its id) and the timers due by `now` (the bot's clock, which set their due times)."""
    moment = now.timestamp()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.OUTBOX)
        pipe.xrange(keys.OUTBOX, count=1)
        pipe.time()
        pipe.xlen(keys.OUTBOX_DEAD)
        pipe.zcard(keys.TIMERS_DUE)
        pipe.zcount(keys.TIMERS_DUE, "-inf", moment)
        pipe.zcount(keys.TIMERS_DUE, "-inf", moment - late_after)
        pipe.xlen(keys.EVENTS)
        outbox, oldest, (seconds, micros), dead, scheduled, due, late, events = await pipe.execute()
    return Backlog(
        outbox=int(outbox),
        outbox_oldest_seconds=_age(oldest, seconds * 1000 + micros // 1000),
        dead_letters=int(dead),
        timers_scheduled=int(scheduled),
        timers_due=int(due),
        timers_late=int(late),
        events=int(events),
    )


def _age(oldest: list[Any], now_ms: int) -> float:
    if not oldest:
        return 0.0
    stamped = int(str(oldest[0][0]).split("-", 1)[0])
    return max(0, now_ms - stamped) / 1000
