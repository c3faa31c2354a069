"""Reading the domain event log: one Stream per shard (`keys.events`), written by the commit.

Readers see one log: every shard's entries merged in stream-id order (each shard's own order is
its commits' order, so a conversation's events always come in the order they happened).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

from redis.asyncio import Redis

from bot.model import DomainEvent
from storage import keys

PAGE = 1000  # stream entries per XRANGE call


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisEventLog:
    """The event log of every shard, read page by page so Redis is never blocked for long."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def _pages(self, stream: str, low: str = "-") -> AsyncIterator[list[Any]]:
        """One Stream's entries (id, fields), oldest first, a page at a time."""
        while True:
            batch: Any = await self.redis.xrange(stream, min=low, max="+", count=PAGE)
            if batch:
                yield batch
            if len(batch) < PAGE:
                return
            low = "(" + batch[-1][0]

    async def read(self) -> list[DomainEvent]:
        """Every event in the log, oldest first."""
        rows: list[tuple[int, int, int, dict[str, str]]] = []
        for shard in keys.shards():
            async for page in self._pages(keys.events(shard)):
                for entry_id, fields in page:
                    ms, _, seq = str(entry_id).partition("-")
                    rows.append((int(ms), int(seq), shard, fields))
        rows.sort()  # each shard's run is in order already; (ms, seq, shard) is unique
        return [DomainEvent.from_fields(fields) for *_, fields in rows]

    async def of(self, conversation_id: str) -> list[DomainEvent]:
        """The conversation's events, oldest first (a scan of its shard's log)."""
        stream = keys.events(keys.shard_of(conversation_id))
        return [
            DomainEvent.from_fields(fields)
            async for page in self._pages(stream)
            for _, fields in page
            if fields.get("conversation") == conversation_id
        ]

    async def recent(self, names: Collection[str], count: int, scan: int) -> list[DomainEvent]:
        """The newest `count` events of these names, newest first by their time (then by stream
        id: events of two shards in the same millisecond have no order), searching the newest
        `scan` entries of each shard."""
        found: list[tuple[str, tuple[int, int], DomainEvent]] = []
        for shard in keys.shards():
            high, scanned, mine = "+", 0, 0
            while mine < count and scanned < scan:
                batch: Any = await self.redis.xrevrange(
                    keys.events(shard), max=high, min="-", count=PAGE
                )
                if not batch:
                    break
                scanned += len(batch)
                for eid, fields in batch:
                    if fields.get("name") in names:
                        event = DomainEvent.from_fields(fields)
                        found.append((event.at, _order(str(eid)), event))
                        mine += 1
                high = "(" + batch[-1][0]
        found.sort(key=lambda row: row[:2], reverse=True)
        return [event for _, _, event in found[:count]]

    async def count(self) -> int:
        """How many events the log holds (every shard)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.xlen(keys.events(shard))
            return sum(map(int, await pipe.execute()))
