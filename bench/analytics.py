"""Funnel analytics speed, against reading the raw event log measured in the same run.

    .venv/bin/python -m bench.analytics [--prospects N]

A synthetic population (N prospects walking a 5-step flow, ~4.5 events each, two sources,
an A/B variant at the first step) is written to the event log (one Stream per shard,
`keys.events`) on a fresh redis-server, then:
1. baseline: XRANGE of every shard's stream in pages of 1000, fields only (no parsing);
2. read: `analytics.read_events` (the same XRANGE, plus DomainEvent parsing and filtering);
3. compute: `FlowStats.of` (funnel, per-source funnels and A/B stats) on the parsed events;
4. `ladder stats` end to end = read + compute.
One process, sequential; each figure is the best of 3 runs, reported as events per second
and as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bench._common import redis_client
from bot import analytics
from domain.model import DomainEvent, iso
from storage import keys

STEPS = ["welcome", "role", "email", "webinar", "done"]


def population(prospects: int) -> list[DomainEvent]:
    """Prospects going a random depth into the flow; the deeper, the fewer (a funnel)."""
    rng = random.Random(6)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    events = []
    for n in range(prospects):
        conv = f"telegram:{n}"
        data = {"source": rng.choice(["ads", "mail"]), "variant": rng.choice(["a", "b"])}
        at = start + timedelta(seconds=n)

        def event(
            name: str, step: str, at: datetime = at, conv: str = conv, data: dict[str, str] = data
        ) -> DomainEvent:
            return DomainEvent(name, conv, "bench", 1, step, iso(at), data)

        events.append(event("started", STEPS[0]))
        for i, step in enumerate(STEPS):
            events.append(event("step_reached", step, at + timedelta(minutes=i)))
            if step == "done":
                events.append(event("completed", step, at + timedelta(minutes=i)))
                break
            if rng.random() < 0.35:
                events.append(event("dropped", step, at + timedelta(hours=i + 2)))
                break
            events.append(event("committed", step, at + timedelta(minutes=i, seconds=30)))
    return events


async def best(runs: int, work: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await work()
        times.append(time.perf_counter() - began)
    return min(times)


async def run(prospects: int) -> None:
    async with redis_client(fresh=True) as redis:
        events = population(prospects)
        for offset in range(0, len(events), 5000):
            async with redis.pipeline(transaction=False) as pipe:
                for event in events[offset : offset + 5000]:
                    stream = keys.events(keys.shard_of(event.conversation))
                    pipe.xadd(stream, event.fields())  # type: ignore[arg-type]
                await pipe.execute()
        n = len(events)

        async def raw() -> None:
            for shard in keys.shards():
                low = "-"
                while batch := await redis.xrange(keys.events(shard), min=low, count=1000):
                    low = "(" + batch[-1][0]

        parsed: list[DomainEvent] = []

        async def read() -> None:
            parsed[:] = await analytics.read_events(redis, "bench")

        segment = analytics.Segment("bench")

        async def compute() -> None:
            analytics.FlowStats.of(parsed, segment, STEPS)

        async def both() -> None:
            await read()
            await compute()

        baseline = await best(3, raw)
        figures = {
            "baseline: XRANGE, raw fields": baseline,
            "read_events (parse, filter)": await best(3, read),
            "compute (FlowStats.of)": await best(3, compute),
            "ladder stats = read + compute": await best(3, both),
        }
        print(f"{prospects} prospects, {n} events on redis-server over loopback")
        for name, seconds in figures.items():
            print(
                f"  {name:32s} {seconds * 1000:8.1f} ms  {n / seconds:10.0f} events/s"
                f"  {seconds / baseline:5.2f}x baseline"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prospects", type=int, default=5_000)
    args = parser.parse_args(argv)
    asyncio.run(run(args.prospects))


if __name__ == "__main__":
    main()
