"""`ladder migrate-keys`: a deployment from before the keyspace was sharded, written here key
by key the way it stored things, moves to today's keys, in place or into another Redis (a
Redis Cluster too), and carries on: its conversation, timer, events, outbox, flows, links and
Slack records are all found where today's code looks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from bot.cli import main
from domain.errors import StorageError
from domain.model import Conversation, DomainEvent, Timer, iso
from storage import keys
from storage.base import OutboxItem, TrackedLink
from storage.connect import connect
from storage.events import RedisEventLog
from storage.links import LinkStore
from storage.migrate import migrate
from storage.outbox import Outbox
from storage.redis import RedisConversationStore, RedisFlowCatalog
from storage.scheduler import RedisScheduler
from tests.redis_server import RedisServer

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONV = "telegram:5"
TOKEN = "A" * 22
LINK = TrackedLink(CONV, "welcome", "https://example.com/c.pdf")
FLOW = "flow: funnel\nsteps:\n  - id: welcome\n    say: Hi\n"
NUDGE = Timer(f"{CONV}:nudge", CONV, "nudge", iso(T0), "welcome", 1)
EVENTS = [
    DomainEvent("started", CONV, "funnel", 1, "welcome", iso(T0)),
    DomainEvent("step_reached", "telegram:6", "funnel", 1, "welcome", iso(T0)),
    DomainEvent("step_reached", CONV, "funnel", 1, "welcome", iso(T0)),
]


async def write_old_layout(redis: Redis) -> None:
    """What a deployment from before sharding held, in its keys."""
    conv = Conversation(id=CONV, flow="funnel", version=1, step="welcome")
    await redis.hset(f"lb:{{conv:{CONV}}}", mapping={"v": 3, "doc": conv.to_json()})
    await redis.zadd("lb:timers:due", {NUDGE.id: T0.timestamp()})
    await redis.hset("lb:timers:body", NUDGE.id, NUDGE.to_json())
    await redis.sadd(f"lb:{{conv:{CONV}}}:timers", NUDGE.id)
    for event in EVENTS:
        await redis.xadd("lb:events", event.fields())  # type: ignore[arg-type]
    item = {"kind": "message:telegram", "key": f"{CONV}:3:0", "body": "{}",
            "conversation": CONV, "lane": "prospect"}  # fmt: skip
    entry = await redis.xadd("lb:outbox", item)  # type: ignore[arg-type]
    await redis.rpush(f"lb:{{conv:{CONV}}}:lane:prospect", entry)
    dead = {"kind": "alert", "key": f"{CONV}:2:a", "body": "{}", "conversation": CONV,
            "lane": "slack", "error": "Slack is down", "attempts": "9", "entry": "1-1"}  # fmt: skip
    await redis.xadd("lb:outbox:dead", dead)  # type: ignore[arg-type]
    await redis.hset("lb:flow:funnel", mapping={"latest": 1, "v:1": FLOW, "at:1": iso(T0)})
    await redis.sadd("lb:flows", "funnel")
    link = json.dumps({"conversation": CONV, "step": LINK.step, "url": LINK.url})
    await redis.set(f"lb:link:{TOKEN}", link, ex=3600)
    await redis.hset(f"lb:{{conv:{CONV}}}:links", f"{LINK.step}|{LINK.url}", TOKEN)
    await redis.hset(f"lb:slack:lead:{CONV}", mapping={"channel": "C1", "ts": "1.2"})
    await redis.set("lb:slack:thread:C1:1.2", CONV)


async def carries_on(redis: Redis) -> None:
    """Today's code finds every record of the old deployment."""
    conv = await RedisConversationStore(redis).load(CONV)
    assert conv is not None and conv.revision == 3 and conv.step == "welcome"
    [claim] = await RedisScheduler(redis).claim(T0 + timedelta(hours=1), 10, timedelta(minutes=1))
    assert claim.timer == NUDGE
    assert await RedisEventLog(redis).read() == EVENTS
    outbox = Outbox(redis, "after")
    [dead] = await outbox.dead_letters()
    assert (dead.item.key, dead.error) == (f"{CONV}:2:a", "Slack is down")
    delivered: list[OutboxItem] = []

    async def handler(item: OutboxItem) -> None:
        delivered.append(item)

    assert await outbox.deliver_once(handler) == 1  # its lane was rebuilt
    assert [i.key for i in delivered] == [f"{CONV}:3:0"]
    catalog = RedisFlowCatalog(redis)
    assert await catalog.names() == ["funnel"] and await catalog.source("funnel", 1) == FLOW
    assert await LinkStore(redis).resolve(TOKEN) == LINK
    assert 0 < await redis.ttl(keys.link(TOKEN)) <= 3600
    assert await redis.hgetall(keys.lead_key(CONV)) == {"channel": "C1", "ts": "1.2"}
    assert await redis.get(keys.thread_key("C1", "1.2")) == CONV


async def test_into_another_redis_or_a_cluster(redis: Redis, own_redis: RedisServer) -> None:
    old = connect(own_redis.url)
    await write_old_layout(old)
    moved = await migrate(old, redis, in_place=False)
    assert moved["conversations"] == 1 and moved["events"] == 3 and moved["timers"] == 1
    assert await old.exists("lb:events")  # the old Redis is left as it was
    await old.aclose()
    await carries_on(redis)


async def test_in_place_with_the_ladder_command(
    own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    redis = connect(own_redis.url)
    await write_old_layout(redis)
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    assert await asyncio.to_thread(main, ["migrate-keys"]) == 0
    assert "conversations: 1" in capsys.readouterr().out
    old = ["lb:events", "lb:timers:body", "lb:outbox", "lb:flows", f"lb:{{conv:{CONV}}}",
           f"lb:link:{TOKEN}", f"lb:slack:lead:{CONV}"]  # fmt: skip
    assert await redis.exists(*old) == 0
    await carries_on(redis)
    with pytest.raises(StorageError, match="migrated before"):
        await migrate(redis, redis, in_place=True)
    await redis.aclose()
