"""Delivery from the outbox Stream (lb:outbox) through one consumer group.

Every item (a Slack alert, a relayed message) is handed to a handler until it succeeds:
- new items are read with XREADGROUP, so each goes to exactly one consumer;
- a failed item stays pending and is retried after an exponential backoff; after
  `max_attempts` failures it moves to the dead-letter Stream (logged, countable, nothing lost);
- a handler raising `RetryLater` (Slack's 429 Retry-After) pauses every item of that kind for
  the time asked, without counting a failure;
- an item held by a consumer that went silent for longer than the lease (killed, crashed) is
  claimed by another one; that counts as a failed attempt so a poison item cannot loop forever.
Claiming a pending item is one Lua script per pass (XPENDING + XCLAIM + retry record), so two
consumers never both take the same item. Each delivered item leaves a marker
(`delivered_key`, SET NX) in the same script as its XACK + XDEL: a redelivery finds the
marker and is only acknowledged. Delivered entries are deleted, so the Stream holds the backlog.

What the outbox alone leaves at-least-once: a consumer that dies (or stalls past the lease)
after the receiver accepted an item but before the marker is written gets that item delivered
again by another consumer. A handler closes that gap by making delivery idempotent on the
item's key (the Slack one does: see bot.channels.slack).

Used by the worker: `Outbox(redis, consumer).run(handler, stop)` or `deliver_outbox_once(...)`;
the Slack handler is `bot.channels.slack.outbox_handler(services)`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.errors import LadderError
from storage import keys
from storage.base import OutboxItem

log = logging.getLogger("ladderbot.outbox")

GROUP = "delivery"  # the one consumer group; a handler dispatches on the item's kind
DEAD_LETTER = f"{keys.OUTBOX}:dead"  # Stream: items given up on, with the last error
RETRIES = f"{keys.OUTBOX}:retries"  # hash: entry id -> JSON {failures, state, wait_ms, error}

Handler = Callable[[OutboxItem], Awaitable[None]]


def delivered_key(item_key: str) -> str:
    """Set once an item was delivered, so a redelivered copy is only acknowledged."""
    return f"{keys.OUTBOX}:done:{item_key}"


def paused_key(kind: str) -> str:
    """Exists while the receiver of `kind` items asked us to wait (its TTL is the wait)."""
    return f"{keys.OUTBOX}:pause:{kind}"


class RetryLater(LadderError):
    """The receiver is rate-limiting: retry this kind of item after `seconds`; not a failure."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class Undeliverable(LadderError):
    """The item can never be delivered as it is (bad body, unknown channel): dead-letter it now."""


@dataclass(frozen=True)
class OutboxPolicy:
    """How hard to try. Handlers are cut off at half the lease, so a live consumer never
    holds an item long enough for another to take it over."""

    max_attempts: int = 8
    backoff: float = 2.0  # seconds before the first retry; doubles with each failure
    max_backoff: float = 600.0
    lease: float = 60.0  # a consumer silent this long with an item is presumed dead
    batch: int = 50  # new items read per pass, and pending items scanned per pass
    delivered_ttl: int = 7 * 24 * 3600  # how long a delivered marker is kept (seconds)

    def wait_after(self, failures: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class _Entry:
    """An outbox entry this consumer holds: its fields, earlier failures and the last error."""

    id: str
    fields: dict[str, str]
    failures: int = 0
    error: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """An item given up on, as stored in the dead-letter Stream."""

    id: str
    item: OutboxItem
    error: str
    attempts: int


# KEYS: outbox stream, retries hash
# ARGV: group, consumer, lease ms, scan start (exclusive id or '-'), count
# Returns {last scanned id ('' once the end is reached), {{id, {fields...}, failures, error}...}};
# ids whose entry was deleted meanwhile are acknowledged and skipped.
CLAIM_DUE = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], '+', tonumber(ARGV[5]))
local out = {}
local last = ''
for _, p in ipairs(pending) do
  local id, idle = p[1], tonumber(p[3])
  last = id
  local failures, threshold, lost = 0, tonumber(ARGV[3]), 1
  local raw = redis.call('HGET', KEYS[2], id)
  local info = {}
  if raw then
    info = cjson.decode(raw)
    failures = tonumber(info['failures'])
    if info['state'] == 'waiting' then threshold, lost = tonumber(info['wait_ms']), 0 end
  end
  if idle >= threshold then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
    local entry = claimed[1]
    if entry and entry[2] then
      failures = failures + lost
      local err = info['error'] or ''
      if lost == 1 then err = 'consumer lost: no answer within the lease' end
      redis.call('HSET', KEYS[2], id, cjson.encode({failures = failures, state = 'held',
                                                    wait_ms = 0, error = err}))
      table.insert(out, {id, entry[2], failures, err})
    else
      redis.call('XACK', KEYS[1], ARGV[1], id)
      redis.call('HDEL', KEYS[2], id)
    end
  end
end
if #pending < tonumber(ARGV[5]) then last = '' end
return {last, out}
"""


# An entry was delivered: mark its item key (SET NX; 0 if it was marked before), acknowledge
# and delete the entry, drop its retry record; one command on the hot path.
# KEYS: outbox stream, retries hash, delivered marker. ARGV: group, entry id, marker ttl.
DELIVERED = """
local fresh = redis.call('SET', KEYS[3], ARGV[2], 'NX', 'EX', tonumber(ARGV[3]))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
if fresh then return 1 end
return 0
"""


def default_consumer() -> str:
    """A consumer name unique per process (host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


class Outbox:
    """One consumer of the outbox; any number may run against one Redis."""

    def __init__(
        self,
        redis: Redis,
        consumer: str | None = None,
        policy: OutboxPolicy | None = None,
        stream: str = keys.OUTBOX,
    ) -> None:
        self.redis = redis
        self.consumer = consumer or default_consumer()
        self.policy = policy or OutboxPolicy()
        self.stream = stream
        self._claim_due = redis.register_script(CLAIM_DUE)
        self._delivered = redis.register_script(DELIVERED)
        self._group_ready = False
        self._scan_from = "-"

    async def ensure_group(self) -> None:
        """Create the consumer group (from the Stream's start) unless it exists."""
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def deliver_once(self, handler: Handler) -> int:
        """Hand every item that is ready now to `handler`: retries that are due, items of dead
        consumers, then new items. Returns how many were delivered."""
        await self.ensure_group()
        try:
            ready = await self._due_retries()
        except ResponseError as exc:  # the Stream was deleted (flushed): start it again
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False
            await self.ensure_group()
            ready = await self._due_retries()
        new: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=self.policy.batch
        )
        for _, entries in new:
            ready.extend(_Entry(eid, fields) for eid, fields in entries)
        if not ready:
            return 0
        # one round trip for the whole pass: which kinds are paused, which items were delivered
        kinds = sorted({entry.fields.get("kind", "") for entry in ready})
        async with self.redis.pipeline(transaction=False) as pipe:
            for kind in kinds:
                pipe.pttl(paused_key(kind))
            for entry in ready:
                pipe.exists(delivered_key(entry.fields.get("key", "")))
            answers = await pipe.execute()
        now = time.monotonic()
        paused = {k: now + ms / 1000 for k, ms in zip(kinds, answers, strict=False) if ms > 0}
        delivered = 0
        for entry, done in zip(ready, answers[len(kinds) :], strict=True):
            delivered += await self._deliver(entry, bool(done), paused, handler)
        return delivered

    async def run(self, handler: Handler, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stop` is set, resting `idle` seconds whenever nothing was delivered.
        A Redis outage is logged and waited out."""
        while not stop.is_set():
            try:
                delivered = await self.deliver_once(handler)
            except RedisError as exc:
                log.warning("outbox: Redis unavailable, retrying: %s", exc)
                delivered = 0
            if not delivered:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)

    async def dead_count(self) -> int:
        """How many items were given up on."""
        return int(await self.redis.xlen(DEAD_LETTER))

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest dead-lettered items, for inspection."""
        rows: Any = await self.redis.xrange(DEAD_LETTER, count=count)  # decoded: str fields
        return [
            DeadLetter(
                id=eid,
                item=OutboxItem(kind=f["kind"], key=f["key"], body=f["body"]),
                error=f["error"],
                attempts=int(f["attempts"]),
            )
            for eid, f in rows
        ]

    async def backlog(self) -> int:
        """Items not delivered yet (new or pending a retry)."""
        return int(await self.redis.xlen(self.stream))

    async def _due_retries(self) -> list[_Entry]:
        """Claim pending items whose backoff is over or whose consumer is gone, scanning the
        pending list a page per pass (wrapping around) so none starves behind others."""
        result: Any = await self._claim_due(
            keys=[self.stream, RETRIES],
            args=[GROUP, self.consumer, int(self.policy.lease * 1000), self._scan_from,
                  self.policy.batch],
        )  # fmt: skip
        last, claimed = result
        self._scan_from = f"({last}" if last else "-"
        return [_Entry(eid, _pairs(fields), int(n), str(err)) for eid, fields, n, err in claimed]

    async def _deliver(
        self, entry: _Entry, done_before: bool, paused: dict[str, float], handler: Handler
    ) -> int:
        """Deliver one entry; `paused` (kind -> monotonic time the pause ends) is shared by
        the pass, so one rate limit holds back the rest of that kind at once."""
        entry_id, fields, failures = entry.id, entry.fields, entry.failures
        if not {"kind", "key", "body"} <= fields.keys():
            await self._dead(entry_id, fields, failures, f"malformed outbox entry: {fields}")
            return 0
        item = OutboxItem(kind=fields["kind"], key=fields["key"], body=fields["body"])
        if failures >= self.policy.max_attempts:
            await self._dead(entry_id, fields, failures, entry.error)
            return 0
        wait = paused.get(item.kind, 0) - time.monotonic()
        if wait > 0:
            await self._defer(entry_id, failures, wait, "receiver asked to wait")
            return 0
        if done_before:
            log.info("outbox: %s %s was delivered before; acknowledging", item.kind, item.key)
            await self._ack(entry_id)
            return 0
        try:
            async with asyncio.timeout(self.policy.lease / 2):
                await handler(item)
        except RetryLater as exc:
            await self.redis.set(paused_key(item.kind), "1", px=max(1, int(exc.seconds * 1000)))
            paused[item.kind] = time.monotonic() + exc.seconds
            await self._defer(entry_id, failures, exc.seconds, str(exc))
            return 0
        except Undeliverable as exc:
            await self._dead(entry_id, fields, failures + 1, str(exc))
            return 0
        except Exception as exc:  # the receiver failed in any way: retry with backoff
            failures += 1
            reason = f"{type(exc).__name__}: {exc}"
            if failures >= self.policy.max_attempts:
                await self._dead(entry_id, fields, failures, reason)
            else:
                wait = self.policy.wait_after(failures)
                log.warning(
                    "outbox: %s %s failed (attempt %d of %d), retrying in %.1fs: %s",
                    item.kind, item.key, failures, self.policy.max_attempts, wait, reason,
                )  # fmt: skip
                await self._defer(entry_id, failures, wait, reason)
            return 0
        first = await self._delivered(
            keys=[self.stream, RETRIES, delivered_key(item.key)],
            args=[GROUP, entry_id, self.policy.delivered_ttl],
        )
        if not first:
            log.warning("outbox: %s %s was delivered twice (a consumer stalled)", item.kind,
                        item.key)  # fmt: skip
        return 1

    async def _defer(self, entry_id: str, failures: int, seconds: float, error: str) -> None:
        """Keep the item pending and due again `seconds` from now (its idle time restarts)."""
        info = {"failures": failures, "state": "waiting", "wait_ms": int(seconds * 1000),
                "error": error}  # fmt: skip
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(RETRIES, entry_id, json.dumps(info))
            pipe.xclaim(self.stream, GROUP, self.consumer, 0, [entry_id], justid=True)
            await pipe.execute()

    async def _dead(self, entry_id: str, fields: dict[str, str], attempts: int, error: str) -> None:
        log.error(
            "outbox: giving up on %s %s after %d attempt(s): %s",
            fields.get("kind"), fields.get("key"), attempts, error,
        )  # fmt: skip
        record = {
            "kind": fields.get("kind", ""),
            "key": fields.get("key", ""),
            "body": fields.get("body", ""),
            "error": error,
            "attempts": str(attempts),
            "entry": entry_id,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(DEAD_LETTER, record)  # type: ignore[arg-type]
            self._forget(pipe, entry_id)
            await pipe.execute()

    async def forget(self, conversation_id: str) -> int:
        """Drop every undelivered item about a prospect (a scan of the Stream): after /forget
        nothing more about them may reach Slack or them. Returns how many went."""
        prefix = f"{conversation_id}:"
        doomed: list[str] = []
        last = "-"
        while batch := await self.redis.xrange(self.stream, min=last, max="+", count=1000):
            doomed += [str(i) for i, f in batch if str((f or {}).get("key", "")).startswith(prefix)]
            last = f"({batch[-1][0]!s}"
        if doomed:
            async with self.redis.pipeline(transaction=True) as pipe:
                for entry_id in doomed:
                    self._forget(pipe, entry_id)
                await pipe.execute()
        return len(doomed)

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._forget(pipe, entry_id)
            await pipe.execute()

    def _forget(self, pipe: Any, entry_id: str) -> None:
        """Queue what finishing an entry means: acknowledged, deleted, no retry record."""
        pipe.xack(self.stream, GROUP, entry_id)
        pipe.xdel(self.stream, entry_id)
        pipe.hdel(RETRIES, entry_id)


async def deliver_outbox_once(
    redis: Redis,
    handler: Handler,
    consumer: str | None = None,
    policy: OutboxPolicy | None = None,
) -> int:
    """Deliver what is ready now with a one-off consumer; a loop should keep one `Outbox`."""
    return await Outbox(redis, consumer, policy).deliver_once(handler)
