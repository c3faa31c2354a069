"""What is kept about one prospect, read and erased one kind of record at a time.

bot/privacy.py lists every kind (these, the outbox's and the tracked links') once, for both
`/forget` and `ladder export`. Nothing here scans the event log: a conversation's events are
found through its index (`keys.conversation_events`), written in the same commit as they are.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from domain.model import DomainEvent
from storage import keys

XDEL_PAGE = 1000  # ids per XDEL inside the erase script (Lua's unpack has a limit)

# KEYS: event log, the conversation's event index. Deletes the indexed entries and the index;
# returns how many entries were still in the log (older ones were trimmed by its window).
ERASE_EVENTS = """
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
local erased = 0
for first = 1, #ids, tonumber(ARGV[1]) do
  local last = math.min(#ids, first + tonumber(ARGV[1]) - 1)
  erased = erased + redis.call('XDEL', KEYS[1], unpack(ids, first, last))
end
redis.call('DEL', KEYS[2])
return erased
"""


class ProspectRecords:
    """The conversation hash, its timers, its events, its Telegram keyboard record and what the
    sales team's Slack keeps about it, for one conversation id."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._erase_events = redis.register_script(ERASE_EVENTS)

    async def erase_conversation(self, conversation_id: str) -> int:
        return int(await self.redis.delete(keys.conversation(conversation_id)))

    async def erase_timers(self, conversation_id: str) -> int:
        ids = list(await self.redis.smembers(keys.conversation_timers(conversation_id)))
        shard = keys.shard_of(conversation_id)
        async with self.redis.pipeline(transaction=True) as pipe:  # the conversation's shard
            if ids:
                pipe.zrem(keys.timers_due(shard), *ids)
                pipe.zrem(keys.timers_processing(shard), *ids)
                pipe.hdel(keys.timers_body(shard), *ids)
            pipe.delete(keys.conversation_timers(conversation_id))
            await pipe.execute()
        return len(ids)

    async def events(self, conversation_id: str) -> list[DomainEvent]:
        """The conversation's events still in the log, oldest first (its index, then one
        XRANGE per id in one round trip)."""
        ids = await self.redis.lrange(keys.conversation_events(conversation_id), 0, -1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(keys.events(keys.shard_of(conversation_id)), entry_id, entry_id)
            found: list[Any] = await pipe.execute()
        return [DomainEvent.from_fields(rows[0][1]) for rows in found if rows]

    async def erase_events(self, conversation_id: str) -> int:
        erased = await self._erase_events(
            keys=[
                keys.events(keys.shard_of(conversation_id)),
                keys.conversation_events(conversation_id),
            ],
            args=[XDEL_PAGE],
        )
        return int(erased)

    async def keyboard(self, conversation_id: str) -> int | None:
        """The Telegram message id of the latest choice keyboard sent to the prospect."""
        found = await self.redis.get(keys.keyboard(conversation_id))
        return int(found) if found is not None else None

    async def erase_keyboard(self, conversation_id: str) -> int:
        return int(await self.redis.delete(keys.keyboard(conversation_id)))

    async def slack_lead(self, conversation_id: str) -> dict[str, str]:
        """Where the prospect's latest alert is in Slack (channel, ts) and the thread of a take
        over; {} when the sales team was never alerted."""
        stored = await self.redis.hgetall(keys.lead_key(conversation_id))
        return {str(k): str(v) for k, v in stored.items()}

    async def erase_slack_lead(self, conversation_id: str) -> int:
        """The lead record and the alert threads it names (which lead back to the prospect)."""
        lead = await self.slack_lead(conversation_id)
        threads = {
            keys.thread_key(lead[channel], lead[ts])
            for channel, ts in (("channel", "ts"), ("thread_channel", "thread_ts"))
            if lead.get(channel) and lead.get(ts)
        }
        return int(await self.redis.delete(keys.lead_key(conversation_id), *threads))  # {slack}
