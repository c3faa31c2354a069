"""What the benchmarks share: the Redis to measure against, draining a queue against the clock,
the lines that compare each rate with the baseline measured in the same run, and the
environment and health of a `ladder worker` process under measurement."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from redis.asyncio import Redis

from storage.connect import connect
from tests.fakes.telegram_api import TOKEN
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


def worker_env(redis: str, flows: str, telegram_api: str) -> dict[str, str]:
    """The environment of a `ladder worker` sending to a fake Bot API with the flood limits
    raised far above the load (a fresh LADDER_SECRET of the required length)."""
    env = {
        **os.environ, "REDIS_URL": redis, "FLOWS_DIR": flows, "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_API_URL": telegram_api, "LADDER_SECRET": secrets.token_urlsafe(32),
        "TELEGRAM_CHAT_RATE": "1000", "TELEGRAM_BOT_RATE": "100000",
    }  # fmt: skip
    env.pop("PUBLIC_URL", None)
    return env


def wait_until(done: Callable[[], bool], process: subprocess.Popen[bytes], every: float) -> None:
    """Poll `done` every `every` seconds until it holds; raise if `process` exits first (a
    worker that refused to start must not leave the bench waiting forever)."""
    while not done():
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode} before the end")
        time.sleep(every)
