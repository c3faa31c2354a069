"""The Redis backend of the storage contract: one Lua script makes each step atomic."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import WatchError

from domain.errors import ConflictError, DuplicateUpdate, UnknownFlow
from domain.model import Conversation, Status
from storage import keys
from storage.base import Committed, Lane, Retention, StepWrite

FINISHED = frozenset({Status.COMPLETED, Status.STOPPED, Status.DROPPED})  # start the expiry
SCAN_PAGE = 500
EVENT_FIELDS = ("name", "conversation", "flow", "version", "step", "at", "data")

# KEYS: conversation, conversation timers, events, timers due, timers body, outbox, seen
#       (the conversation key again: none), prospect lane, slack lane, hold, conversation
#       events. One slot: the conversation's shard (a Redis Cluster refuses a script whose keys
#       are not).
# ARGV: expected revision, document, seen ttl, cancel_all, hold owner ('' none), hold ms,
#       oldest event id kept in the log (MINID), conversation ttl (0: kept),
#       n events, 7 fields each; n timers, (id, score, body) each; n cancels, id each;
#       n outbox, (kind, key, body, conversation, lane) each
# Returns 0 (revision moved on), -1 (update seen before) or {new revision, held, entry ids...}:
# held is 1 when the hold was taken (the step wrote prospect messages, none was waiting before).
COMMIT = """
local rev = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if rev ~= tonumber(ARGV[1]) then return 0 end
if KEYS[7] ~= KEYS[1] then
  if redis.call('SET', KEYS[7], '1', 'NX', 'EX', tonumber(ARGV[3])) == false then return -1 end
end
redis.call('HSET', KEYS[1], 'v', rev + 1, 'doc', ARGV[2])
local i = 9
if ARGV[4] == '1' then
  local ids = redis.call('SMEMBERS', KEYS[2])
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
  end
  redis.call('DEL', KEYS[2])
end
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local eid = redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[7], '*', 'name', ARGV[i],
    'conversation', ARGV[i+1], 'flow', ARGV[i+2], 'version', ARGV[i+3], 'step', ARGV[i+4],
    'at', ARGV[i+5], 'data', ARGV[i+6])
  redis.call('RPUSH', KEYS[11], eid)
  i = i + 7
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('ZADD', KEYS[4], ARGV[i+1], ARGV[i])
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i+2])
  redis.call('SADD', KEYS[2], ARGV[i])
  i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('ZREM', KEYS[4], ARGV[i])
  redis.call('HDEL', KEYS[5], ARGV[i])
  redis.call('SREM', KEYS[2], ARGV[i])
  i = i + 1
end
n = tonumber(ARGV[i]); i = i + 1
local ids = {}
local waiting = redis.call('LLEN', KEYS[8])
local said = false
for _ = 1, n do
  local id = redis.call('XADD', KEYS[6], '*', 'kind', ARGV[i], 'key', ARGV[i+1], 'body', ARGV[i+2],
                        'conversation', ARGV[i+3], 'lane', ARGV[i+4])
  if ARGV[i+4] == 'prospect' then redis.call('RPUSH', KEYS[8], id); said = true end
  if ARGV[i+4] == 'slack' then redis.call('RPUSH', KEYS[9], id) end
  table.insert(ids, id)
  i = i + 5
end
local held = 0
if said and waiting == 0 and ARGV[5] ~= '' then
  redis.call('SET', KEYS[10], ARGV[5], 'PX', tonumber(ARGV[6]))
  held = 1
end
local keep = tonumber(ARGV[8])
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[11]}) do
  if keep > 0 then redis.call('EXPIRE', key, keep) else redis.call('PERSIST', key) end
end
return {rev + 1, held, unpack(ids)}
"""


def _epoch(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time).timestamp()


class RedisConversationStore:
    """Conversations as one hash each ({v: revision, doc: JSON}); see storage.base."""

    def __init__(self, redis: Redis, retention: Retention | None = None) -> None:
        self.redis = redis
        self.retention = retention or Retention()
        self._commit = redis.register_script(COMMIT)

    async def load(self, conversation_id: str) -> Conversation | None:
        rev, doc = await self.redis.hmget(keys.conversation(conversation_id), ["v", "doc"])
        if doc is None:
            return None
        return Conversation.from_json(str(doc), revision=int(str(rev)))

    async def commit(self, write: StepWrite) -> Committed:
        conv = write.conversation
        args: list[str | int | float] = [
            conv.revision,
            conv.to_json(),
            keys.SEEN_RETENTION,
            "1" if write.cancel_all else "0",
            write.hold or "",
            max(1, int(write.hold_seconds * 1000)),
            self._oldest_event_kept(),
            self.retention.finished if conv.status in FINISHED else 0,
            len(write.events),
        ]
        for event in write.events:
            fields = event.fields()
            args.extend(fields[name] for name in EVENT_FIELDS)
        args.append(len(write.schedule))
        for timer in write.schedule:
            args.extend((timer.id, _epoch(timer.due), timer.to_json()))
        args.append(len(write.cancel))
        args.extend(write.cancel)
        args.append(len(write.outbox))
        for item in write.outbox:
            args.extend((item.kind, item.key, item.body, item.conversation, item.lane or ""))
        shard = keys.shard_of(conv.id)
        result = await self._commit(
            keys=[
                keys.conversation(conv.id),
                keys.conversation_timers(conv.id),
                keys.events(shard),
                keys.timers_due(shard),
                keys.timers_body(shard),
                keys.outbox(shard),
                keys.seen(conv.id, write.seen) if write.seen else keys.conversation(conv.id),
                keys.lane(conv.id, Lane.PROSPECT),
                keys.lane(conv.id, Lane.SLACK),
                keys.hold(conv.id),
                keys.conversation_events(conv.id),
            ],
            args=args,
        )
        if result == 0:
            raise ConflictError(f"conversation {conv.id} changed since revision {conv.revision}")
        if result == -1:
            raise DuplicateUpdate(f"update {write.seen} was processed before")
        revision, held, *ids = result
        return Committed(
            conv.with_(revision=int(revision)),
            tuple((str(eid), item) for eid, item in zip(ids, write.outbox, strict=True)),
            held=bool(held),
        )

    async def all(self) -> AsyncIterator[Conversation]:
        """Every stored conversation, in no particular order (SCAN in pages on every node, so
        Redis is never blocked for long)."""
        found = self.redis.scan_iter(match=keys.CONVERSATION_PATTERN, count=SCAN_PAGE)
        page: list[str] = []
        async for key in found:
            page.append(str(key))
            if len(page) == SCAN_PAGE:
                for conv in await self._documents(page):
                    yield conv
                page = []
        for conv in await self._documents(page):
            yield conv

    async def _documents(self, found: list[str]) -> list[Conversation]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in found:
                pipe.hmget(key, ["v", "doc"])
            rows = await pipe.execute()
        return [
            Conversation.from_json(doc, revision=int(rev)) for rev, doc in rows if doc is not None
        ]

    async def was_seen(self, conversation_id: str, key: str) -> bool:
        return bool(await self.redis.exists(keys.seen(conversation_id, key)))

    def _oldest_event_kept(self) -> str:
        """The MINID the event log is trimmed to: stream ids are Redis's milliseconds."""
        if not self.retention.events:
            return "0"
        return str(max(0, int((time.time() - self.retention.events) * 1000)))


class RedisFlowCatalog:
    """Published flow versions: hash `keys.flow(name)` {latest, v:<n>: YAML, at:<n>: published
    time, sha:<digest>: n}."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, name: str, source: str, *, only_if_new: bool = False) -> int:
        key = keys.flow(name)
        digest = "sha:" + hashlib.sha256(source.encode()).hexdigest()
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    latest = await pipe.hget(key, "latest")
                    known = await pipe.hget(key, digest)
                    if known is not None and (known == latest or only_if_new):
                        return int(known)
                    version = int(latest or 0) + 1
                    pipe.multi()  # type: ignore[no-untyped-call]
                    published = datetime.now(UTC).isoformat(timespec="seconds")
                    pipe.hset(
                        key,
                        mapping={
                            "latest": version,
                            f"v:{version}": source,
                            f"at:{version}": published,
                        },
                    )
                    pipe.hset(key, digest, version)
                    pipe.sadd(keys.FLOWS, name)
                    await pipe.execute()
                    return version
                except WatchError:  # someone published meanwhile: look again
                    continue

    async def source(self, name: str, version: int) -> str:
        text = await self.redis.hget(keys.flow(name), f"v:{version}")
        if text is None:
            raise UnknownFlow(f"flow {name!r} has no published version {version}")
        return str(text)

    async def latest(self, name: str) -> int | None:
        value = await self.redis.hget(keys.flow(name), "latest")
        return int(value) if value is not None else None

    async def versions(self, name: str) -> list[int]:
        fields = await self.redis.hkeys(keys.flow(name))
        return sorted(int(f[2:]) for f in map(str, fields) if f.startswith("v:"))

    async def published(self, name: str) -> dict[int, str]:
        """When each version was published (ISO 8601, UTC), by version."""
        fields = await self.redis.hgetall(keys.flow(name))
        return {int(f[3:]): str(at) for f, at in fields.items() if str(f).startswith("at:")}

    async def names(self) -> list[str]:
        return sorted(map(str, await self.redis.smembers(keys.FLOWS)))
