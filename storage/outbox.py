"""Delivery from the outbox Streams (`keys.outbox`, one per shard) through one consumer group.

Every item (a prospect's message, a Slack alert, a relayed message) is handed to a handler
until it succeeds:
- the process that committed a step delivers its items at once (`deliver_now`) while it holds
  the conversation (`keys.hold`, set in the commit, a few seconds): no other consumer sends that
  conversation's items meanwhile. Whatever it could not deliver stays for the consumers;
- new items are read with XREADGROUP, so each goes to exactly one consumer; items are handed
  out concurrently (`OutboxPolicy.concurrency`), but a conversation's items of one lane
  (`keys.lane`) one after another in the order they were written: an item whose predecessor
  is still undelivered waits for it, across retries too;
- a failed item stays pending and is retried after a capped exponential backoff, for
  `give_up_after` (a day) from its first failure; then it moves to the dead-letter Stream
  (logged, counted in /metrics, replayed or dropped with `ladder outbox`);
- a handler raising `RetryLater` (Slack's 429 Retry-After) pauses every item of that kind for
  the time asked, without counting a failure;
- a consumer holds each item it read or claimed under a lease (owner, and since when, in the
  item's record; the consumer that would take it over judges by its own lease); an item whose
  lease ran out (its consumer killed, crashed, or stalled) is claimed by another one; that
  counts as a failed attempt, and `max_lost` of them dead-letter it, so a poison item cannot
  loop forever;
- before each send a consumer renews the item's lease, fenced by owner: an item another
  consumer took over meanwhile is not sent (nor deferred), so a batch that outlives its lease
  on a busy machine never resends its later items; at most the one in flight goes twice.
Every shard's Stream is read each pass; an entry's retry record, lane, hold, delivered marker
and dead letter are in its shard, so each script touches one slot of a Redis Cluster.
Due times of retries follow the outbox's clock (domain.clock), so a test can live through a day
of outage in moments; leases follow its lease clock, the system's unless a test injects one to
run a lease out (a demo's sped-up clock must not shorten them); receivers' pauses are Redis's
own time. Reading new items and claiming pending ones are each one Lua script per pass
(XREADGROUP or XPENDING + XCLAIM, with the records), so two consumers never both take an item.
Each delivered item leaves a marker (`keys.delivered`, SET NX) in the same script as its XACK +
XDEL, the one round trip after the send: a redelivery finds the marker and is only
acknowledged, so a consumer that dies between a send and that write repeats at most the item it
was sending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.clock import Clock, SystemClock
from domain.errors import LadderError
from storage import keys
from storage.base import Lane, OutboxItem
from storage.connect import REDIS_ERRORS

log = logging.getLogger(__name__)

GROUP = "delivery"  # the one consumer group; a handler dispatches on the item's kind
RECORD_RETRY = 0.2  # seconds between attempts to record a sent item while Redis is away
FIELDS = ("kind", "key", "body", "conversation", "lane")

Handler = Callable[[OutboxItem], Awaitable[None]]


class RetryLater(LadderError):
    """The receiver is rate-limiting: retry this kind of item after `seconds`; not a failure."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class Undeliverable(LadderError):
    """The item can never be delivered as it is (bad body, unknown channel): dead-letter it now."""


class _TakenOver(Exception):
    """This consumer's lease on an entry ran out and another consumer holds it now."""


@dataclass(frozen=True)
class OutboxPolicy:
    """How hard to try. Handlers are cut off at half the lease, so a live consumer never
    holds an item long enough for another to take it over."""

    give_up_after: float = 24 * 3600.0  # seconds from an item's first failure to dead-lettering
    max_attempts: int | None = None  # also give up after this many failures (None: only time)
    max_lost: int = 8  # consumers lost while holding the item (a poison item): dead-letter it
    backoff: float = 2.0  # seconds before the first retry; doubles with each failure
    max_backoff: float = 300.0
    lease: float = 60.0  # an item not renewed this long (by the lease clock) is taken over
    hold: float = 10.0  # seconds the process that took a step has its messages to itself
    behind: float = 1.0  # an item whose lane has an earlier one undelivered looks again after
    batch: int = 200  # new items read per pass, and pending items scanned per pass
    concurrency: int = 16  # items (of different lanes) handed to the handler at once
    delivered_ttl: int = keys.DELIVERED_RETENTION  # how long a delivered marker is kept (s)

    def wait_after(self, failures: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class Retry:
    """An entry's retry record: failures (lost consumers included), first failure (epoch ms)."""

    failures: int = 0
    lost: int = 0
    first_ms: int = 0
    error: str = ""


@dataclass(frozen=True)
class _Entry:
    """An outbox entry to deliver: its shard, its fields, its retry record, and until when
    (epoch ms by the lease clock) this consumer holds it (0: not known, renew before sending)."""

    shard: int
    id: str
    fields: dict[str, str]
    retry: Retry = field(default_factory=Retry)
    lease_until: int = 0

    @property
    def lane_key(self) -> str | None:
        conversation, lane = self.fields.get("conversation"), self.fields.get("lane")
        if conversation and lane in tuple(Lane):
            return keys.lane(conversation, lane)
        return None


@dataclass(frozen=True)
class DeadLetter:
    """An item given up on, as stored in its shard's dead-letter Stream; `id` names both
    ("<shard>/<entry id>")."""

    id: str
    item: OutboxItem
    error: str
    attempts: int


# KEYS: outbox stream, retries hash. ARGV: group, consumer, count, now (epoch ms).
# New entries for this consumer, each recorded as held by it since now.
READ = """
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]),
                        'STREAMS', KEYS[1], '>')
if type(read) ~= 'table' or type(read[1]) ~= 'table' or type(read[1][2]) ~= 'table' then
  return {}  -- nil, or {} or {{stream}} (fakeredis): nothing new
end
local held = cjson.encode({state = 'held', owner = ARGV[2], since = tonumber(ARGV[4])})
for _, entry in ipairs(read[1][2]) do redis.call('HSET', KEYS[2], entry[1], held) end
return read[1][2]
"""

# KEYS: outbox stream, retries hash
# ARGV: group, consumer, lease ms, scan start (exclusive id or '-'), count, now (epoch ms),
# now by the lease clock (epoch ms)
# Returns {last scanned id ('' once the end is reached), {{id, {fields...}, retry JSON}...}}:
# entries waiting for a retry that is due by now, and held entries whose lease ran out by now
# (a lost consumer: a failure; an entry with no record, by Redis's idle time); each is held by
# this consumer since now. Ids whose entry was deleted meanwhile are acknowledged.
CLAIM_DUE = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], '+', tonumber(ARGV[5]))
local now, lease_now = tonumber(ARGV[6]), tonumber(ARGV[7])
local out = {}
local last = ''
for _, p in ipairs(pending) do
  local id, idle = p[1], tonumber(p[3])
  last = id
  local raw = redis.call('HGET', KEYS[2], id)
  local info = {}
  if raw then info = cjson.decode(raw) end
  info['failures'] = tonumber(info['failures'] or 0)
  info['lost'] = tonumber(info['lost'] or 0)
  info['first'] = tonumber(info['first'] or 0)
  info['error'] = info['error'] or ''
  local due
  if info['state'] == 'waiting' then due = tonumber(info['due'] or 0) <= now
  elseif info['state'] == 'held' then due = tonumber(info['since'] or 0) + ARGV[3] <= lease_now
  else due = idle >= tonumber(ARGV[3]) end
  if due then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
    local entry = claimed[1]
    if entry and entry[2] then
      if info['state'] ~= 'waiting' then
        info['failures'] = info['failures'] + 1
        info['lost'] = info['lost'] + 1
        if info['first'] == 0 then info['first'] = now end
        info['error'] = 'consumer lost: no answer within the lease'
      end
      info['state'] = 'held'
      info['owner'] = ARGV[2]
      info['since'] = lease_now
      local encoded = cjson.encode(info)
      redis.call('HSET', KEYS[2], id, encoded)
      table.insert(out, {id, entry[2], encoded})
    else
      redis.call('XACK', KEYS[1], ARGV[1], id)
      redis.call('HDEL', KEYS[2], id)
    end
  end
end
if #pending < tonumber(ARGV[5]) then last = '' end
return {last, out}
"""

# KEYS: retries hash. ARGV: entry id, consumer, now (epoch ms).
# Renew the consumer's lease on an entry just before sending it: 1 if it still holds it, 0 if
# another consumer took it over (or it is finished): then it must not be sent.
RENEW = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local info = cjson.decode(raw)
if info['state'] ~= 'held' or info['owner'] ~= ARGV[2] then return 0 end
info['since'] = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(info))
return 1
"""

# KEYS: outbox stream, retries hash. ARGV: group, consumer, entry id, retry record JSON.
# Keep an entry pending, waiting for a retry, unless another consumer holds it now.
DEFER = """
local raw = redis.call('HGET', KEYS[2], ARGV[3])
if raw then
  local info = cjson.decode(raw)
  if info['state'] == 'held' and info['owner'] ~= ARGV[2] then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# What a pass needs to know before handing items out, in one call.
# KEYS: stream, then ARGV[1] paused keys, ARGV[2] delivered markers, ARGV[3] (lane, hold) pairs.
# ARGV: the three counts, how many lane entries to return.
# Returns {{pause ms...}, {marker exists...}, {{hold ms, {entry ids in order}}...}}; a lane's
# leading ids whose entry is gone (erased, replayed) are dropped from it first.
PREPARE = """
local k = 2
local paused, done, lanes = {}, {}, {}
for i = 1, tonumber(ARGV[1]) do paused[i] = redis.call('PTTL', KEYS[k]); k = k + 1 end
for i = 1, tonumber(ARGV[2]) do done[i] = redis.call('EXISTS', KEYS[k]); k = k + 1 end
for i = 1, tonumber(ARGV[3]) do
  local lane, hold = KEYS[k], KEYS[k + 1]
  k = k + 2
  while true do
    local head = redis.call('LINDEX', lane, 0)
    if not head or #redis.call('XRANGE', KEYS[1], head, head) > 0 then break end
    redis.call('LPOP', lane)
  end
  lanes[i] = {redis.call('PTTL', hold), redis.call('LRANGE', lane, 0, tonumber(ARGV[4]) - 1)}
end
return {paused, done, lanes}
"""

# An entry was delivered: mark its item key (SET NX; 0 if it was marked before), acknowledge
# and delete the entry, drop its retry record and its place in its lane, and (with an owner)
# end the owner's hold on the conversation; the one round trip after a send.
# KEYS: outbox stream, retries hash, delivered marker, lane, hold (lane or hold: the stream
#       again when there is none, so every key is in the shard's slot).
# ARGV: group, entry id, marker ttl, owner ('' keeps any hold).
DELIVERED = """
local fresh = redis.call('SET', KEYS[3], ARGV[2], 'NX', 'EX', tonumber(ARGV[3]))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
if KEYS[4] ~= KEYS[1] then redis.call('LREM', KEYS[4], 1, ARGV[2]) end
if ARGV[4] ~= '' and KEYS[5] ~= KEYS[1] and redis.call('GET', KEYS[5]) == ARGV[4] then
  redis.call('DEL', KEYS[5])
end
if fresh then return 1 end
return 0
"""

# KEYS: hold. ARGV: owner. End the hold if it is still this owner's.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def default_consumer() -> str:
    """A consumer name unique per process (host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_id(shard: int, entry_id: str) -> str:
    return f"{shard}/{entry_id}"


def _parse_dead_id(dead_id: str) -> tuple[int, str] | None:
    """(shard, entry id) of a dead letter's id; None for an id that names none."""
    shard, _, entry_id = dead_id.partition("/")
    if not shard.isdigit() or int(shard) not in keys.shards() or not entry_id:
        return None
    return int(shard), entry_id


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


def _fields(item: OutboxItem) -> dict[str, str]:
    return {"kind": item.kind, "key": item.key, "body": item.body,
            "conversation": item.conversation, "lane": item.lane or ""}  # fmt: skip


def _item(fields: dict[str, str]) -> OutboxItem:
    lane = fields.get("lane")
    return OutboxItem(
        kind=fields["kind"], key=fields["key"], body=fields["body"],
        conversation=fields.get("conversation", ""), lane=Lane(lane) if lane else None,
    )  # fmt: skip


@dataclass
class _Pass:
    """What one pass knows: kinds paused (kind -> ms left), delivered markers, lanes."""

    paused: dict[str, float]
    done: dict[str, bool]  # by item key
    lanes: dict[str, tuple[int, list[str]]]  # lane key -> (hold ms left, entry ids in order)


class Outbox:
    """One consumer of the outbox (every shard's Stream); any number may run against one
    Redis or one Redis Cluster (with one lease clock: the system's)."""

    def __init__(
        self,
        redis: Redis,
        consumer: str | None = None,
        policy: OutboxPolicy | None = None,
        clock: Clock | None = None,
        *,
        lease_clock: Clock | None = None,
    ) -> None:
        self.redis = redis
        self.consumer = consumer or default_consumer()
        self.policy = policy or OutboxPolicy()
        self.clock = clock or SystemClock()
        self.lease_clock = lease_clock or SystemClock()
        self._read = redis.register_script(READ)
        self._claim_due = redis.register_script(CLAIM_DUE)
        self._renew = redis.register_script(RENEW)
        self._defer_script = redis.register_script(DEFER)
        self._prepare = redis.register_script(PREPARE)
        self._delivered = redis.register_script(DELIVERED)
        self._release = redis.register_script(RELEASE)
        self._group_ready: set[int] = set()
        self._scan_from = dict.fromkeys(keys.shards(), "-")

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def _lease_now_ms(self) -> int:
        return int(self.lease_clock.now().timestamp() * 1000)

    def _lease_ms(self) -> int:
        return int(self.policy.lease * 1000)

    async def ensure_group(self, shard: int | None = None) -> None:
        """Create the consumer group (from the Stream's start) of a shard's Stream (None:
        every shard's) unless it exists."""
        for each in keys.shards() if shard is None else (shard,):
            if each in self._group_ready:
                continue
            try:
                await self.redis.xgroup_create(keys.outbox(each), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._group_ready.add(each)

    async def deliver_once(self, handler: Handler) -> int:
        """Hand every item that is ready now to `handler`: retries that are due, items of dead
        consumers, then new items, of every shard that holds any (delivered entries are
        deleted, so an empty Stream has nothing new or pending). Returns how many were
        delivered."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.xlen(keys.outbox(shard))
            lengths = await pipe.execute()
        busy = [shard for shard, length in zip(keys.shards(), lengths, strict=True) if length]
        gate = asyncio.Semaphore(self.policy.concurrency)
        done = await asyncio.gather(*(self._pass(shard, handler, gate) for shard in busy))
        return sum(done)

    async def _pass(self, shard: int, handler: Handler, gate: asyncio.Semaphore) -> int:
        """One pass over one shard's Stream."""
        await self.ensure_group(shard)
        try:
            ready = await self._due_retries(shard)
        except ResponseError as exc:  # the Stream was deleted (flushed): start it again
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready.discard(shard)
            await self.ensure_group(shard)
            ready = await self._due_retries(shard)
        now = self._lease_now_ms()
        new: Any = await self._read(
            keys=[keys.outbox(shard), keys.outbox_retries(shard)],
            args=[GROUP, self.consumer, self.policy.batch, now],
        )
        until = now + self._lease_ms()
        ready.extend(_Entry(shard, str(eid), _pairs(fields), Retry(), until) for eid, fields in new)
        if not ready:
            return 0
        known = await self._look(shard, ready)

        async def run(group: list[_Entry]) -> int:
            async with gate:
                return await self._deliver_lane(group, known, handler)

        return sum(await asyncio.gather(*map(run, self._lanes(ready, known))))

    async def deliver_now(self, entries: Sequence[tuple[str, OutboxItem]], handler: Handler) -> int:
        """Deliver the prospect's messages a step just wrote while this process holds their
        conversation (`Committed.held`: they lead their lane), in order, before the hold ends,
        each recorded as delivered right after its send. What does not go (the receiver fails,
        Redis fails, time runs out) is left to the consumers, and the hold ends at once.
        Returns how many went."""
        delivered = 0
        try:
            async with asyncio.timeout(self.policy.hold * 0.8):
                for n, (entry_id, item) in enumerate(entries):
                    await handler(item)
                    last = n == len(entries) - 1
                    owner = self.consumer if last else ""
                    entry = _Entry(keys.shard_of(item.conversation), entry_id, _fields(item))
                    await self._record(entry, owner, self.policy.hold)
                    delivered += 1
        except Exception as exc:  # any failure: the consumers retry the rest (and judge it)
            left, reason = len(entries) - delivered, f"{type(exc).__name__}: {exc}"
            log.warning("outbox: %d item(s) left to the worker: %s", left, reason)
            with suppress(*REDIS_ERRORS):  # else the hold runs out by itself
                for conversation in {item.conversation for _, item in entries}:
                    await self._release(keys=[keys.hold(conversation)], args=[self.consumer])
        return delivered

    async def run(self, handler: Handler, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stop` is set, resting `idle` seconds whenever nothing was delivered.
        A Redis outage is logged and waited out."""
        while not stop.is_set():
            try:
                delivered = await self.deliver_once(handler)
            except REDIS_ERRORS as exc:
                log.warning("outbox: Redis unavailable, retrying: %s", exc)
                delivered = 0
            if not delivered:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)

    # --- dead letters ---

    async def _sizes(self, stream: Callable[[int], str]) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.xlen(stream(shard))
            return sum(map(int, await pipe.execute()))

    async def dead_count(self) -> int:
        """How many items were given up on."""
        return await self._sizes(keys.outbox_dead)

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest dead-lettered items (up to `count` of each shard), for inspection."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.xrange(keys.outbox_dead(shard), count=count)
            found: list[Any] = await pipe.execute()
        return [
            DeadLetter(_dead_id(shard, eid), _item(f), f["error"], int(f["attempts"]))
            for shard, rows in zip(keys.shards(), found, strict=True)
            for eid, f in rows
        ]

    async def replay(self, ids: Iterable[str]) -> int:
        """Put dead letters back in the outbox as new items (at the end of their lane); returns
        how many went back."""
        replayed = 0
        for dead_id in ids:
            if (named := _parse_dead_id(dead_id)) is None:
                continue
            shard, entry = named
            rows: Any = await self.redis.xrange(keys.outbox_dead(shard), entry, entry)
            if not rows:
                continue
            item = _item(rows[0][1])
            fields = _fields(item)
            entry_id = await self.redis.xadd(keys.outbox(shard), fields)  # type: ignore[arg-type]
            async with self.redis.pipeline(transaction=True) as pipe:  # one slot: the shard's
                if item.lane is not None and item.conversation:
                    pipe.rpush(keys.lane(item.conversation, item.lane), entry_id)
                pipe.xdel(keys.outbox_dead(shard), entry)
                await pipe.execute()
            replayed += 1
        return replayed

    async def drop(self, ids: Iterable[str]) -> int:
        """Delete dead letters for good; returns how many went."""
        dropped = 0
        for named in filter(None, map(_parse_dead_id, ids)):
            shard, entry = named
            dropped += int(await self.redis.xdel(keys.outbox_dead(shard), entry))
        return dropped

    async def backlog(self) -> int:
        """Items not delivered yet (new or pending a retry)."""
        return await self._sizes(keys.outbox)

    # --- one pass ---

    async def _due_retries(self, shard: int) -> list[_Entry]:
        """Claim pending items of a shard whose backoff is over or whose consumer is gone,
        scanning the pending list a page per pass (wrapping around) so none starves behind
        others."""
        result: Any = await self._claim_due(
            keys=[keys.outbox(shard), keys.outbox_retries(shard)],
            args=[GROUP, self.consumer, self._lease_ms(), self._scan_from[shard],
                  self.policy.batch, self._now_ms(), self._lease_now_ms()],
        )  # fmt: skip
        last, claimed = result
        self._scan_from[shard] = f"({last}" if last else "-"
        entries = []
        for eid, fields, raw in claimed:
            info = json.loads(raw)
            retry = Retry(int(info["failures"]), int(info["lost"]), int(info["first"]),
                          str(info["error"]))  # fmt: skip
            until = int(info["since"]) + self._lease_ms()
            entries.append(_Entry(shard, str(eid), _pairs(fields), retry, until))
        return entries

    async def _look(self, shard: int, ready: list[_Entry]) -> _Pass:
        """One round trip: paused kinds, delivered markers, and the lanes of `ready` (entries
        of `shard`)."""
        kinds = sorted({entry.fields.get("kind", "") for entry in ready})
        markers = sorted({entry.fields.get("key", "") for entry in ready})
        lanes = sorted({key for entry in ready if (key := entry.lane_key)})
        holds = {e.lane_key: keys.hold(e.fields["conversation"]) for e in ready if e.lane_key}
        script_keys = [
            keys.outbox(shard),
            *(keys.paused(shard, kind) for kind in kinds),
            *(keys.delivered(shard, marker) for marker in markers),
        ]
        for lane in lanes:
            script_keys += [lane, holds[lane]]
        paused, done, found = await self._prepare(
            keys=script_keys,
            args=[len(kinds), len(markers), len(lanes), self.policy.batch],
        )  # fmt: skip
        return _Pass(
            paused={k: float(ms) for k, ms in zip(kinds, paused, strict=True) if ms > 0},
            done={k: bool(d) for k, d in zip(markers, done, strict=True)},
            lanes={
                lane: (int(hold), [str(i) for i in ids])
                for lane, (hold, ids) in zip(lanes, found, strict=True)
            },
        )

    def _lanes(self, ready: list[_Entry], known: _Pass) -> list[list[_Entry]]:
        """`ready` in groups to deliver one after another: a lane's entries in lane order (those
        beyond the part of the list read last), every other entry alone (also one whose lane
        is empty: nothing can be ahead of it)."""
        groups: dict[str, list[_Entry]] = {}
        alone: list[list[_Entry]] = []
        for entry in ready:
            lane = entry.lane_key
            if lane is not None and known.lanes[lane][1]:
                groups.setdefault(lane, []).append(entry)
            else:
                alone.append([entry])
        for lane, group in groups.items():
            place = {entry_id: n for n, entry_id in enumerate(known.lanes[lane][1])}
            group.sort(key=lambda entry: place.get(entry.id, len(place)))
        return [*groups.values(), *alone]

    def _first(self, group: list[_Entry], known: _Pass) -> int:
        """How many entries of `group` lead their lane (may go now, in this order)."""
        lane = group[0].lane_key
        if lane is None or not known.lanes[lane][1]:
            return len(group)
        order = known.lanes[lane][1]
        leading = 0
        while leading < len(group) and leading < len(order) and group[leading].id == order[leading]:
            leading += 1
        return leading

    async def _deliver_lane(self, group: list[_Entry], known: _Pass, handler: Handler) -> int:
        """A consumer's share: the entries of one lane in order; when one is not delivered, or
        an earlier one of the lane is still out, or its conversation is held, the rest wait."""
        lane = group[0].lane_key
        held = lane is not None and group[0].fields.get("lane") == Lane.PROSPECT
        hold_ms = known.lanes[lane][0] if held and lane is not None else 0
        if hold_ms > 0:
            for entry in group:
                await self._defer(entry, hold_ms / 1000, "its conversation is being delivered")
            return 0
        leading = self._first(group, known)
        delivered = 0
        for n, entry in enumerate(group):
            if n >= leading:
                await self._defer(entry, self.policy.behind, "an earlier item is undelivered")
                continue
            try:
                outcome = await self._deliver(entry, known, handler)
            except _TakenOver:  # its lease ran out: the rest of the lane is the new holder's
                log.warning("outbox: lease on %s ran out; another consumer has it", entry.id)
                break
            if outcome is None:
                leading = n + 1  # the rest of the lane waits for this one
            delivered += outcome or 0
        return delivered

    async def _deliver(self, entry: _Entry, known: _Pass, handler: Handler) -> int | None:
        """Deliver one entry: 1 if delivered, 0 if finished otherwise (delivered before,
        dead-lettered), None if it waits (its lane waits with it)."""
        fields, retry = entry.fields, entry.retry
        if not {"kind", "key", "body"} <= fields.keys():
            await self._dead(entry, retry.failures, f"malformed outbox entry: {fields}")
            return 0
        item = _item(fields)
        if self._given_up(retry):
            await self._dead(entry, retry.failures, retry.error)
            return 0
        if (paused := known.paused.get(item.kind, 0)) > 0:
            await self._defer(entry, paused / 1000, "receiver asked to wait")
            return None
        if known.done.get(item.key):
            log.info("outbox: %s %s was delivered before; acknowledging", item.kind, item.key)
            await self._ack(entry)
            return 0
        await self._renew_lease(entry)
        try:
            async with asyncio.timeout(self.policy.lease / 2):
                await handler(item)
        except RetryLater as exc:
            await self._pause(item.kind, exc.seconds)
            known.paused[item.kind] = exc.seconds * 1000
            await self._defer(entry, exc.seconds, str(exc))
            return None
        except Undeliverable as exc:
            await self._dead(entry, retry.failures + 1, str(exc))
            return 0
        except Exception as exc:  # the receiver failed in any way: retry with backoff
            now = self._now_ms()
            failed = Retry(retry.failures + 1, retry.lost, retry.first_ms or now,
                           f"{type(exc).__name__}: {exc}")  # fmt: skip
            if self._given_up(failed):
                await self._dead(entry, failed.failures, failed.error)
                return 0
            wait = self.policy.wait_after(failed.failures)
            log.warning(
                "outbox: %s %s failed (attempt %d), retrying in %.1fs: %s",
                item.kind, item.key, failed.failures, wait, failed.error,
            )  # fmt: skip
            await self._defer(_Entry(entry.shard, entry.id, fields, failed), wait, failed.error)
            return None
        if not await self._record(entry, "", self.policy.lease / 2):
            log.warning("outbox: %s %s was delivered twice (a consumer stalled)", item.kind,
                        item.key)  # fmt: skip
        return 1

    async def _pause(self, kind: str, seconds: float) -> None:
        """Every consumer leaves `kind` items alone for `seconds` (the pause is set in each
        shard, where each shard's pass reads it)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in keys.shards():
                pipe.set(keys.paused(shard, kind), "1", px=max(1, int(seconds * 1000)))
            await pipe.execute()

    async def _renew_lease(self, entry: _Entry) -> None:
        """Make sure this consumer holds `entry` for the whole send (cut off at half the lease):
        with less than half the lease left, renew it in Redis, fenced by owner. Raises
        _TakenOver when another consumer holds it now."""
        now = self._lease_now_ms()
        if now + self._lease_ms() // 2 < entry.lease_until:
            return  # no other consumer may take it before the send is over or cut off
        renewed = await self._renew(
            keys=[keys.outbox_retries(entry.shard)], args=[entry.id, self.consumer, now]
        )
        if not renewed:
            raise _TakenOver(entry.id)

    def _given_up(self, retry: Retry) -> bool:
        if not retry.failures:
            return False
        policy = self.policy
        elapsed = (self._now_ms() - retry.first_ms) / 1000
        return (
            elapsed >= policy.give_up_after
            or retry.lost >= policy.max_lost
            or (policy.max_attempts is not None and retry.failures >= policy.max_attempts)
        )

    async def _record(self, entry: _Entry, owner: str, within: float) -> bool:
        """`_mark` an entry just sent, retrying while Redis is unreachable for up to `within`
        seconds: a short outage must not make another consumer send it again."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self._mark(entry, owner)
            except REDIS_ERRORS:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(RECORD_RETRY)

    async def _mark(self, entry: _Entry, owner: str = "") -> bool:
        """Record `entry` as delivered (and end `owner`'s hold); False if it was before."""
        conversation = entry.fields.get("conversation", "")
        stream = keys.outbox(entry.shard)
        fresh = await self._delivered(
            keys=[stream, keys.outbox_retries(entry.shard),
                  keys.delivered(entry.shard, entry.fields["key"]),
                  entry.lane_key or stream, keys.hold(conversation) if conversation else stream],
            args=[GROUP, entry.id, self.policy.delivered_ttl, owner],
        )  # fmt: skip
        return bool(fresh)

    async def _defer(self, entry: _Entry, seconds: float, error: str) -> None:
        """Keep the item pending and due again `seconds` from now by the outbox's clock (unless
        another consumer took it over meanwhile: then it is theirs)."""
        retry = entry.retry
        info = {"failures": retry.failures, "lost": retry.lost, "first": retry.first_ms,
                "error": retry.error or error, "state": "waiting",
                "due": self._now_ms() + int(seconds * 1000)}  # fmt: skip
        await self._defer_script(
            keys=[keys.outbox(entry.shard), keys.outbox_retries(entry.shard)],
            args=[GROUP, self.consumer, entry.id, json.dumps(info)],
        )

    async def _dead(self, entry: _Entry, attempts: int, error: str) -> None:
        fields = entry.fields
        log.error(
            "outbox: giving up on %s %s after %d attempt(s): %s",
            fields.get("kind"), fields.get("key"), attempts, error,
        )  # fmt: skip
        record = {name: fields.get(name, "") for name in FIELDS}
        record |= {"error": error, "attempts": str(attempts), "entry": entry.id}
        oldest = max(0, int((time.time() - keys.DEAD_RETENTION) * 1000))
        async with self.redis.pipeline(transaction=True) as pipe:
            dead = keys.outbox_dead(entry.shard)
            pipe.xadd(dead, record, minid=oldest, approximate=True)  # type: ignore[arg-type]
            self._forget(pipe, entry.shard, entry.id, entry.lane_key)
            await pipe.execute()

    async def about(self, conversation_id: str) -> list[tuple[str, OutboxItem]]:
        """The undelivered items about a prospect, oldest first, by entry id: a scan of its
        shard's Stream, which holds only undelivered items."""
        found = await self._about(conversation_id, keys.outbox)
        return [(entry_id, _item(f)) for entry_id, f in found if {"kind", "body"} <= f.keys()]

    async def dead_about(self, conversation_id: str) -> list[DeadLetter]:
        """The dead letters about a prospect (a scan of the dead letters, trimmed to
        keys.DEAD_RETENTION)."""
        shard = keys.shard_of(conversation_id)
        found = await self._about(conversation_id, keys.outbox_dead)
        return [
            DeadLetter(id=_dead_id(shard, eid), item=_item(f), error=f.get("error", ""),
                       attempts=int(f.get("attempts", 0)))
            for eid, f in found if {"kind", "body"} <= f.keys()
        ]  # fmt: skip

    async def forget(self, conversation_id: str) -> int:
        """Drop every undelivered item about a prospect (a scan of its shard's Stream) and its
        lanes: after /forget nothing more about them may reach Slack or them. Returns how many
        went."""
        shard = keys.shard_of(conversation_id)
        doomed = [entry_id for entry_id, _ in await self._about(conversation_id, keys.outbox)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for entry_id in doomed:
                self._forget(pipe, shard, entry_id, None)
            pipe.delete(*(keys.lane(conversation_id, lane) for lane in Lane))
            pipe.delete(keys.hold(conversation_id))
            await pipe.execute()
        return len(doomed)

    async def _about(
        self, conversation_id: str, stream_of: Callable[[int], str]
    ) -> list[tuple[str, dict[str, str]]]:
        """The entries (id, fields) of a prospect's shard's outbox or dead letters (`stream_of`)
        about them: theirs, or keyed "<conversation id>:...", oldest first."""
        stream = stream_of(keys.shard_of(conversation_id))
        prefix = f"{conversation_id}:"
        found: list[tuple[str, dict[str, str]]] = []
        last = "-"
        while True:
            batch: Any = await self.redis.xrange(stream, min=last, max="+", count=1000)
            if not batch:
                break
            found += [
                (str(entry_id), fields)
                for entry_id, fields in batch
                if fields.get("conversation") == conversation_id
                or str(fields.get("key", "")).startswith(prefix)
            ]
            last = f"({batch[-1][0]!s}"
        return found

    async def _ack(self, entry: _Entry) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._forget(pipe, entry.shard, entry.id, entry.lane_key)
            await pipe.execute()

    def _forget(self, pipe: Any, shard: int, entry_id: str, lane: str | None) -> None:
        """Queue what finishing an entry of `shard` means: acknowledged, deleted, no retry
        record, out of its lane."""
        pipe.xack(keys.outbox(shard), GROUP, entry_id)
        pipe.xdel(keys.outbox(shard), entry_id)
        pipe.hdel(keys.outbox_retries(shard), entry_id)
        if lane is not None:
            pipe.lrem(lane, 1, entry_id)


async def deliver_outbox_once(
    redis: Redis,
    handler: Handler,
    consumer: str | None = None,
    policy: OutboxPolicy | None = None,
) -> int:
    """Deliver what is ready now with a one-off consumer; a loop should keep one `Outbox`."""
    return await Outbox(redis, consumer, policy).deliver_once(handler)
