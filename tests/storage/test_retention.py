"""Every key has a retention: finished conversations expire with their timers and event index,
the event log keeps its window, dedupe keys a day; a conversation's events are indexed in the
commit that writes them, so erasing them reads no other entry of the log."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.asyncio import Redis

from bot.config import Settings, days
from domain.errors import ConfigError
from domain.model import Conversation, DomainEvent, Status, Timer
from storage import keys
from storage.base import Retention, StepWrite
from storage.prospects import ProspectRecords
from storage.redis import RedisConversationStore
from tests import sharded

AT = "2026-12-01T09:00:00+00:00"


def event(conversation: str, name: str = "step_reached") -> DomainEvent:
    return DomainEvent(name, conversation, "f", 1, "s", AT)


def conversation(cid: str, status: Status, revision: int = 0) -> Conversation:
    return Conversation(id=cid, flow="f", version=1, step="s", status=status, revision=revision)


async def commit(
    store: RedisConversationStore, conv: Conversation, *events: DomainEvent, timer: bool = False
) -> Conversation:
    nudge = Timer(f"{conv.id}:nudge", conv.id, "nudge", "2030-01-01T00:00:00+00:00", "s")
    write = StepWrite(conv, events=events, schedule=(nudge,) if timer else ())
    return (await store.commit(write)).conversation


async def test_a_finished_conversation_expires_with_its_timers_and_event_index(
    redis: Redis,
) -> None:
    store = RedisConversationStore(redis, Retention(events=0, finished=3600))
    conv = await commit(store, conversation("t:1", Status.ACTIVE), event("t:1"), timer=True)
    conv_keys = [keys.conversation("t:1"), keys.conversation_timers("t:1"),
                 keys.conversation_events("t:1")]  # fmt: skip
    assert [await redis.ttl(k) for k in conv_keys] == [-1, -1, -1]  # going on: kept
    for status in (Status.COMPLETED, Status.STOPPED, Status.DROPPED):
        conv = await commit(store, conv.with_(status=status), event("t:1", "completed"))
        assert all(0 < ttl <= 3600 for ttl in [await redis.ttl(k) for k in conv_keys]), status
    await commit(store, conv.with_(status=Status.ACTIVE), event("t:1", "started"))  # /restart
    assert [await redis.ttl(k) for k in conv_keys] == [-1, -1, -1]


async def test_finished_conversations_are_kept_for_ever_when_so_configured(redis: Redis) -> None:
    store = RedisConversationStore(redis, Retention(events=0, finished=0))
    await commit(store, conversation("t:2", Status.COMPLETED), event("t:2"))
    assert await redis.ttl(keys.conversation("t:2")) == -1


async def test_the_event_log_keeps_its_window(redis: Redis) -> None:
    old = {"name": "started", "conversation": "t:0", "flow": "f", "version": "1", "step": "s",
           "at": AT, "data": "{}"}  # fmt: skip
    log = keys.events(keys.shard_of("t:3"))  # the shard t:3's commit trims
    for n in range(1, 301):  # three stream nodes' worth of events from 1970
        await redis.xadd(log, old, id=f"{n}-0")  # type: ignore[arg-type]
    store = RedisConversationStore(redis, Retention(events=24 * 3600))
    await commit(store, conversation("t:3", Status.ACTIVE), event("t:3"))
    entries = await redis.xrange(log)
    assert len([e for e in entries if e[1]["conversation"] == "t:0"]) < 100  # whole nodes went
    assert [e[1]["conversation"] for e in entries][-1] == "t:3"
    kept = RedisConversationStore(redis, Retention(events=0))
    before = await sharded.total(redis.xlen, keys.events)
    await commit(kept, conversation("t:4", Status.ACTIVE), event("t:4"))
    assert await sharded.total(redis.xlen, keys.events) == before + 1  # 0: the log is never trimmed


async def test_dedupe_keys_live_about_a_day(redis: Redis) -> None:
    store = RedisConversationStore(redis)
    conv = conversation("t:5", Status.ACTIVE)
    await store.commit(StepWrite(conv, seen="telegram:update:5"))
    assert 3600 < await redis.ttl(keys.seen("t:5", "telegram:update:5")) <= keys.DAY


async def test_erasing_events_takes_exactly_the_conversations_own(redis: Redis) -> None:
    store = RedisConversationStore(redis)
    a = await commit(store, conversation("t:a", Status.ACTIVE), event("t:a"), event("t:a"))
    await commit(store, conversation("t:b", Status.ACTIVE), event("t:b"))
    await commit(store, a, event("t:a", "answered"))
    records = ProspectRecords(redis)
    assert [e.name for e in await records.events("t:a")] == [
        "step_reached", "step_reached", "answered"
    ]  # fmt: skip
    assert await records.erase_events("t:a") == 3
    assert {f["conversation"] for _, f in await sharded.entries(redis, keys.events)} == {"t:b"}
    assert await records.events("t:a") == []
    assert await redis.exists(keys.conversation_events("t:a")) == 0
    assert [e.name for e in await records.events("t:b")] == ["step_reached"]


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "1e9"])
def test_a_retention_that_is_not_a_number_of_days_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="LADDER_EVENT_DAYS should be a number of days"):
        days("LADDER_EVENT_DAYS", value, 1)


def test_retentions_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADDER_EVENT_DAYS", "30")
    monkeypatch.setenv("LADDER_FINISHED_DAYS", "0.5")
    settings = Settings.from_env()
    assert settings.retention == Retention(events=30 * keys.DAY, finished=keys.DAY // 2)
    monkeypatch.delenv("LADDER_EVENT_DAYS")
    monkeypatch.delenv("LADDER_FINISHED_DAYS")
    assert replace(Settings.from_env()).retention == Retention()
