"""Uploaded media files: the Telegram file_id of each file a bot sent, so a file is uploaded
once and sent by id after that."""

from __future__ import annotations

from redis.asyncio import Redis

from domain.errors import StorageError
from storage import keys
from storage.connect import REDIS_ERRORS


class RedisMediaFiles:
    """File ids by bot and file digest; raises StorageError when Redis is unavailable."""

    def __init__(self, redis: Redis, bot: str) -> None:
        self.redis = redis
        self.bot = bot

    async def file_id(self, digest: str) -> str | None:
        key = keys.media_file(self.bot, digest)
        try:
            found = await self.redis.getex(key, ex=keys.MEDIA_RETENTION)
        except REDIS_ERRORS as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc
        return found.decode() if isinstance(found, bytes) else found

    async def remember(self, digest: str, file_id: str) -> None:
        key = keys.media_file(self.bot, digest)
        try:
            await self.redis.set(key, file_id, ex=keys.MEDIA_RETENTION)
        except REDIS_ERRORS as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc

    async def forget(self, digest: str) -> None:
        """Telegram no longer knows the id: the next send uploads the file again."""
        try:
            await self.redis.delete(keys.media_file(self.bot, digest))
        except REDIS_ERRORS as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc
