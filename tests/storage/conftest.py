"""The storage tests run twice: on the single redis-server and on the Redis Cluster."""

from __future__ import annotations

import pytest

from tests.redis_server import RedisClusterServers


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The single Redis's url, or the cluster's (any node names it)."""
    if request.param == "single":
        return redis_url
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    return cluster.url
