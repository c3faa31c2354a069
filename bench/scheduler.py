"""Follow-up throughput of one worker with 100k scheduled timers, against a bare ZPOPMIN loop
measured in the same run on the same redis-server.

    .venv/bin/python -m bench.scheduler [--scheduled 100000] [--due 10000] [--sent 3000]

1. baseline: ZPOPMIN one id at a time, then HGET its body (one round trip each), `--due` items.
2. queue: `RedisScheduler.claim` (batches of 100) + `ack` per item over the same `--due` items:
   what the queue itself costs.
3. worker: `Worker.tick` over `--sent` due nudges of real conversations: claim, the step
   (`Conversations`: load, engine, one atomic write with the next nudge), a no-op sender, ack.
The sorted set holds `--scheduled` timers throughout (the rest are due later). One process,
one core, sequential; the redis-server runs on the same machine (REDIS_URL, or one started here).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from bench._common import drain, print_rates, redis_client
from bot.app import build
from bot.config import Settings
from bot.worker import Worker
from domain.clock import ManualClock
from domain.model import Action, Conversation, Start, Timer, iso
from storage import keys
from storage.scheduler import RedisScheduler

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FLOW = """\
flow: bench
follow_up: {after: 24h, max: 3, say: "Still keen?"}
steps:
  - id: welcome
    ask: "Want the checklist?"
    choices: [{label: "Yes", go: done}]
  - id: done
    kind: end
    say: "Thanks!"
"""


class NoSender:
    """Delivers nothing: the benchmark measures the worker and Redis, not a network."""

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        return None


async def fill(
    redis: Redis, count: int, start: int, due: datetime, shard: int | None = None
) -> None:
    """`count` timers the way the conversation store writes them (sorted set + body hash of
    their conversation's shard; all in `shard` for the bare baseline)."""
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(start, start + count):
            timer = Timer(f"bench:{n}:nudge", f"bench:{n}", "nudge", iso(due), "welcome", 1)
            into = keys.shard_of(timer.conversation) if shard is None else shard
            pipe.zadd(keys.timers_due(into), {timer.id: due.timestamp()})
            pipe.hset(keys.timers_body(into), timer.id, timer.to_json())
            if len(pipe) >= 10_000:
                await pipe.execute()
        await pipe.execute()


async def baseline(redis: Redis, due: int) -> float:
    started = time.perf_counter()
    for _ in range(due):
        [(member, _score)] = await redis.zpopmin(keys.timers_due(0))
        await redis.hget(keys.timers_body(0), member)
    return due / (time.perf_counter() - started)


async def queue(redis: Redis, due: int) -> float:
    scheduler = RedisScheduler(redis)
    later = NOW + timedelta(hours=1)

    async def claim_and_ack() -> int:
        claims = await scheduler.claim(later, 100, timedelta(minutes=1))
        for claim in claims:
            await scheduler.ack(claim)
        return len(claims)

    return await drain(claim_and_ack, due)


async def worker(redis: Redis, sent: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "bench.yaml"
        flow.write_text(FLOW)
        clock = ManualClock(NOW - timedelta(hours=24))
        services = await build(Settings.from_env(), clock=clock, redis=redis, paths=[flow])
    for n in range(sent):
        await services.conversations.handle(f"telegram:{n}", Start())
    clock.set(NOW)
    bench = Worker(services.conversations, {"telegram": NoSender()}, clock, batch=100)
    return await drain(bench.tick, sent)


async def run(scheduled: int, due: int, sent: int) -> None:
    async with redis_client() as redis:
        await redis.flushdb()
        later = NOW + timedelta(days=30)
        await fill(redis, scheduled - due, due, later)  # the rest of the 100k: due later
        await fill(redis, due, 0, NOW, shard=0)
        base = await baseline(redis, due)
        await fill(redis, due, 0, NOW)
        claimed = await queue(redis, due)
        await fill(redis, due - sent, scheduled, later)  # + `sent` conversations = `scheduled`
        handled = await worker(redis, sent)
        size = await RedisScheduler(redis).pending()
    print(f"scheduled timers: {scheduled} (the sorted set holds {size} at the end)")
    rows = [
        ("baseline: ZPOPMIN + HGET, one at a time", base),
        ("queue: claim x100 + ack per item", claimed),
        ("worker: tick, a full step per nudge", handled),
    ]
    print_rates(rows, base, 42)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduled", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--sent", type=int, default=3_000)
    args = parser.parse_args(argv)
    if not 0 < args.sent <= args.due <= args.scheduled:
        parser.error("need 0 < --sent <= --due <= --scheduled")
    asyncio.run(run(args.scheduled, args.due, args.sent))


if __name__ == "__main__":
    main()
