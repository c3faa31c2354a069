"""`ladder outbox`: dead letters listed, put back in the outbox, dropped; on a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from storage import keys
from storage.base import OutboxItem
from storage.outbox import Outbox, OutboxPolicy, Undeliverable
from tests import sharded

ROOT = Path(__file__).resolve().parents[1]


def ladder(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def refuse(item: OutboxItem) -> None:
    raise Undeliverable(f"no such channel for {item.key}")


async def test_outbox_lists_retries_and_drops_dead_letters(redis: Redis, redis_url: str) -> None:
    for key in ("a1", "a2", "a3"):
        await redis.xadd(keys.outbox(0), {"kind": "alert", "key": key, "body": "{}"})
    outbox = Outbox(redis, "test", OutboxPolicy())
    await outbox.deliver_once(refuse)
    dead = {d.item.key: d.id for d in await outbox.dead_letters()}

    listed = ladder(redis_url, "outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1] == "3 dead letter(s)"
    assert f"{dead['a1']}  alert  a1  1 attempt(s): no such channel for a1" in listed.stdout

    retried = ladder(redis_url, "outbox", "retry", dead["a1"])
    assert retried.stdout.strip() == "1 dead letter(s) back in the outbox"
    assert [f["key"] for _, f in await sharded.entries(redis, keys.outbox)] == ["a1"]
    dropped = ladder(redis_url, "outbox", "drop", "--all")
    assert dropped.stdout.strip() == "2 dead letter(s) dropped"
    assert await outbox.dead_count() == 0

    nothing = ladder(redis_url, "outbox", "retry")
    assert nothing.returncode == 1 and "name dead letter ids, or --all" in nothing.stderr
