"""Fixtures that start real servers: redis-server (shared), flushed before each test; a Redis
Cluster of three redis-servers (shared, started by the first test that asks for it); the fake
Telegram Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis

from storage.connect import connect
from tests.fakes.telegram_api import FakeTelegram
from tests.redis_server import NoClusterMode, RedisClusterServers, RedisServer, shared_url

# How fast a generated example runs (or is generated) depends on how busy the machine is, so it
# is never a reason to fail: speed is measured in bench/.
settings.register_profile(
    "ladder",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ladder")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url, server = shared_url()
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """Three redis-servers in cluster mode on loopback, every slot assigned."""
    try:
        cluster = RedisClusterServers().start()
    except NoClusterMode as exc:
        pytest.skip(f"this redis-server has no cluster mode: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, for tests that stop or restart it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegram]:
    with FakeTelegram() as api:
        yield api
