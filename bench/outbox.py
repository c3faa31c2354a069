"""Outbox delivery throughput, against a bare consumer-group loop measured in the same run on
the same redis-server.

    .venv/bin/python -m bench.outbox [--items 10000] [--waiting 1000] [--alerts 500]

1. baseline: XREADGROUP (50 at a time) + XACK per item, a no-op handler: the least a consumer
   group costs.
2. outbox: `Outbox.deliver_once` with a no-op handler over the same `--items`: what retries,
   pauses and delivered markers add (Lua scan, EXISTS, PTTL, MULTI of SET NX + XACK + XDEL).
3. outbox, `--waiting` items waiting on a retry: the same, while that many failed items sit in
   the pending list (each pass scans a page of them).
4. slack: `--alerts` real alerts rendered and posted through slack-sdk to the fake Slack server
   on 127.0.0.1 (an HTTP round trip each), thread keys stored: the end-to-end rate.
One process, sequential; redis-server on the same machine (REDIS_URL, or one started here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from redis.asyncio import Redis

from bench._common import drain, print_rates, redis_client
from bot.app import build
from bot.config import Settings
from domain.clock import ManualClock
from domain.model import Commitment, Conversation, Profile
from storage import keys
from storage.base import OutboxItem
from storage.outbox import GROUP, Outbox, OutboxPolicy
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack

FLOW = """\
flow: bench
title: Benchmark ladder
alerts: {slack_channel: "#bench", on: [completed]}
steps:
  - id: welcome
    ask: "Want the checklist?"
    choices: [{label: "Yes", go: done}]
  - id: done
    kind: end
"""
LONG_WAIT = OutboxPolicy(backoff=3600, max_backoff=3600, lease=3600)


async def noop(_: OutboxItem) -> None:
    return None


async def failing(_: OutboxItem) -> None:
    raise ConnectionError("down")


def alert_body(n: int) -> str:
    conv = Conversation(
        id=f"telegram:{n}", flow="bench", version=1, step="done",
        answers={"role": "Founder", "email": f"p{n}@example.com"},
        score=40,
        commitments=(Commitment("welcome_answered", "welcome", "2026-12-01T09:00:00+00:00"),),
        profile=Profile(first_name="Pat", last_name=str(n), username=f"pat{n}"), source="ads",
    )  # fmt: skip
    return json.dumps(
        {
            "reason": "completed",
            "slack_channel": "#bench",
            "conversation": json.loads(conv.to_json()),
        }
    )


async def fill(redis: Redis, count: int, body: str = "{}", kind: str = "alert") -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.xadd(
                keys.outbox(0), {"kind": kind, "key": f"bench:{n}:{time.time_ns()}", "body": body}
            )
        await pipe.execute()


async def baseline(redis: Redis, items: int) -> float:
    await redis.xgroup_create(keys.outbox(0), "bare", id="0", mkstream=True)
    handled = 0
    started = time.perf_counter()
    while batch := await redis.xreadgroup("bare", "c", {keys.outbox(0): ">"}, count=50):
        for _, entries in batch:
            for entry_id, fields in entries:
                await noop(OutboxItem(fields["kind"], fields["key"], fields["body"]))
                await redis.xack(keys.outbox(0), "bare", entry_id)
                handled += 1
    elapsed = time.perf_counter() - started
    assert handled == items, (handled, items)
    await redis.delete(keys.outbox(0))
    return items / elapsed


async def outbox(redis: Redis, items: int, policy: OutboxPolicy | None = None) -> float:
    consumer = Outbox(redis, "bench", policy)
    return await drain(lambda: consumer.deliver_once(noop), items)


async def with_waiting(redis: Redis, items: int, waiting: int) -> float:
    """Park `waiting` failed items (due again in an hour), then time `items` new ones."""
    await fill(redis, waiting)
    logging.getLogger("ladderbot.outbox").setLevel(logging.ERROR)  # not 1000 retry warnings
    await Outbox(redis, "parked", replace(LONG_WAIT, batch=waiting)).deliver_once(failing)
    assert (await redis.xpending(keys.outbox(0), GROUP))["pending"] == waiting
    await fill(redis, items)
    return await outbox(redis, items, LONG_WAIT)


async def slack_rate(redis: Redis, alerts: int) -> float:
    with FakeSlack() as fake, tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench.yaml").write_text(FLOW)
        settings = replace(
            Settings.from_env(), flows_dir=Path(tmp), slack_bot_token=BOT_TOKEN,
            slack_api_url=fake.url, telegram_token=None, slack_webhook_url=None,
        )  # fmt: skip
        services = await build(settings, clock=ManualClock(), redis=redis)
        handler = services.slack
        assert handler is not None
        for n in range(alerts):
            await redis.xadd(
                keys.outbox(0), {"kind": "alert", "key": f"a{n}", "body": alert_body(n)}
            )
        consumer = Outbox(redis, "slack")
        rate = await drain(lambda: consumer.deliver_once(handler), alerts)
        posted = len(fake.messages("#bench"))
        assert posted == alerts, (posted, alerts)
    return rate


async def run(items: int, waiting: int, alerts: int) -> None:
    async with redis_client() as redis:
        await redis.flushdb()
        await fill(redis, items)
        base = await baseline(redis, items)
        await fill(redis, items)
        plain = await outbox(redis, items)
        await redis.flushdb()
        busy = await with_waiting(redis, items, waiting)
        await redis.flushdb()
        posted = await slack_rate(redis, alerts)
        await redis.flushdb()
    rows = [
        ("baseline: XREADGROUP + XACK, no-op handler", base),
        ("outbox: deliver_once, no-op handler", plain),
        (f"outbox, {waiting} items waiting on a retry", busy),
        ("slack: alerts posted to the fake Slack", posted),
    ]
    print_rates(rows, base, 44)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--waiting", type=int, default=1_000)
    parser.add_argument("--alerts", type=int, default=500)
    args = parser.parse_args(argv)
    if min(args.items, args.waiting, args.alerts) <= 0:
        parser.error("counts must be positive")
    asyncio.run(run(args.items, args.waiting, args.alerts))


if __name__ == "__main__":
    main()
