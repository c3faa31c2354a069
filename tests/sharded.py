"""Reading the per-shard keys (`storage.keys.SHARDS` of each) as one, for assertions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from storage import keys


async def entries(redis: Redis, stream: Callable[[int], str]) -> list[tuple[str, dict[str, str]]]:
    """Every shard's entries of a per-shard Stream (e.g. `keys.events`), shard after shard."""
    found: list[Any] = []
    for shard in keys.shards():
        found += await redis.xrange(stream(shard))
    return found


async def members(redis: Redis, zset: Callable[[int], str]) -> list[str]:
    """Every shard's members of a per-shard sorted set (e.g. `keys.timers_due`)."""
    found: list[str] = []
    for shard in keys.shards():
        found += await redis.zrange(zset(shard), 0, -1)
    return found


async def total(size: Callable[[str], Awaitable[Any]], key: Callable[[int], str]) -> int:
    """`size` (e.g. `redis.xlen`, `redis.hlen`) summed over the shards' keys."""
    return sum([int(await size(key(shard))) for shard in keys.shards()])


async def retries(redis: Redis) -> list[str]:
    """Every shard's outbox retry records (JSON), shard after shard."""
    found: list[str] = []
    for shard in keys.shards():
        found += (await redis.hgetall(keys.outbox_retries(shard))).values()
    return found
