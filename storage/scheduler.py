"""Due follow-ups and reminders, claimed atomically so that one worker handles each.

The conversation store's commit (storage/redis.py) writes a timer in its conversation's shard:
its due time in the sorted set `keys.timers_due`, its Timer JSON in the hash `keys.timers_body`.
A worker `claim`s due timers shard by shard, the longest-waiting shard first: the ids move to
the shard's `keys.timers_processing`, scored by a lease deadline. `ack` ends a claim; `recover` puts
back the claims of a worker that died before acking, once their lease has run out. So an item is
handled once while workers live, and at least once when one dies mid-batch (the engine ignores
a timer that no longer matches the conversation, so handling it again sends nothing twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from redis.asyncio import Redis

from domain.model import Timer
from storage import keys

# KEYS: due, processing, body. ARGV: now, limit, lease deadline.
# The ids with score <= now are the lowest ranks, so ZREMRANGEBYRANK removes exactly them.
CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #ids - 1)
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('HGET', KEYS[3], id)
  if body then
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = body
  end
end
return out
"""

# KEYS: processing, body, due, conversation timers. ARGV: id, claimed body, lease deadline.
# The lease deadline fences the claim: a worker whose lease ran out (and whose item another
# worker may hold now) changes nothing. The body goes only if it is still the claimed one and
# the id was not scheduled again meanwhile (the engine's next nudge reuses the id).
ACK = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[3]) then return -1 end
redis.call('ZREM', KEYS[1], ARGV[1])
local rescheduled = redis.call('ZSCORE', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] and not rescheduled then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[1])
  return 1
end
return 0
"""

# KEYS: processing, due, body. ARGV: now, limit.
# A cancelled timer (body gone) is not put back; one scheduled again keeps its new due time (NX).
RECOVER = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                         tonumber(ARGV[2]))
local moved = 0
for i = 1, #items, 2 do
  local id = items[i]
  redis.call('ZREM', KEYS[1], id)
  if redis.call('HEXISTS', KEYS[3], id) == 1 then
    moved = moved + redis.call('ZADD', KEYS[2], 'NX', items[i + 1], id)
  end
end
return moved
"""


@dataclass(frozen=True)
class Claim:
    """A due timer one worker holds until `lease_until` (epoch seconds), as it was claimed."""

    timer: Timer
    body: str  # the JSON claimed: ack deletes the stored body only if it is still this
    lease_until: float  # fences ack: a claim whose lease ran out changes nothing


class Ack(StrEnum):
    """What `ack` did."""

    DONE = "done"  # the timer is gone
    CHANGED = "changed"  # it was cancelled or scheduled again while claimed: left as it is now
    LOST = "lost"  # the lease had run out; the timer went back to the queue (or to another worker)


_ACKS = {1: Ack.DONE, 0: Ack.CHANGED, -1: Ack.LOST}


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class RedisScheduler:
    """The timer queue the conversation store fills, as the workers see it: every shard's."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(CLAIM)
        self._ack = redis.register_script(ACK)
        self._recover = redis.register_script(RECOVER)

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Claim]:
        """Take up to `limit` timers due by `now`, for `lease`: one look at every shard's
        earliest due timer, then the shards in that order, each shard's timers earliest first,
        until `limit` are taken (so the longest-waiting shard is served first)."""
        if limit < 1:
            return []
        at = now.timestamp()
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.zrangebyscore(keys.timers_due(shard), "-inf", at, 0, 1, withscores=True)
            heads = await pipe.execute()
        waiting = sorted((due[0][1], shard) for shard, due in enumerate(heads) if due)
        lease_until = (now + lease).timestamp()
        claims: list[Claim] = []
        for _, shard in waiting:
            if len(claims) >= limit:
                break
            flat = await self._claim(
                keys=[
                    keys.timers_due(shard),
                    keys.timers_processing(shard),
                    keys.timers_body(shard),
                ],
                args=[at, limit - len(claims), lease_until],
            )
            claims += [Claim(Timer.from_json(body), body, lease_until) for body in flat[1::2]]
        return claims

    async def ack(self, claim: Claim) -> Ack:
        """The claimed timer was handled: end the claim and delete the timer unless it was
        scheduled again meanwhile."""
        timer = claim.timer
        shard = keys.shard_of(timer.conversation)
        result = await self._ack(
            keys=[
                keys.timers_processing(shard),
                keys.timers_body(shard),
                keys.timers_due(shard),
                keys.conversation_timers(timer.conversation),
            ],
            args=[timer.id, claim.body, claim.lease_until],
        )
        return _ACKS[int(result)]

    async def recover(self, now: datetime, limit: int = 1000) -> int:
        """Put claims whose lease ran out by `now` back in the queue, due at once; returns how
        many went back (cancelled or rescheduled ones do not). At most `limit` per shard."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.zcount(keys.timers_processing(shard), "-inf", now.timestamp())
            expired = await pipe.execute()
        moved = 0
        for shard, count in zip(keys.shards(), expired, strict=True):
            if count:
                moved += await self._recover(
                    keys=[
                        keys.timers_processing(shard),
                        keys.timers_due(shard),
                        keys.timers_body(shard),
                    ],
                    args=[now.timestamp(), limit],
                )
        return moved

    async def next_due(self) -> datetime | None:
        """When the earliest queued timer is due (None: nothing queued), e.g. to sleep until
        then or to move a test clock straight to it."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.zrange(keys.timers_due(shard), 0, 0, withscores=True)
            firsts = await pipe.execute()
        scores = [float(first[0][1]) for first in firsts if first]
        return _moment(min(scores)) if scores else None

    async def pending(self) -> int:
        """How many timers are queued (not claimed), in every shard."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.zcard(keys.timers_due(shard))
            return sum(map(int, await pipe.execute()))

    async def of(self, conversation_id: str) -> list[Timer]:
        """The conversation's scheduled timers (follow-ups, reminders), soonest first."""
        ids = sorted(await self.redis.smembers(keys.conversation_timers(conversation_id)))
        if not ids:
            return []
        body = keys.timers_body(keys.shard_of(conversation_id))
        bodies = await self.redis.hmget(body, ids)
        return sorted((Timer.from_json(b) for b in bodies if b is not None), key=lambda t: t.due)
