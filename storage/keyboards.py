"""The last choice keyboard shown in each prospect's chat: one key per conversation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import StorageError
from storage import keys


@contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StorageError(f"Redis is unavailable: {exc}") from exc


class RedisKeyboards:
    """Which message of a chat carries the latest choice keyboard (see storage.base.Keyboards);
    raises StorageError when Redis is unavailable."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def replace(self, conversation: str, message_id: int) -> int | None:
        with _available():
            previous = await self.redis.set(
                keys.keyboard(conversation), message_id, ex=keys.KEYBOARD_RETENTION, get=True
            )
        return int(previous) if previous is not None else None

    async def take(self, conversation: str) -> int | None:
        with _available():
            tracked = await self.redis.getdel(keys.keyboard(conversation))
        return int(tracked) if tracked is not None else None
