"""Which client REDIS_URL gets: a Redis Cluster is found out from any node's url (or said with
?cluster=yes|no); a single Redis keeps the plain client."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from domain.errors import ConfigError
from storage.connect import connect
from tests.redis_server import RedisClusterServers, RedisServer, free_port


async def test_any_node_of_a_cluster_gets_the_cluster_client(
    redis_cluster: RedisClusterServers,
) -> None:
    for node in redis_cluster.nodes:
        client = connect(node.url)
        assert isinstance(client, RedisCluster)
        await client.set("lb:probe", "1")  # whichever node holds the slot takes it
        assert await client.get("lb:probe") == "1"
        await client.delete("lb:probe")
        await client.aclose()


async def test_a_single_redis_keeps_the_plain_client(own_redis: RedisServer) -> None:
    client = connect(own_redis.url)
    assert isinstance(client, Redis) and not isinstance(client, RedisCluster)
    await client.aclose()


async def test_the_url_can_say_which_client_without_asking(
    redis_cluster: RedisClusterServers,
) -> None:
    said_no = connect(f"{redis_cluster.url}?cluster=no")
    assert not isinstance(said_no, RedisCluster)
    await said_no.aclose()
    said_yes = connect(f"{redis_cluster.url}?cluster=yes")
    assert isinstance(said_yes, RedisCluster)
    await said_yes.aclose()
    with pytest.raises(ConfigError, match="cluster= takes yes or no"):
        connect(f"{redis_cluster.url}?cluster=maybe")


async def test_a_redis_that_does_not_answer_at_start_is_taken_for_a_single_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "storage.connect"):
        client = connect(f"redis://127.0.0.1:{free_port()}/0")
    assert not isinstance(client, RedisCluster)
    assert "add ?cluster=yes to REDIS_URL for a Redis Cluster" in caplog.text
    await client.aclose()
