"""The event log as a whole: reading it by the time its entries were written, for archiving
(`ladder events export`: the log keeps only `Retention.events` in Redis), and indexing the
entries written before conversations had an event index (`ladder events index`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.model import DomainEvent
from storage import keys

PAGE = 1000  # entries per XRANGE


def _stream_ms(moment: datetime) -> int:
    """A stream id's time part (Redis's milliseconds) for `moment`."""
    return max(0, int(moment.timestamp() * 1000))


async def written_between(
    redis: Redis, since: datetime, until: datetime | None = None
) -> AsyncIterator[tuple[str, DomainEvent]]:
    """The log's entries written at or after `since` and before `until` (None: up to now),
    oldest first, as (entry id, event), read a page at a time."""
    low = f"{_stream_ms(since)}-0"
    high = f"({_stream_ms(until)}-0" if until is not None else "+"
    while True:
        batch: Any = await redis.xrange(keys.EVENTS, min=low, max=high, count=PAGE)
        for entry_id, fields in batch:
            yield str(entry_id), DomainEvent.from_fields(fields)
        if len(batch) < PAGE:
            return
        low = f"({batch[-1][0]}"


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


async def index_events(redis: Redis, orphan_ttl: int) -> int:
    """Put every entry of the log in its conversation's event index: entries written before
    the indexes existed (an upgrade), so that erasing a prospect finds them. An index whose
    conversation is gone expires after `orphan_ttl` seconds (0: never). Safe to run again and
    while other processes write; returns how many entries were added."""
    merge = redis.register_script(MERGE_INDEX)
    added = 0
    low = "-"
    while True:
        batch: Any = await redis.xrange(keys.EVENTS, min=low, max="+", count=PAGE)
        ids: dict[str, list[str]] = {}
        for entry_id, fields in batch:
            ids.setdefault(str(fields.get("conversation", "")), []).append(str(entry_id))
        for conversation, entries in ids.items():
            if conversation:
                added += int(await merge(
                    keys=[keys.conversation_events(conversation), keys.conversation(conversation)],
                    args=[orphan_ttl, *entries],
                ))  # fmt: skip
        if len(batch) < PAGE:
            return added
        low = f"({batch[-1][0]}"
