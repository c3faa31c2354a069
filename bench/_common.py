"""What the benchmarks share: the Redis to measure against, draining a queue against the clock,
and the lines that compare each rate with the baseline measured in the same run."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from redis.asyncio import Redis

from storage.connect import connect
from tests.redis_server import RedisServer


@contextmanager
def redis_url(*, fresh: bool = False) -> Iterator[str]:
    """REDIS_URL if set (and not `fresh`), else a redis-server started here, stopped on exit."""
    url = None if fresh else os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@asynccontextmanager
async def redis_client(*, fresh: bool = False) -> AsyncIterator[Redis]:
    """A client of `redis_url(fresh=fresh)`, closed (before the server stops) on exit."""
    with redis_url(fresh=fresh) as url:
        redis = connect(url)
        try:
            yield redis
        finally:
            await redis.aclose()


async def drain(batch: Callable[[], Awaitable[int]], items: int) -> float:
    """Items per second: call `batch` (it returns how many items it handled) until it handles
    none, checking that `items` were handled in all."""
    handled = 0
    started = time.perf_counter()
    while count := await batch():
        handled += count
    elapsed = time.perf_counter() - started
    assert handled == items, (handled, items)
    return items / elapsed


def print_rates(rows: Sequence[tuple[str, float]], baseline: float, width: int) -> None:
    """One line a measured rate (items/s), with its ratio to `baseline`."""
    for name, rate in rows:
        print(f"{name:{width}} {rate:8.0f} items/s  ({rate / baseline:.2f} x baseline)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
