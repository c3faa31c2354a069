"""Reading the domain event log: one Stream per shard (`keys.events`), written by the commit.

Readers see one log: every shard's entries merged in stream-id order (each shard's own order is
its commits' order, so a conversation's events always come in the order they happened).
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from domain.model import DomainEvent
from storage import keys

PAGE = 1000  # stream entries per XRANGE call

# KEYS: a conversation's event index, the conversation. ARGV: ttl (seconds) for an index whose
# conversation is gone (0: none), then ids of the conversation's entries in the log, which the
# index may lack. Adds the missing ones, keeps the index in log order and the conversation's
# expiry; returns how many were added.
MERGE_INDEX = """
local function order(a, b)
  local ams, aseq = string.match(a, '^(%d+)%-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)%-(%d+)$')
  if ams ~= bms then return tonumber(ams) < tonumber(bms) end
  return tonumber(aseq) < tonumber(bseq)
end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local have = {}
for _, id in ipairs(ids) do have[id] = true end
local added = 0
for n = 2, #ARGV do
  if not have[ARGV[n]] then
    have[ARGV[n]] = true
    table.insert(ids, ARGV[n])
    added = added + 1
  end
end
if added == 0 then return 0 end
table.sort(ids, order)
redis.call('DEL', KEYS[1])
for first = 1, #ids, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ids, first, math.min(#ids, first + 999)))
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl)
elseif ttl == -2 and tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return added
"""


def _stream_ms(moment: datetime) -> int:
    """A stream id's time part (Redis's milliseconds) for `moment`."""
    return max(0, int(moment.timestamp() * 1000))


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisEventLog:
    """The event log of every shard, read page by page so Redis is never blocked for long."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def _pages(
        self, stream: str, low: str = "-", high: str = "+"
    ) -> AsyncIterator[list[Any]]:
        """One Stream's entries (id, fields), oldest first, a page at a time."""
        while True:
            batch: Any = await self.redis.xrange(stream, min=low, max=high, count=PAGE)
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

    async def written_between(
        self, since: datetime, until: datetime | None = None
    ) -> AsyncIterator[tuple[str, DomainEvent]]:
        """The entries written at or after `since` and before `until` (None: up to now), as
        (shard/entry id, event), oldest first across shards, read a page at a time (for
        `ladder events export`: the log keeps only `Retention.events` in Redis)."""
        low = f"{_stream_ms(since)}-0"
        high = f"({_stream_ms(until)}-0" if until is not None else "+"
        heads: list[tuple[tuple[int, int], int, str, dict[str, str]]] = []
        rests: dict[int, AsyncIterator[tuple[str, dict[str, str]]]] = {}
        for shard in keys.shards():
            rests[shard] = self._entries(keys.events(shard), low, high)
            await self._advance(heads, shard, rests[shard])
        heapq.heapify(heads)
        while heads:
            _, shard, entry_id, fields = heapq.heappop(heads)
            yield f"{shard}/{entry_id}", DomainEvent.from_fields(fields)
            await self._advance(heads, shard, rests[shard])

    async def _entries(
        self, stream: str, low: str, high: str
    ) -> AsyncIterator[tuple[str, dict[str, str]]]:
        async for page in self._pages(stream, low, high):
            for entry_id, fields in page:
                yield str(entry_id), fields

    @staticmethod
    async def _advance(
        heads: list[tuple[tuple[int, int], int, str, dict[str, str]]],
        shard: int,
        rest: AsyncIterator[tuple[str, dict[str, str]]],
    ) -> None:
        found = await anext(rest, None)
        if found is not None:
            heapq.heappush(heads, (_order(found[0]), shard, *found))

    async def index(self, orphan_ttl: int) -> int:
        """Put every entry of the log in its conversation's event index: entries written before
        the indexes existed (an upgrade), so that erasing a prospect finds them. An index whose
        conversation is gone expires after `orphan_ttl` seconds (0: never). Safe to run again
        and while other processes write; returns how many entries were added."""
        merge = self.redis.register_script(MERGE_INDEX)
        added = 0
        for shard in keys.shards():
            async for page in self._pages(keys.events(shard)):
                ids: dict[str, list[str]] = {}
                for entry_id, fields in page:
                    ids.setdefault(str(fields.get("conversation", "")), []).append(str(entry_id))
                for conversation, entries in ids.items():
                    if conversation:
                        added += int(await merge(
                            keys=[keys.conversation_events(conversation),
                                  keys.conversation(conversation)],
                            args=[orphan_ttl, *entries],
                        ))  # fmt: skip
        return added
