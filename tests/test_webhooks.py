"""Outgoing webhooks on a real redis-server, to a fake CRM receiver on 127.0.0.1 that verifies
every signature with the standardwebhooks library: the file and its validation, retries, dead
letters, and a worker process killed mid-delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot import cli
from bot.app import Services, build
from bot.config import Settings
from bot.webhooks import Webhooks, parse
from bot.worker import Worker
from domain.clock import ManualClock
from domain.errors import ConfigError, FlowErrors
from domain.model import LinkOpened, Press, Profile, Start, Text
from storage import keys
from storage.outbox import Outbox
from tests import sharded
from tests.channels.telegram.test_cli import ladder_env
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import FakeReceiver, body_of, make_secret
from tests.processes import LadderProcess
from tests.redis_server import free_port
from tests.test_worker import wait_until

FLOW = Path(__file__).parent / "data" / "ladder.yaml"
SECRET_ENV = "CRM_WEBHOOK_SECRET"
ADA = Profile(first_name="Ada", last_name="Lovelace", username="ada")
EMAIL = "ada@example.com"


def hooks_file(folder: Path, url: str, events: str = "[started]") -> Path:
    path = folder / "webhooks.yaml"
    path.write_text(
        "webhooks:\n"
        "  - name: crm\n"
        f"    url: {url}\n"
        f"    events: {events}\n"
        f"    secret_env: {SECRET_ENV}\n"
    )
    return path


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as fake:
        yield fake


async def hooked(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch,
    *, events: str = "[started]", url: str | None = None,
) -> Services:  # fmt: skip
    """Services whose deployment sends `events` to the receiver (or `url`), on a clock the
    test moves."""
    monkeypatch.setenv(SECRET_ENV, receiver.secret)
    path = hooks_file(tmp_path, url or receiver.url, events)
    settings = replace(Settings.from_env(), webhooks_file=path)
    return await build(settings, clock=ManualClock(), redis=redis, paths=[FLOW])


async def rounds(services: Services, count: int = 12) -> None:
    """Worker rounds of the outbox, the clock moved past each retry's backoff in between."""
    assert isinstance(services.clock, ManualClock)
    worker = Worker(services.conversations, {}, services.clock)
    for _ in range(count):
        await worker.deliver()
        services.clock.advance(timedelta(minutes=5))


async def walk(services: Services, conversation: str = "telegram:42") -> None:
    """Ada up the whole test ladder to its end (outcome won); messages stay in the process."""
    conversations = services.conversations
    for event in (Start("test-ladder__linkedin"), Text("yes"), Text("Other"), Text(EMAIL)):
        await conversations.handle(conversation, event, profile=ADA, durable=False)
    for event in (LinkOpened("checklist"), Press("webinar", "slot0"), Press("trial", "skip")):
        await conversations.handle(conversation, event, durable=False)


# --- the webhooks file -----------------------------------------------------------------------


def test_a_webhooks_file_names_endpoints_and_their_events(tmp_path: Path) -> None:
    path = hooks_file(tmp_path, "https://crm.example.com/hooks", "[committed, completed]")
    [endpoint] = parse(path)
    assert endpoint.name == "crm" and endpoint.url == "https://crm.example.com/hooks"
    assert endpoint.events == {"committed", "completed"} and endpoint.secret_env == SECRET_ENV


BAD = """\
webhooks:
  - name: crm
    url: http://crm.example.com/hooks
    events: [committed, bought]
  - name: zap
    url: ftp://files.example.com
    events: [completed]
    secret_env: ZAP SECRET
    retries: 3
"""


def test_validate_names_file_line_and_column_of_each_webhook_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(BAD)
    with pytest.raises(FlowErrors) as raised:
        parse(path)
    found = {(e.line, e.col): e.message for e in raised.value.errors}
    assert "plain http" in found[(3, 10)]  # prospects' data never leaves in the clear
    assert "unknown event 'bought'" in found[(4, 25)]
    assert "no `secret_env`" in found[(2, 5)]
    assert "not a URL" in found[(6, 10)]
    assert "should name an environment variable" in found[(8, 17)]
    assert "unknown field 'retries'" in found[(9, 5)]
    assert len(found) == 6

    assert cli.main(["validate", "--webhooks", str(path)]) == 1
    printed = capsys.readouterr().out
    assert f"{path}:4:25: unknown event 'bought'" in printed
    path.write_text(BAD.replace("zap", "crm"))
    assert cli.main(["validate", "--webhooks", str(path)]) == 1
    assert "a second endpoint named 'crm'" in capsys.readouterr().out


def test_validate_passes_a_good_file_with_the_flows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = hooks_file(tmp_path, "https://crm.example.com/hooks", "[committed, won]")
    assert cli.main(["validate", str(FLOW), "--webhooks", str(path)]) == 0
    assert f"{path}: 1 webhook endpoint(s), ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("whsec_" + "c2hvcnQ=", "at least 24"),  # base64 of "short"
        ("not-base64-at-all-but-long-enough-to-pass-a-length-check", "whsec_"),
    ],
)
def test_a_missing_or_weak_secret_is_refused(
    tmp_path: Path, value: str | None, problem: str
) -> None:
    path = hooks_file(tmp_path, "https://crm.example.com/hooks")
    env = {} if value is None else {SECRET_ENV: value}
    with pytest.raises(ConfigError) as raised:
        Webhooks.configured(path, env)
    assert problem in str(raised.value) and SECRET_ENV in str(raised.value)
    assert Webhooks.configured(path, {SECRET_ENV: make_secret()}).endpoints


@pytest.mark.parametrize("command", ["worker", "serve", "run"])
def test_the_processes_refuse_to_start_with_a_bad_file_or_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:  # fmt: skip
    path = hooks_file(tmp_path, "https://crm.example.com/hooks")
    monkeypatch.setenv("WEBHOOKS_FILE", str(path))
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert cli.main([command]) == 1
    assert f"{SECRET_ENV} is not set" in capsys.readouterr().err
    path.write_text(BAD)
    assert cli.main([command]) == 1
    assert f"{path}:4:25: unknown event 'bought'" in capsys.readouterr().err


# --- delivery ----------------------------------------------------------------------------------


async def test_the_body_carries_what_a_crm_needs_to_upsert_the_contact(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await hooked(redis, tmp_path, receiver, monkeypatch, events="[committed, completed]")
    await walk(services)
    await rounds(services)

    assert receiver.unverified() == []
    # deliveries may arrive in any order: a receiver keeps the newest by `sequence`
    bodies = sorted((body_of(c) for c in receiver.delivered()), key=lambda b: b["data"]["id"])
    bodies.sort(key=lambda b: b["data"]["sequence"])
    assert bodies[-1]["type"] == "completed"
    assert {b["type"] for b in bodies} == {"committed", "completed"}
    assert len([b for b in bodies if b["type"] == "committed"]) >= 2
    completed = bodies[-1]["data"]
    assert completed["conversation"] == "telegram:42" and completed["channel"] == "telegram"
    assert (completed["flow"], completed["version"]) == ("test-ladder", 1)
    assert completed["profile"]["first_name"] == "Ada"
    assert completed["answers"]["email"] == EMAIL
    assert completed["commitments"] and completed["score"] > 0
    assert (completed["outcome"], completed["source"]) == ("won", "linkedin")
    ids = [c.webhook_id for c in receiver.delivered()]
    assert len(set(ids)) == len(ids) and all(b["data"]["id"] in ids for b in bodies)
    left = {f["kind"] for _, f in await sharded.entries(redis, keys.outbox)}
    assert left == {"alert"}  # no Slack in this process: only the alerts wait


async def test_a_failing_receiver_gets_the_event_once_it_answers(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await hooked(redis, tmp_path, receiver, monkeypatch)
    receiver.fail_next(500, times=2)
    receiver.fail_next(408)
    receiver.fail_next(429)  # no Retry-After: retried with the backoff
    receiver.fail_next(503)
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    await rounds(services)

    calls = receiver.calls()
    assert [c.status for c in calls] == [500, 500, 408, 429, 503, 200]
    assert receiver.unverified() == []
    assert len({c.webhook_id for c in calls}) == 1  # the same message each time
    [delivered] = receiver.delivered()
    assert body_of(delivered)["type"] == "started"
    assert (
        await Outbox(redis).dead_count() == 0 and await sharded.total(redis.xlen, keys.outbox) == 0
    )


async def test_a_receiver_asking_to_wait_is_waited_for(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await hooked(redis, tmp_path, receiver, monkeypatch)
    receiver.fail_next(429, headers={"Retry-After": "120"})
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    worker = Worker(services.conversations, {}, services.clock)
    await worker.deliver()
    await worker.deliver()  # paused: nothing is sent meanwhile
    assert [c.status for c in receiver.calls()] == [429]
    assert await redis.pttl(keys.paused(0, "webhook:crm")) > 0  # set in every shard
    for shard in keys.shards():  # the 120 s are over
        await redis.delete(keys.paused(shard, "webhook:crm"))
    await rounds(services)
    assert [c.status for c in receiver.calls()] == [429, 200]


async def test_a_refused_delivery_is_dead_lettered_with_the_receivers_reason(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await hooked(redis, tmp_path, receiver, monkeypatch)
    receiver.fail_next(400)
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    await rounds(services)

    assert [c.status for c in receiver.calls()] == [400]  # not retried
    [dead] = await Outbox(redis).dead_letters()
    assert dead.item.kind == "webhook:crm" and dead.attempts == 1
    assert "HTTP 400 Bad Request: scripted answer 400" in dead.error
    assert await Outbox(redis).replay([dead.id]) == 1  # fixed on the CRM's side: replayed
    await rounds(services)
    assert [c.status for c in receiver.calls()] == [400, 200]
    assert receiver.calls()[0].webhook_id == receiver.calls()[1].webhook_id


async def test_an_unreachable_receiver_is_retried(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
    services = await hooked(redis, tmp_path, receiver, monkeypatch, url=closed)
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    await rounds(services, 3)
    [retry] = await sharded.retries(redis)
    assert json.loads(retry)["failures"] == 3 and "ConnectError" in json.loads(retry)["error"]
    assert await Outbox(redis).dead_count() == 0  # retried for a day before giving up


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await hooked(redis, tmp_path, receiver, monkeypatch)
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    arrived = receiver.hold("webhook")
    impatient = Worker(services.conversations, {}, services.clock, lease=timedelta(seconds=2))
    assert await impatient.deliver() == 0  # cut off after half the lease
    assert arrived.is_set()
    receiver.release("webhook", process=False)  # the receiver never handled it
    [retry] = await sharded.retries(redis)
    assert json.loads(retry)["failures"] == 1
    await rounds(services)
    [delivered] = receiver.delivered()
    assert body_of(delivered)["type"] == "started"


async def test_forgetting_a_prospect_drops_their_undelivered_webhooks(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await hooked(redis, tmp_path, receiver, monkeypatch)
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    assert await services.conversations.forget("telegram:42") >= 1
    await rounds(services, 2)
    assert receiver.calls() == []


# --- a worker process killed while the receiver holds its request ----------------------------


@pytest.mark.parametrize("receiver_got_it", [False, True])
async def test_webhooks_survive_a_worker_killed_mid_delivery(
    tmp_path: Path, redis_url: str, redis: Redis, receiver: FakeReceiver, receiver_got_it: bool
) -> None:
    """Killed while the receiver held its request; then the receiver either drops the request
    or takes it (the crash fell between its answer and the outbox's record): each event
    arrives, and every copy of one carries the same webhook-id for the receiver to dedupe."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ladder.yaml").write_text(FLOW.read_text())
    hooks = hooks_file(tmp_path, receiver.url, "[started, committed]")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, receiver.secret)
        settings = replace(Settings.from_env(), webhooks_file=hooks)
        services = await build(settings, redis=redis, paths=[flows / "ladder.yaml"])
    await services.conversations.handle("telegram:42", Start(), profile=ADA, durable=False)
    await services.conversations.handle("telegram:42", Text("yes"), durable=False)
    with FakeTelegram() as telegram:
        env = ladder_env(
            telegram, flows, redis_url, WEBHOOKS_FILE=str(hooks),
            **{SECRET_ENV: receiver.secret},
        )  # fmt: skip
        arrived = receiver.hold("webhook")
        with LadderProcess("worker", "--lease", "4", env=env) as doomed:
            assert await asyncio.to_thread(arrived.wait, 60), doomed.output
            doomed.kill()
        receiver.release("webhook", process=receiver_got_it)
        with LadderProcess("worker", "--lease", "4", env=env) as survivor:
            await wait_until(lambda: _outbox_empty(redis), 120)
            assert survivor.stop() == 0

    assert receiver.unverified() == []
    ids: dict[str, set[str]] = {}
    for call in receiver.delivered():
        ids.setdefault(body_of(call)["type"], set()).add(call.webhook_id)
    assert {name: len(each) for name, each in ids.items()} == {"started": 1, "committed": 1}
    copies = len(receiver.delivered())
    assert copies <= 2 + receiver_got_it * 2  # a copy more only of what was in flight
    assert await Outbox(redis).dead_count() == 0


async def _outbox_empty(redis: Redis) -> bool:
    return int(await sharded.total(redis.xlen, keys.outbox)) == 0
