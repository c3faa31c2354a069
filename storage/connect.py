"""Open the Redis that REDIS_URL names: a single Redis, or a Redis Cluster through any of its
nodes; unset, the embedded in-process one with a loud warning.

Whether the URL names a cluster node is asked once, at start (INFO cluster), unless the URL
says so itself with `?cluster=yes` or `?cluster=no` (then nothing is asked: a cluster
deployment should say `yes`, so that a node that is down at start is not taken for a single
Redis).
"""

from __future__ import annotations

import logging
import os
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import fakeredis
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisClusterException, RedisError, TimeoutError

from domain.errors import ConfigError

log = logging.getLogger(__name__)

EMBEDDED_WARNING = (
    "REDIS_URL is not set: using the embedded in-process Redis. "
    "Nothing survives a restart and no other process can share it."
)
CLUSTER_OPTION = "cluster"  # REDIS_URL query parameter: yes / no (unset: ask the server)
PROBE_TIMEOUT = 5.0  # seconds to wait for the server's answer to INFO cluster

# What the client raises when Redis is unreachable or refuses a command. The cluster client's
# RedisClusterException (no node reachable, keys of several slots) is not a RedisError.
REDIS_ERRORS = (RedisError, RedisClusterException)


def connect(url: str | None = None) -> Redis:
    """A Redis client that retries connection hiccups with backoff before giving up.

    For a Redis Cluster it is redis-py's RedisCluster, typed as Redis: it answers the same
    commands, and storage/ sends it only scripts and transactions whose keys share one slot."""
    url = url if url is not None else os.environ.get("REDIS_URL")
    if not url:
        log.warning(EMBEDDED_WARNING)
        client: Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        return client
    url, cluster = _cluster_option(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 30,
    }
    if cluster if cluster is not None else _is_cluster(url):
        return cast(Redis, RedisCluster.from_url(url, **options))
    return Redis.from_url(url, **options)


async def ping(redis: Redis) -> None:
    """Raise one of REDIS_ERRORS unless Redis answers."""
    await redis.ping()


def _cluster_option(url: str) -> tuple[str, bool | None]:
    """The URL without `?cluster=`, and what that said (None: nothing)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    said = [value for name, value in query if name == CLUSTER_OPTION]
    if not said:
        return url, None
    if said[-1] not in ("yes", "no"):
        raise ConfigError(f"REDIS_URL: {CLUSTER_OPTION}= takes yes or no, not {said[-1]!r}")
    rest = urlencode([(name, value) for name, value in query if name != CLUSTER_OPTION])
    return urlunsplit(parts._replace(query=rest)), said[-1] == "yes"


def _is_cluster(url: str) -> bool:
    """Does the server run in cluster mode? One INFO cluster at start. A server that does not
    answer is taken for a single Redis (and the client waits for it as for any outage)."""
    try:
        with SyncRedis.from_url(
            url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
        ) as probe:
            info = cast(dict[str, Any], probe.info("cluster"))
    except RedisError as exc:
        log.warning(
            "could not ask Redis whether it is a cluster (%s): using the single-node client; "
            "add ?%s=yes to REDIS_URL for a Redis Cluster",
            exc,
            CLUSTER_OPTION,
        )
        return False
    return bool(info.get("cluster_enabled"))
