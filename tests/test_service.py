"""The service on a real redis-server: atomic steps, no lost updates, pinning, duplicates,
and what a Redis outage looks like from a channel."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.registry import FlowRegistry
from bot.service import Conversations
from domain.clock import ManualClock
from domain.errors import StorageError
from domain.model import LinkOpened, Press, Start, Text
from storage import keys
from storage.base import OutboxItem
from storage.connect import connect
from storage.outbox import Outbox, OutboxPolicy
from storage.redis import RedisFlowCatalog
from tests import sharded
from tests.redis_server import RedisServer

ROOT = Path(__file__).parent.parent
FLOW = ROOT / "tests" / "data" / "ladder.yaml"


async def make_ladder(redis: Redis, path: Path = FLOW) -> Conversations:
    flows = await FlowRegistry.from_files(RedisFlowCatalog(redis), [path])
    return Conversations(redis, flows, ManualClock())


async def test_a_step_writes_state_events_and_timers_together(redis: Redis) -> None:
    conversations = await make_ladder(redis)
    outcome = await conversations.handle("telegram:7", Start("test-ladder__linkedin"))
    assert outcome.conversation.source == "linkedin"
    stored = await conversations.store.load("telegram:7")
    assert stored is not None and stored.step == "welcome" and stored.revision == 1
    events = await sharded.entries(redis, keys.events)
    assert [fields["name"] for _, fields in events] == ["started", "step_reached"]
    assert (
        await redis.zscore(keys.timers_due(keys.shard_of("telegram:7")), "telegram:7:nudge")
        is not None
    )
    assert await redis.smembers(keys.conversation_timers("telegram:7")) == {"telegram:7:nudge"}


async def test_alerts_go_to_the_outbox_in_the_same_write(redis: Redis) -> None:
    conversations = await make_ladder(redis)
    for event in (Start(), Text("yes"), Text("Other"), Text("pat@example.com")):
        await conversations.handle("telegram:8", event)
    await conversations.handle("telegram:8", LinkOpened("checklist"))
    assert {f["kind"] for _, f in await sharded.entries(redis, keys.outbox)} == {"message:telegram"}
    await conversations.handle("telegram:8", Press("webinar", "slot0"))
    entries = [(i, f) for i, f in await sharded.entries(redis, keys.outbox) if f["kind"] == "alert"]
    bodies = [json.loads(fields["body"]) for _, fields in entries]
    assert [fields["kind"] for _, fields in entries] == ["alert"]  # one per step
    assert [b["reasons"] for b in bodies] == [["webinar_booked", "score"]]
    assert bodies[0]["slack_channel"] == "#leads"
    assert bodies[0]["conversation"]["answers"]["email"] == "pat@example.com"


async def test_a_duplicate_update_is_applied_once(redis: Redis) -> None:
    conversations = await make_ladder(redis)
    await conversations.handle("telegram:9", Start(), update_key="telegram:update:1")
    first = await conversations.handle("telegram:9", Text("yes"), update_key="telegram:update:2")
    again = await conversations.handle("telegram:9", Text("yes"), update_key="telegram:update:2")
    assert not first.duplicate and again.duplicate
    assert again.actions == ()
    stored = await conversations.store.load("telegram:9")
    assert stored is not None and stored.step == "role" and stored.revision == 2


async def test_concurrent_tasks_lose_no_update(redis_url: str) -> None:
    clients = [connect(redis_url) for _ in range(4)]
    await clients[0].flushdb()
    ladders = [await make_ladder(c) for c in clients]
    await ladders[0].handle("telegram:10", Start())

    async def send(conversations: Conversations, n: int) -> None:
        for i in range(n):
            await conversations.handle("telegram:10", Text(f"nonsense {i}"))

    await asyncio.gather(*(send(conversations, 25) for conversations in ladders))
    stored = await ladders[0].store.load("telegram:10")
    assert stored is not None
    assert stored.invalid == 100
    assert stored.revision == 101
    names = [f["name"] for _, f in await sharded.entries(clients[0], keys.events)]
    assert names.count("invalid_input") == 100
    for client in clients:
        await client.aclose()


async def test_concurrent_processes_lose_no_update(redis: Redis, redis_url: str) -> None:
    conversations = await make_ladder(redis)
    await conversations.handle("telegram:11", Start())
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.hammer", redis_url, "telegram:11", "40", cwd=ROOT
        )
        for _ in range(2)
    ]
    assert [await asyncio.wait_for(p.wait(), 120) for p in procs] == [0, 0]
    stored = await conversations.store.load("telegram:11")
    assert stored is not None and stored.invalid == 80 and stored.revision == 81


async def test_conversations_stay_on_the_version_they_started(redis: Redis, tmp_path: Path) -> None:
    conversations = await make_ladder(redis)
    await conversations.handle("telegram:12", Start())
    await conversations.handle("telegram:12", Text("yes"))
    changed = tmp_path / "ladder.yaml"
    changed.write_text(FLOW.read_text().replace("What's your role?", "Your job title?"))
    ladder_v2 = await make_ladder(redis, changed)
    assert await ladder_v2.flows.latest_version("test-ladder") == 2
    old = await ladder_v2.handle("telegram:12", Text("???"), durable=False)
    assert old.conversation.version == 1
    assert "What's your role?" in old.actions[0].text  # type: ignore[union-attr]
    new = await ladder_v2.handle("telegram:13", Start())
    await ladder_v2.handle("telegram:13", Text("yes"))
    newer = await ladder_v2.handle("telegram:13", Text("???"), durable=False)
    assert new.conversation.version == 2
    assert "Your job title?" in newer.actions[0].text  # type: ignore[union-attr]
    restarted = await ladder_v2.handle("telegram:12", Start())
    assert restarted.conversation.version == 1  # still mid-flow: stays pinned


async def test_republishing_the_same_text_keeps_the_version(redis: Redis) -> None:
    await make_ladder(redis)
    again = await make_ladder(redis)
    assert await again.flows.catalog.versions("test-ladder") == [1]


async def test_redis_outage_raises_storage_error_and_loses_nothing(own_redis: RedisServer) -> None:
    redis = connect(own_redis.url)
    conversations = await make_ladder(redis)
    await conversations.handle("telegram:14", Start(), update_key="u1")
    own_redis.stop()
    with pytest.raises(StorageError):
        await conversations.handle("telegram:14", Text("yes"), update_key="u2")
    own_redis.start()  # appendonly: the data comes back
    retried = await conversations.handle("telegram:14", Text("yes"), update_key="u2")
    assert not retried.duplicate
    assert retried.conversation.step == "role"
    await redis.aclose()


async def test_forget_erases_conversation_timers_events_and_outbox_items(redis: Redis) -> None:
    conversations = await make_ladder(redis)
    for cid in ("telegram:15", "telegram:16"):
        for event in (Start(), Text("yes"), Text("Other"), Text("pat@example.com")):
            await conversations.handle(cid, event)
        await conversations.handle(cid, LinkOpened("checklist"))
        await conversations.handle(cid, Press("webinar", "slot0"))  # alerts wait in the outbox
    outbox = Outbox(redis, "c1", OutboxPolicy(backoff=0.01))

    async def slack_down(item: OutboxItem) -> None:
        raise ConnectionError("Slack is down")

    await outbox.deliver_once(slack_down)  # every alert is now pending, awaiting a retry
    await redis.hset(keys.lead_key("telegram:15"), mapping={"channel": "C1", "ts": "1.2"})
    await redis.set(keys.thread_key("C1", "1.2"), "telegram:15")
    assert "telegram:15:reminder:test-ladder:webinar:0" in await sharded.members(
        redis, keys.timers_due
    )
    erased = await conversations.forget("telegram:15")
    assert erased >= 10
    assert await conversations.store.load("telegram:15") is None
    assert not [t for t in await sharded.members(redis, keys.timers_due) if "telegram:15" in t]
    left = {f["conversation"] for _, f in await sharded.entries(redis, keys.events)}
    assert left == {"telegram:16"}
    queued = [f["key"] for _, f in await sharded.entries(redis, keys.outbox)]
    assert queued and all(key.startswith("telegram:16:") for key in queued)
    assert await redis.exists(keys.lead_key("telegram:15"), keys.thread_key("C1", "1.2")) == 0
    await asyncio.sleep(0.05)
    delivered: list[str] = []

    async def slack_up(item: OutboxItem) -> None:
        delivered.append(item.key)

    await outbox.deliver_once(slack_up)
    assert delivered and all(key.startswith("telegram:16:") for key in delivered)
    assert await outbox.dead_count() == 0


async def test_start_up_never_rolls_back_a_newer_published_version(
    redis: Redis, tmp_path: Path
) -> None:
    await make_ladder(redis)
    changed = tmp_path / "ladder.yaml"
    changed.write_text(FLOW.read_text().replace("What's your role?", "Your job title?"))
    await make_ladder(redis, changed)  # v2, as `ladder publish` would store it
    again = await make_ladder(redis)  # a process starts with the old file still in FLOWS_DIR
    assert await again.flows.latest_version("test-ladder") == 2
    assert await again.flows.catalog.versions("test-ladder") == [1, 2]
