"""The Redis-shared flood limiter: bursts, spacing, per-chat and per-bot limits, across clients."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from storage.connect import connect
from storage.ratelimit import FloodLimiter, Rate

# Rates here are slow (one per 100 s) where a test reads a wait, so the time the test itself
# takes on a busy machine cannot use up the wait it checks.
SLOW = 0.01  # per second


async def test_a_burst_is_allowed_then_the_chat_must_wait(redis: Redis) -> None:
    limiter = FloodLimiter(redis, "bot1", per_chat=Rate(SLOW, burst=3), per_bot=Rate(1000, 1000))
    assert [await limiter.try_take("42") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.try_take("42")
    assert 90 < wait <= 100  # the first of the burst's 100 s intervals, less the time since
    assert await limiter.try_take("43") == 0.0  # another chat has its own budget


async def test_a_refused_take_consumes_nothing(redis: Redis) -> None:
    limiter = FloodLimiter(redis, "bot1", per_chat=Rate(SLOW), per_bot=Rate(1000, 1000))
    assert await limiter.try_take("42") == 0.0
    waits = [await limiter.try_take("42") for _ in range(5)]
    assert all(0 < w <= 100 for w in waits)  # a take that counted would add 100 s to the next
    assert waits == sorted(waits, reverse=True)


async def test_a_chat_may_send_again_once_its_wait_is_over(redis: Redis) -> None:
    limiter = FloodLimiter(redis, "bot1", per_chat=Rate(20.0), per_bot=Rate(1000, 1000))
    assert await limiter.try_take("42") == 0.0
    await asyncio.sleep(0.05)  # one interval at 20 a second (at least that long)
    assert await limiter.try_take("42") == 0.0


async def test_the_bot_limit_spans_all_chats(redis: Redis) -> None:
    limiter = FloodLimiter(redis, "bot1", per_chat=Rate(1.0), per_bot=Rate(SLOW, burst=5))
    assert [await limiter.try_take(str(chat)) for chat in range(5)] == [0.0] * 5
    assert 0 < await limiter.try_take("99") <= 100


async def test_two_bots_do_not_share_limits(redis: Redis) -> None:
    first = FloodLimiter(redis, "bot1", per_chat=Rate(SLOW), per_bot=Rate(SLOW))
    second = FloodLimiter(redis, "bot2", per_chat=Rate(SLOW), per_bot=Rate(SLOW))
    assert await first.try_take("42") == 0.0
    assert await second.try_take("42") == 0.0
    assert await first.try_take("42") > 0


async def test_acquire_spaces_sends_across_separate_clients(redis_url: str, redis: Redis) -> None:
    """Two processes' clients share the budget: 8 sends at 20/s take about 7 intervals."""
    clients = [connect(redis_url), connect(redis_url)]
    limiters = [
        FloodLimiter(c, "bot1", per_chat=Rate(20.0), per_bot=Rate(1000, 1000)) for c in clients
    ]
    times: list[float] = []

    async def send(limiter: FloodLimiter) -> None:
        for _ in range(4):
            await limiter.acquire("42")
            times.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(send(limiter) for limiter in limiters))
    for client in clients:
        await client.aclose()
    assert len(times) == 8
    assert max(times) - start >= 7 * 0.05 * 0.95  # the first goes at once, each next 50 ms on


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_second"):
        Rate(0)
    with pytest.raises(ValueError, match="burst"):
        Rate(1.0, burst=0)
