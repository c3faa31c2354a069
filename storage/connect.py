"""Open the Redis that REDIS_URL names, or the embedded in-process one with a loud warning."""

from __future__ import annotations

import logging
import os
from typing import Any

import fakeredis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger("ladderbot.storage")

EMBEDDED_WARNING = (
    "REDIS_URL is not set: using the embedded in-process Redis. "
    "Nothing survives a restart and no other process can share it."
)


def connect(url: str | None = None) -> Redis:
    """A Redis client that retries connection hiccups with backoff before giving up."""
    url = url if url is not None else os.environ.get("REDIS_URL")
    if not url:
        log.warning(EMBEDDED_WARNING)
        client: Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        return client
    options: dict[str, Any] = {
        "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 30,
    }
    return Redis.from_url(url, **options)
