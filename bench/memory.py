"""Redis memory per finished conversation, and `/forget` at a million events, on a fresh
redis-server.

    .venv/bin/python -m bench.memory [--conversations N] [--forget K]

N prospects (default 100,000) walk flows/webinar-ladder.yaml to its end through the real
service (`Conversations.handle`, each update with its Telegram dedupe key, the messages and alerts
through the outbox, delivered and marked as the worker does), about 14 events each. Then:
1. memory: INFO used_memory after minus before, per conversation, and keys per conversation,
   (a) right after the last step, (b) once the keys that expire within two days have expired
   (dedupe keys, delivery markers: deleted here rather than waited for), (c) also past the event
   log's window (its entries trimmed, as `ladder events export` archives them first);
   the largest key families (MEMORY USAGE of a sample) show where it goes;
2. forget: `bot.privacy.forget` of K random prospects (default 200), p50 and p99, against the
   baseline of a bare DEL of one conversation hash, and one scan of the whole log for one
   prospect's events (what /forget did before its events were indexed).
One process, sequential but for the walk (prospects walk in concurrent batches).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench._common import redis_client
from bench.engine import next_event
from bot import privacy
from bot.registry import FlowRegistry
from bot.service import Conversations
from domain.clock import ManualClock
from domain.model import Event, Profile, Start, StepResult, messages_from_json
from storage import keys
from storage.base import OutboxItem
from storage.events import RedisEventLog
from storage.outbox import Outbox
from storage.redis import RedisFlowCatalog

FLOW = Path(__file__).resolve().parent.parent / "flows" / "webinar-ladder.yaml"
BATCH = 50  # prospects walking at once
SOON = 2 * keys.DAY  # keys expiring within this are gone from a conversation finished 2 days ago
SAMPLE = 2000  # keys sampled per family for MEMORY USAGE


async def received(item: OutboxItem) -> None:
    """Telegram or Slack took the item."""


async def walk(conversations: Conversations, flow_name: str, n: int) -> int:
    """One prospect from /start to the end of the ladder; returns how many steps it took."""
    flow = await conversations.flows.latest(flow_name)
    cid = f"telegram:{1_000_000 + n}"
    profile = Profile(first_name="Pat", last_name=f"Prospect {n}", username=f"pat{n}")
    event: Event = Start()
    for step in range(1, 40):
        key = f"telegram:update:{cid}:{step}"
        outcome = await conversations.handle(
            cid, event, profile=profile, update_key=key, deliver_now=True
        )
        await conversations.outbox.deliver_now(
            outcome.messages, received
        )  # as the web process does
        said = [m for _, item in outcome.messages for m in messages_from_json(
            json.loads(item.body)["messages"])]  # fmt: skip
        result = StepResult(outcome.conversation, (*outcome.actions, *said), outcome.events)
        event = next_event(flow, result)
        if isinstance(event, Start):  # finished
            return step
    raise AssertionError(f"{cid} never finished")


async def populate(redis: Redis, prospects: int) -> int:
    """`conversations` prospects walked to the end, their outbox delivered."""
    registry = await FlowRegistry.from_files(RedisFlowCatalog(redis), [FLOW])
    conversations = Conversations(
        redis, registry, ManualClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    )
    outbox = Outbox(redis, "bench")
    steps = 0
    for first in range(0, prospects, BATCH):
        batch = range(first, min(prospects, first + BATCH))
        steps += sum(
            await asyncio.gather(*(walk(conversations, registry.default_name, n) for n in batch))
        )
        while await outbox.deliver_once(received):
            pass
    return steps


async def used(redis: Redis) -> int:
    info: dict[str, Any] = await redis.info("memory")
    return int(info["used_memory"])


def family(key: str) -> str:
    """A key's kind: its name with the shard and the ids replaced by '*'."""
    tag, _, rest = key.partition("}:")
    if not rest:
        return key
    kind = rest.split(":")
    named = 2 if kind[0] in ("timers", "outbox") and len(kind) > 1 else 1
    tag = re.sub(r"\{s\d+$", "{s*", tag)
    return f"{tag}}}:{':'.join(kind[:named])}" + (":*" if len(kind) > named else "")


async def census(redis: Redis) -> tuple[Counter[str], dict[str, float]]:
    """Keys by family, and each family's total bytes (MEMORY USAGE of a sample, scaled)."""
    counts: Counter[str] = Counter()
    sampled: dict[str, list[int]] = defaultdict(list)
    async for key in redis.scan_iter(count=5000):
        name = family(key)
        counts[name] += 1
        if len(sampled[name]) < SAMPLE:
            sampled[name].append(int(await redis.memory_usage(key, samples=0) or 0))
    return counts, {n: statistics.fmean(s) * counts[n] for n, s in sampled.items()}


async def expire_within(redis: Redis, seconds: int) -> int:
    """Delete the keys that expire within `seconds` (as if that time had passed)."""
    doomed = []
    async for key in redis.scan_iter(count=5000):
        ttl = await redis.ttl(key)
        if 0 <= ttl <= seconds:
            doomed.append(key)
    for first in range(0, len(doomed), 1000):
        await redis.delete(*doomed[first : first + 1000])
    return len(doomed)


async def report(redis: Redis, label: str, base: int, prospects: int) -> None:
    counts, sizes = await census(redis)
    total = sum(counts.values())
    grown = await used(redis) - base
    print(f"{label}: {grown / prospects:,.0f} B and {total / prospects:.1f} keys "
          f"per conversation")  # fmt: skip
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {name:<44} {counts[name]:>9,} keys {size / prospects:>8,.0f} B/conv")


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


async def bench_forget(redis: Redis, prospects: int, count: int) -> None:
    events = await RedisEventLog(redis).count()
    chosen = random.Random(13).sample(range(prospects), min(count, prospects))
    forget, baseline = [], []
    for n in chosen:
        cid = f"telegram:{1_000_000 + n}"
        t0 = time.perf_counter()
        await privacy.forget(redis, cid)
        t1 = time.perf_counter()
        await redis.delete(f"bench:absent:{n}")
        t2 = time.perf_counter()
        forget.append((t1 - t0) * 1000)
        baseline.append((t2 - t1) * 1000)
    t0 = time.perf_counter()
    last, found = "-", 0
    log = keys.events(keys.shard_of("telegram:1000000"))  # its shard's log (an unsharded one: more)
    while batch := await redis.xrange(log, min=last, max="+", count=1000):
        found += sum(1 for _, f in batch if f.get("conversation") == "telegram:1000000")
        last = f"({batch[-1][0]}"
    scan = (time.perf_counter() - t0) * 1000
    p50, p99 = statistics.median(forget), percentile(forget, 99)
    bare = statistics.median(baseline)
    print(f"forget at {events:,} events in the log, {len(chosen)} prospects:")
    print(f"    bot.privacy.forget          p50 {p50:8.2f} ms  p99 {p99:8.2f} ms "
          f"({p50 / bare:.1f} x a bare DEL, p50 {bare:.3f} ms); target < 10 ms: "
          f"{'ok' if p99 < 10 else 'MISSED'}")  # fmt: skip
    print(f"    before: one scan of the log for one prospect's events {scan:10,.0f} ms")


async def run(prospects: int, forget: int) -> None:
    async with redis_client(fresh=True) as redis:
        await redis.flushdb()
        base = await used(redis)
        started = time.perf_counter()
        steps = await populate(redis, prospects)
        walked = time.perf_counter() - started
        events = await RedisEventLog(redis).count()
        print(f"{prospects:,} conversations of {FLOW.name} walked to their end: {steps:,} "
              f"steps in {walked:.0f} s, {events:,} events")  # fmt: skip
        await report(redis, "(a) right after", base, prospects)
        gone = await expire_within(redis, SOON)
        print(f"    ({gone:,} keys expire within 2 days)")
        await report(redis, "(b) two days later", base, prospects)
        await bench_forget(redis, prospects, forget)
        for shard in keys.shards():
            await redis.delete(keys.events(shard))
        await report(redis, "(c) past the event log's window", base, prospects - forget)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--forget", type=int, default=200)
    args = parser.parse_args(argv)
    args.forget = min(args.forget, args.conversations)
    asyncio.run(run(args.conversations, args.forget))


if __name__ == "__main__":
    main()
