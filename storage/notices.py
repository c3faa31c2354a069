"""Messages for a prospect that no step of their conversation wrote (the answers to /forget):
put in the outbox atomically with the update that caused them, like a step's messages."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from domain.errors import DuplicateUpdate
from storage import keys
from storage.base import Lane, OutboxItem, Posted

# KEYS: seen (none: the prospect lane again), outbox, the prospect lane, hold; one slot, the
#       conversation's shard.
# ARGV: seen ttl, hold owner ('' none), hold ms, then (kind, key, body, conversation, lane) each.
# Returns -1 (update seen before) or {held, entry ids...}: held is 1 when the hold was taken
# (no earlier message for the prospect was still waiting).
POST = """
if KEYS[1] ~= KEYS[3] then
  if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) == false then return -1 end
end
local waiting = redis.call('LLEN', KEYS[3])
local ids = {}
for i = 4, #ARGV, 5 do
  local id = redis.call('XADD', KEYS[2], '*', 'kind', ARGV[i], 'key', ARGV[i+1], 'body', ARGV[i+2],
                        'conversation', ARGV[i+3], 'lane', ARGV[i+4])
  redis.call('RPUSH', KEYS[3], id)
  table.insert(ids, id)
end
local held = 0
if waiting == 0 and ARGV[2] ~= '' then
  redis.call('SET', KEYS[4], ARGV[2], 'PX', tonumber(ARGV[3]))
  held = 1
end
return {held, unpack(ids)}
"""


class RedisNotices:
    """Writes notices to the outbox (see storage.base.Notices)."""

    def __init__(self, redis: Redis) -> None:
        self._post = redis.register_script(POST)

    async def post(
        self,
        conversation: str,
        items: Sequence[OutboxItem],
        *,
        seen: str | None = None,
        hold: str | None = None,
        hold_seconds: float = 10.0,
    ) -> Posted:
        if any(i.conversation != conversation or i.lane != Lane.PROSPECT for i in items):
            raise ValueError(f"notices go to the prospect lane of {conversation} only")
        args: list[str | int] = [keys.SEEN_RETENTION, hold or "", max(1, int(hold_seconds * 1000))]
        for item in items:
            args.extend((item.kind, item.key, item.body, item.conversation, Lane.PROSPECT))
        result = await self._post(
            keys=[
                keys.seen(conversation, seen) if seen else keys.lane(conversation, Lane.PROSPECT),
                keys.outbox(keys.shard_of(conversation)),
                keys.lane(conversation, Lane.PROSPECT),
                keys.hold(conversation),
            ],
            args=args,
        )
        if result == -1:
            raise DuplicateUpdate(f"update {seen} was processed before")
        held, *ids = result
        entries = tuple((str(eid), item) for eid, item in zip(ids, items, strict=True))
        return Posted(entries, held=bool(held))
