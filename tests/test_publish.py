"""Publishing versions (pinning and `migrate:`), version counts and a prospect's data export,
through the functions and the `ladder` command, on redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot import privacy, publish
from bot.flow.loader import load_flow, parse_flow
from bot.service import Conversations
from domain.clock import ManualClock
from domain.errors import UnknownFlow
from domain.model import Press, Say, Start, Status, Text, messages_from_json
from storage import keys
from storage.redis import RedisFlowCatalog
from storage.scheduler import RedisScheduler
from tests import sharded
from tests.test_analytics import FLOW_FILE, T0, go_quiet, ladder_cli, ladder_on

V2 = FLOW_FILE.read_text().replace("id: email", "id: contact").replace("go: email", "go: contact")
MIGRATING = V2 + "migrate: {email: contact}\n"


async def scenario(redis: Redis, clock: ManualClock) -> Conversations:
    """On v1: telegram:1 waits at welcome, telegram:2 at email, telegram:3 completed,
    telegram:4 dropped at welcome."""
    conversations = await ladder_on(redis, clock)
    for n in (1, 2, 3, 4):
        await conversations.handle(f"telegram:{n}", Start(), durable=False)
    for n in (2, 3):
        await conversations.handle(f"telegram:{n}", Press("welcome", "yes"), durable=False)
    await conversations.handle("telegram:3", Text("three@example.com"), durable=False)
    await go_quiet(conversations, clock, "telegram:4")
    return conversations


async def state(conversations: Conversations, n: int) -> tuple[int, str | None, Status]:
    conv = await conversations.store.load(f"telegram:{n}")
    assert conv is not None
    return conv.version, conv.step, conv.status


async def test_publish_pins_in_flight_prospects_without_migrate(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await scenario(redis, clock)
    same = await publish.publish(redis, load_flow(FLOW_FILE), clock.now())
    assert (same.version, same.new, same.moved) == (1, False, ())
    assert (
        same.text() == "funnel v1 is already the latest version\nmoved 0 in-flight conversation(s)"
    )

    report = await publish.publish(redis, parse_flow(V2, "v2.yaml"), clock.now())
    assert (report.version, report.new, report.moved) == (2, True, ())
    assert await state(conversations, 2) == (1, "email", Status.ACTIVE)  # pinned to v1
    # the pinned prospect finishes on v1; a new prospect starts on v2
    await conversations.handle("telegram:2", Text("two@example.com"), durable=False)
    assert await state(conversations, 2) == (1, "done", Status.COMPLETED)
    await conversations.handle("telegram:9", Start(), durable=False)
    await conversations.handle("telegram:9", Press("welcome", "yes"), durable=False)
    assert await state(conversations, 9) == (2, "contact", Status.ACTIVE)


async def test_publish_migrates_in_flight_prospects_at_a_removed_step(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await scenario(redis, clock)
    old_timers = await RedisScheduler(redis).of("telegram:2")
    assert [t.step for t in old_timers] == ["email"]
    clock.advance(timedelta(minutes=5))

    report = await publish.publish(redis, parse_flow(MIGRATING, "v2.yaml"), clock.now())
    assert report.version == 2
    assert report.moved == (publish.Moved("telegram:2", 1, "email", "contact"),)
    assert "telegram:2: v1 email -> v2 contact" in report.text()
    assert await state(conversations, 2) == (2, "contact", Status.ACTIVE)
    for n, expected in ((1, (1, "welcome", Status.ACTIVE)), (3, (1, "done", Status.COMPLETED)),
                        (4, (1, "welcome", Status.DROPPED))):  # fmt: skip
        assert await state(conversations, n) == expected  # other steps and finished ones stay
    # the old step's follow-up is gone; the new step has its own
    assert [(t.step, t.seq) for t in await RedisScheduler(redis).of("telegram:2")] == [
        ("contact", 1)
    ]
    arrived, migrated = await redis.xrevrange(keys.events(keys.shard_of("telegram:2")), count=2)
    assert migrated[1]["name"] == "migrated"
    assert migrated[1]["step"] == "contact"
    assert json.loads(migrated[1]["data"]) == {
        "source": "",
        "from_version": "1",
        "from_step": "email",
    }
    assert (arrived[1]["name"], arrived[1]["step"]) == ("step_reached", "contact")
    # the new step's question waits in the outbox for the worker to send
    moved = await conversations.store.load("telegram:2")
    assert moved is not None
    items = [f for _, f in await sharded.entries(redis, keys.outbox)
             if f["key"].startswith(f"telegram:2:{moved.revision}:")]  # fmt: skip
    said = [m for f in items for m in messages_from_json(json.loads(f["body"])["messages"])]
    assert [m.text for m in said if isinstance(m, Say)] == ["Where should we send it?"]

    # the moved prospect goes on in v2
    out = await conversations.handle("telegram:2", Text("two@example.com"), durable=False)
    assert (out.conversation.version, out.conversation.status) == (2, Status.COMPLETED)
    assert [e.name for e in out.events][-2:] == ["completed", "alerted"]

    # publishing again moves nobody twice
    again = await publish.publish(redis, parse_flow(MIGRATING, "v2.yaml"), clock.now())
    assert (again.version, again.new, again.moved) == (2, False, ())


async def test_migrate_rechecks_a_conversation_that_changed_meanwhile(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await scenario(redis, clock)
    flow = parse_flow(MIGRATING, "v2.yaml")
    await RedisFlowCatalog(redis).publish(flow.name, flow.source)
    store = conversations.store

    stale = await store.load("telegram:2")
    await conversations.handle("telegram:2", Text("not an email"), durable=False)  # still at email
    timers = RedisScheduler(redis)
    moved = await publish._migrate(store, timers, stale, flow, version=2, now=clock.now())
    assert moved == publish.Moved("telegram:2", 1, "email", "contact")
    assert await state(conversations, 2) == (2, "contact", Status.ACTIVE)

    stale = await store.load("telegram:1")
    assert stale is not None
    await conversations.handle("telegram:1", Press("welcome", "yes"), durable=False)
    await conversations.handle(
        "telegram:1", Text("one@example.com"), durable=False
    )  # finished meanwhile
    again = stale.with_(step="email")
    assert await publish._migrate(store, timers, again, flow, version=2, now=clock.now()) is None
    assert await state(conversations, 1) == (1, "done", Status.COMPLETED)


async def test_versions_count_conversations_by_status(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await scenario(redis, clock)
    await publish.publish(redis, parse_flow(MIGRATING, "v2.yaml"), clock.now())
    await conversations.handle("telegram:9", Start(), durable=False)
    rows = await publish.versions(redis, "funnel")
    assert [(r.version, r.active, r.completed, r.other) for r in rows] == [
        (1, 1, 1, 1),  # telegram:1 waits, :3 completed, :4 dropped
        (2, 2, 0, 0),  # telegram:2 migrated, :9 new
    ]
    assert all(r.published_at.startswith("20") for r in rows)
    lines = publish.versions_table(rows).splitlines()
    assert lines[0].split() == ["version", "published", "active", "completed", "other"]
    assert lines[2].split()[0] == "v1" and lines[2].split()[2:] == ["1", "1", "1"]
    with pytest.raises(UnknownFlow, match="'nope' is not published"):
        await publish.versions(redis, "nope")


async def test_export_holds_everything_about_one_prospect(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await scenario(redis, clock)
    data = json.loads((await privacy.export(redis, "telegram:2")).to_json())
    assert data["conversation"]["id"] == "telegram:2"
    assert data["conversation"]["step"] == "email"
    assert data["conversation"]["revision"] >= 2
    names = [e["name"] for e in data["events"]]
    assert names[:3] == ["started", "step_reached", "answered"]
    assert {e["conversation"] for e in data["events"]} == {"telegram:2"}
    assert len(data["events"]) == sum(
        1 for _, f in await sharded.entries(redis, keys.events) if f["conversation"] == "telegram:2"
    )
    assert [t["kind"] for t in data["timers"]] == ["nudge"]
    assert data["outbox"] == []

    done = json.loads((await privacy.export(redis, "telegram:3")).to_json())
    assert done["timers"] == []
    (alert,) = done["outbox"]  # the flow alerts on completed: the alert holds their data too
    assert alert["kind"] == "alert"
    assert alert["body"]["conversation"]["answers"]["email"] == "three@example.com"

    await conversations.forget("telegram:2")
    with pytest.raises(privacy.UnknownProspect, match="nothing is stored about 'telegram:2'"):
        await privacy.export(redis, "telegram:2")


# --- the commands ------------------------------------------------------------------------------


async def test_publish_versions_and_export_commands(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    await scenario(redis, clock)
    v2 = tmp_path / "funnel.yaml"
    v2.write_text(MIGRATING)
    assert await ladder_cli(monkeypatch, redis_url, "publish", str(v2)) == 0
    assert capsys.readouterr().out.splitlines() == [
        "published funnel v2",
        "moved 1 in-flight conversation(s)",
        "  telegram:2: v1 email -> v2 contact",
    ]
    assert await ladder_cli(monkeypatch, redis_url, "versions", "funnel") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[2:]] == ["v1", "v2"]
    assert await ladder_cli(monkeypatch, redis_url, "export", "--prospect", "telegram:2") == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["conversation"]["version"] == 2
    assert [e["name"] for e in exported["events"][-2:]] == ["migrated", "step_reached"]


async def test_commands_reject_bad_input_and_store_nothing(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    await scenario(redis, clock)
    broken = tmp_path / "broken.yaml"
    broken.write_text(MIGRATING.replace("migrate: {email: contact}", "migrate: {email: nowhere}"))
    assert await ladder_cli(monkeypatch, redis_url, "publish", str(broken)) == 1
    err = capsys.readouterr().err
    assert "broken.yaml:" in err and "nowhere" in err
    assert await RedisFlowCatalog(redis).versions("funnel") == [1]  # nothing stored
    assert await ladder_cli(monkeypatch, redis_url, "publish", str(tmp_path / "none.yaml")) == 1
    assert "none.yaml" in capsys.readouterr().err
    assert await ladder_cli(monkeypatch, redis_url, "versions", "nope") == 1
    assert "ladder: flow 'nope' is not published" in capsys.readouterr().err
    assert await ladder_cli(monkeypatch, redis_url, "export", "--prospect", "telegram:77") == 1
    assert "nothing is stored about 'telegram:77'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        await ladder_cli(monkeypatch, redis_url, "export")


async def test_a_published_flow_is_reachable_by_deep_link_at_once_from_every_process(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    web_processes = [await ladder_on(redis, clock), await ladder_on(redis, clock)]  # running
    remind = tmp_path / "remind.yaml"
    remind.write_text(FLOW_FILE.read_text().replace("flow: funnel", "flow: remind"))
    assert await ladder_cli(monkeypatch, redis_url, "publish", str(remind)) == 0
    for n, web in enumerate(web_processes):
        outcome = await web.handle(f"telegram:{n}", Start("remind__ny"))
        assert (outcome.conversation.flow, outcome.conversation.source) == ("remind", "ny")
        assert outcome.conversation.step == "welcome"


async def test_a_deep_link_to_an_unknown_flow_falls_back_to_the_default_and_is_logged(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    conversations = await ladder_on(redis, ManualClock(T0))
    with caplog.at_level("WARNING", logger="bot.registry"):
        outcome = await conversations.handle("telegram:1", Start("remind__ny"))
    assert (outcome.conversation.flow, outcome.conversation.source) == ("funnel", "ny")
    assert (
        "deep link 'remind__ny' names flow 'remind', which is not published: using flow 'funnel'"
        in (caplog.text)
    )
    plain = await conversations.handle(
        "telegram:2", Start("linkedin")
    )  # a source alone: no warning
    assert (plain.conversation.flow, plain.conversation.source) == ("funnel", "linkedin")
    assert caplog.text.count("not published") == 1


async def test_export_into_a_closed_pipe_ends_quietly(redis: Redis, redis_url: str) -> None:
    """`ladder export --prospect ID | head`: when the reader stops early, no traceback."""
    await scenario(redis, ManualClock(T0))
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that is already gone: every write fails with EPIPE
    env = {**os.environ, "REDIS_URL": redis_url, "LADDER_SECRET": "s" * 40}
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "export", "--prospect", "telegram:2"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141
