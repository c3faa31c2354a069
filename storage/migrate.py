"""Moving a deployment from before the keyspace was sharded to today's keys (`ladder
migrate-keys`): in place on its one Redis, or from it into another Redis or a Redis Cluster.

Run it once, with every web and worker process stopped (Telegram and Slack keep retrying what
they could not deliver meanwhile). What is copied, each to its shard: conversations with their
timers, tracked links and Telegram keyboards; the event log (entry ids kept, so its order is);
undelivered outbox items (in their lanes' order) and dead letters; published flows; what the
sales team's Slack holds. Not copied: dedupe and delivered markers, retry records, flood limits
and holds, all short-lived (an outbox item is retried afresh). In place, the old keys are
deleted once copied.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from redis.asyncio import Redis

from domain.errors import StorageError
from domain.model import Timer
from storage import keys
from storage.base import Lane
from storage.events import RedisEventLog

log = logging.getLogger(__name__)

OLD = keys.Unsharded
PAGE = 1000
_CONVERSATION = f"{keys.PREFIX}:{{conv:"


async def migrate(source: Redis, target: Redis, *, in_place: bool) -> Counter[str]:
    """Copy the old layout of `source` into today's keys in `target` (the same client when
    `in_place`, which then deletes the old keys); returns how many of each record moved."""
    if await RedisEventLog(target).count() or await _any(target, keys.CONVERSATION_PATTERN):
        raise StorageError("the target already holds sharded keys: migrated before?")
    moved: Counter[str] = Counter()
    old: list[str] = []
    async for key in source.scan_iter(match=OLD.CONVERSATIONS, count=PAGE):
        old.append(key)
        conversation, _, suffix = str(key).removeprefix(_CONVERSATION).partition("}")
        if suffix == "":
            await _copy(source, target, key, keys.conversation(conversation))
            moved["conversations"] += 1
        elif suffix == ":links":
            await _copy(source, target, key, keys.links(conversation))
        elif suffix == ":telegram:keyboard":
            await _copy(source, target, key, keys.keyboard(conversation))
        # :timers, :lane:*, :hold are rebuilt below from the timers and the outbox
    moved["timers"] = await _timers(source, target)
    moved["events"] = await _events(source, target)
    moved["outbox items"] = await _outbox(source, target)
    moved["dead letters"] = await _dead_letters(source, target)
    for name in sorted(map(str, await source.smembers(OLD.FLOWS))):
        await _copy(source, target, OLD.flow(name), keys.flow(name))
        await target.sadd(keys.FLOWS, name)
        old.append(OLD.flow(name))
        moved["flows"] += 1
    async for key in source.scan_iter(match=OLD.LINKS, count=PAGE):
        await _copy(source, target, key, keys.link(str(key).rsplit(":", 1)[1]))
        old.append(key)
        moved["links"] += 1
    async for key in source.scan_iter(match=OLD.SLACK, count=PAGE):
        await _copy(source, target, key, keys.SLACK + str(key).removeprefix(f"{keys.PREFIX}:slack"))
        old.append(key)
        moved["slack records"] += 1
    if in_place:
        old += [OLD.EVENTS, OLD.TIMERS_DUE, OLD.TIMERS_BODY, OLD.TIMERS_PROCESSING, OLD.OUTBOX,
                OLD.OUTBOX_DEAD, OLD.FLOWS]  # fmt: skip
        for start in range(0, len(old), PAGE):
            await source.delete(*old[start : start + PAGE])
    return moved


async def _any(redis: Redis, pattern: str) -> bool:
    async for _ in redis.scan_iter(match=pattern, count=PAGE):
        return True
    return False


async def _copy(source: Redis, target: Redis, old: str, new: str) -> None:
    """One hash, set or string, with its time to live."""
    kind = await source.type(old)
    ttl = int(await source.pttl(old))
    value: Any
    if kind == "hash":
        value = await source.hgetall(old)
        await target.hset(new, mapping=value)
    elif kind == "set":
        await target.sadd(new, *await source.smembers(old))
    elif kind == "string":
        value = await source.get(old)
        await target.set(new, value)
    else:
        return
    if ttl > 0:
        await target.pexpire(new, ttl)


async def _timers(source: Redis, target: Redis) -> int:
    """Every timer, queued (a claimed one too: due again at its due time) in its shard."""
    count = 0
    async for timer_id, body in source.hscan_iter(OLD.TIMERS_BODY, count=PAGE):
        timer = Timer.from_json(body)
        score = await source.zscore(OLD.TIMERS_DUE, timer_id)
        if score is None:
            score = await source.zscore(OLD.TIMERS_PROCESSING, timer_id)
        shard = keys.shard_of(timer.conversation)
        async with target.pipeline(transaction=True) as pipe:  # the shard's slot
            pipe.zadd(keys.timers_due(shard), {timer_id: float(score or 0)})
            pipe.hset(keys.timers_body(shard), timer_id, body)
            pipe.sadd(keys.conversation_timers(timer.conversation), timer_id)
            await pipe.execute()
        count += 1
    return count


async def _pages(redis: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    rows: list[tuple[str, dict[str, str]]] = []
    low = "-"
    while True:
        batch: Any = await redis.xrange(stream, min=low, max="+", count=PAGE)
        rows += batch
        if len(batch) < PAGE:
            return rows
        low = "(" + batch[-1][0]


async def _events(source: Redis, target: Redis) -> int:
    rows = await _pages(source, OLD.EVENTS)
    for entry_id, fields in rows:
        stream = keys.events(keys.shard_of(fields.get("conversation", "")))
        await target.xadd(stream, fields, id=entry_id)  # type: ignore[arg-type]
    return len(rows)


async def _outbox(source: Redis, target: Redis) -> int:
    """Undelivered items, each at the end of its lane (the old Stream's order)."""
    rows = await _pages(source, OLD.OUTBOX)
    for _, fields in rows:
        conversation, lane = fields.get("conversation", ""), fields.get("lane", "")
        shard = keys.shard_of(conversation) if conversation else 0
        entry_id = await target.xadd(keys.outbox(shard), fields)  # type: ignore[arg-type]
        if conversation and lane in tuple(Lane):
            await target.rpush(keys.lane(conversation, lane), entry_id)
    return len(rows)


async def _dead_letters(source: Redis, target: Redis) -> int:
    rows = await _pages(source, OLD.OUTBOX_DEAD)
    for _, fields in rows:
        conversation = fields.get("conversation", "")
        shard = keys.shard_of(conversation) if conversation else 0
        await target.xadd(keys.outbox_dead(shard), fields)  # type: ignore[arg-type]
    return len(rows)
