"""What is waiting in Redis, read at once for /metrics: the outbox, dead letters, timers.

These describe the shared Redis, not one process, so every process reads the same figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from storage import keys

PER_SHARD = 7  # replies per shard in backlog()'s pipeline


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
    """One round trip over every shard: queue lengths, the oldest outbox item's age (by Redis's
    clock, which stamped its id) and the timers due by `now` (the bot's clock, which set their
    due times)."""
    moment = now.timestamp()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for shard in keys.shards():
            pipe.xlen(keys.outbox(shard))
            pipe.xrange(keys.outbox(shard), count=1)
            pipe.xlen(keys.outbox_dead(shard))
            pipe.zcard(keys.timers_due(shard))
            pipe.zcount(keys.timers_due(shard), "-inf", moment)
            pipe.zcount(keys.timers_due(shard), "-inf", moment - late_after)
            pipe.xlen(keys.events(shard))
        (seconds, micros), *found = await pipe.execute()
    rows = [found[i : i + PER_SHARD] for i in range(0, len(found), PER_SHARD)]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return Backlog(
        outbox=sum(int(r[0]) for r in rows),
        outbox_oldest_seconds=max((_age(r[1], now_ms) for r in rows), default=0.0),
        dead_letters=sum(int(r[2]) for r in rows),
        timers_scheduled=sum(int(r[3]) for r in rows),
        timers_due=sum(int(r[4]) for r in rows),
        timers_late=sum(int(r[5]) for r in rows),
        events=sum(int(r[6]) for r in rows),
    )


def _age(oldest: list[Any], now_ms: int) -> float:
    if not oldest:
        return 0.0
    stamped = int(str(oldest[0][0]).split("-", 1)[0])
    return max(0, now_ms - stamped) / 1000
