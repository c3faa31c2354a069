"""The worker on a real redis-server: in-process rounds, and worker processes that share the
queue, get killed, or were all down while timers fell due."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import Services, build
from bot.channels.telegram.channel import TelegramChannel
from bot.config import Settings
from bot.delivery import Deliveries
from bot.worker import Worker, run_worker
from domain.clock import ManualClock, SystemClock
from domain.model import Action, Conversation, DomainEvent, Due, Press, Say, Start, Stop, Timer, iso
from storage import keys
from storage.base import StepWrite
from storage.connect import connect
from storage.outbox import Outbox, OutboxPolicy
from tests import sharded
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.redis_server import RedisServer
from tests.test_followups import ALEX, FLOW, T0, H, Recorder

LEASE = timedelta(seconds=30)
ROOT = Path(__file__).resolve().parents[1]


class RedisListSender:
    """A Sender that records each message in a Redis list shared by the worker processes, and
    can hang for good after `hang_after` messages (a send that never returns)."""

    def __init__(self, redis: Redis, key: str, hang_after: int = 0) -> None:
        self.redis, self.key, self.hang_after, self.count = redis, key, hang_after, 0

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Say):
                entry = {"conversation": conversation.id, "text": action.text}
                await self.redis.rpush(self.key, json.dumps(entry))
                self.count += 1
        if self.count == self.hang_after:
            await asyncio.Event().wait()


def worker_process() -> None:
    """A worker process as `ladder worker` runs one, with RedisListSender for Telegram."""

    async def main() -> None:
        services = await build(Settings.from_env())
        services.senders["telegram"] = RedisListSender(
            services.redis, os.environ["SENT_KEY"], int(os.environ.get("HANG_AFTER", "0"))
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        lease = timedelta(seconds=float(os.environ["LEASE_SECONDS"]))
        await run_worker(services, stop, batch=int(os.environ["BATCH"]), lease=lease, idle=0.05)

    asyncio.run(main())


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    """The follow-up flow without quiet hours (so real-time due times do not depend on when the
    test runs), with a Slack alert when a prospect is dropped."""
    text = FLOW.replace('  quiet_hours: "21:00-08:00"\n', "")
    (tmp_path / "followups.yaml").write_text(
        text.replace("steps:", "alerts: {on: [dropped]}\nsteps:")
    )
    return tmp_path


@pytest.fixture
async def services(redis: Redis, flows: Path) -> Services:
    paths = [flows / "followups.yaml"]
    return await build(Settings.from_env(), clock=ManualClock(T0), redis=redis, paths=paths)


def clock_of(services: Services) -> ManualClock:
    assert isinstance(services.clock, ManualClock)
    return services.clock


async def start(services: Services, *conversations: str) -> None:
    for conversation in conversations:
        await services.conversations.handle(conversation, Start(), profile=ALEX, durable=False)


# --- one worker, in-process ----------------------------------------------------------------


async def test_a_nudge_sent_before_a_crash_is_not_repeated(services: Services) -> None:
    await start(services, "telegram:1")
    clock = clock_of(services)
    clock.advance(24 * H)
    dead = Recorder(clock)
    crashed = Worker(services.conversations, {"telegram": dead}, clock, lease=LEASE)
    [claim] = await crashed.scheduler.claim(clock.now(), 10, LEASE)  # what tick() does first
    outcome = await services.conversations.handle("telegram:1", Due(claim.timer), deliver_now=True)
    await Deliveries(services.conversations, {"telegram": dead}).now(
        outcome
    )  # sent; killed before ack
    alive = Recorder(clock)
    worker = Worker(services.conversations, {"telegram": alive}, clock, lease=LEASE)

    clock.advance(LEASE)
    assert await worker.tick() == 0  # the id already holds nudge 2, which keeps its due time
    assert await sharded.total(services.redis.zcard, keys.timers_processing) == 0
    again = await services.conversations.handle("telegram:1", Due(claim.timer))  # a redelivery
    assert (again.actions, again.events) == ((), ())  # the engine's seq check: a no-op
    await worker.fast_forward(clock, T0 + timedelta(days=5))

    assert [text for _, text in dead.said("telegram:1")] == ["Still keen, Alex?"]
    assert [text for _, text in alive.said("telegram:1")] == ["Last call, Alex!"]


async def test_a_drop_handled_before_a_crash_is_recovered_as_a_no_op(services: Services) -> None:
    await start(services, "telegram:1")
    clock = clock_of(services)
    worker = Worker(services.conversations, {"telegram": Recorder(clock)}, clock, lease=LEASE)
    await worker.fast_forward(clock, T0 + 96 * H - timedelta(seconds=1))  # both nudges sent
    clock.advance(timedelta(seconds=1))
    [drop] = await worker.scheduler.claim(clock.now(), 10, LEASE)
    assert drop.timer.kind == "drop"
    first = await services.conversations.handle("telegram:1", Due(drop.timer))  # then killed
    assert [e.name for e in first.events] == ["dropped", "alerted"]  # the flow alerts on it
    clock.advance(LEASE)

    assert await worker.tick() == 1  # recovered: the drop left its timer in place

    assert [e.name for e in await _events(services.redis)].count("dropped") == 1
    assert await sharded.total(services.redis.hlen, keys.timers_body) == 0


async def test_a_reminder_sent_before_a_crash_is_not_repeated(services: Services) -> None:
    clock = clock_of(services)
    await start(services, "telegram:1")
    await services.conversations.handle("telegram:1", Press("welcome", "yes"), durable=False)
    await services.conversations.handle("telegram:1", Press("webinar", "slot0"), durable=False)
    clock.set(datetime(2026, 12, 9, 15, 0, tzinfo=UTC))  # 24h before the slot
    scheduler = Worker(services.conversations, {}, clock).scheduler
    claims = await scheduler.claim(clock.now(), 10, LEASE)
    [reminder] = [c for c in claims if c.timer.kind == "reminder"]
    first = await services.conversations.handle("telegram:1", Due(reminder.timer), deliver_now=True)
    assert [e.name for e in first.events] == ["reminded"]
    dead = Recorder(clock)
    assert await Deliveries(services.conversations, {"telegram": dead}).now(first) == 1
    clock.advance(LEASE)  # the worker died before acking: its claims come back
    alive = Recorder(clock)

    await Worker(services.conversations, {"telegram": alive}, clock).tick()

    assert [a for _, _, a in alive.sent if "Reminder" in getattr(a, "text", "")] == []
    assert next(text for _, text in dead.said("telegram:1")).startswith("Reminder")


async def test_a_message_for_a_channel_without_sender_waits_for_a_worker_with_one(
    services: Services,
) -> None:
    await start(services, "telegram:1")
    clock = clock_of(services)
    clock.advance(24 * H)
    quick = OutboxPolicy(backoff=0.01)
    console_only = Worker(
        services.conversations,
        {"console": Recorder(clock)},
        clock,
        outbox=Outbox(services.redis, "c1"),
    )
    console_only.deliveries.wait = 0.05

    assert await console_only.tick() == 1  # the step is taken; its message waits
    conv = await services.conversations.store.load("telegram:1")
    assert conv is not None and conv.nudges == 1
    assert await sharded.total(services.redis.xlen, keys.outbox) == 1
    await asyncio.sleep(0.1)  # the hold on "message:telegram" runs out
    telegram = Recorder(clock)
    worker = Worker(
        services.conversations,
        {"telegram": telegram},
        clock,
        outbox=Outbox(services.redis, "t1", quick),
    )
    assert await worker.deliver() == 1
    assert [a.text.splitlines()[0] for _, _, a in telegram.sent] == ["Still keen, Alex?"]
    assert await sharded.total(services.redis.xlen, keys.outbox) == 0


async def test_a_timer_whose_step_fails_is_retried_after_its_lease(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    clock = clock_of(services)
    orphan = Conversation(id="telegram:9", flow="followups", version=99, step="welcome")
    timer = Timer("telegram:9:nudge", "telegram:9", "nudge", iso(T0), "welcome", 1)
    await services.conversations.store.commit(StepWrite(conversation=orphan, schedule=(timer,)))
    worker = Worker(services.conversations, {"telegram": Recorder(clock)}, clock, lease=LEASE)

    with caplog.at_level(logging.ERROR, "bot.worker"):
        assert await worker.tick() == 1
    assert "timer telegram:9:nudge failed" in caplog.text
    assert "has no published version 99" in caplog.text
    assert await sharded.members(services.redis, keys.timers_processing) == [timer.id]
    clock.advance(LEASE)
    assert await worker.tick() == 1  # back from the lease, tried again
    assert (
        await services.redis.hget(keys.timers_body(keys.shard_of(timer.conversation)), timer.id)
        == timer.to_json()
    )


class FlakySender:
    """Fails until told to work: Telegram down for a while."""

    def __init__(self, works: Recorder) -> None:
        self.works, self.up = works, False

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        if not self.up:
            raise ConnectionError("Telegram is unreachable")
        await self.works.deliver(conversation, actions)


async def test_a_failed_send_is_retried_and_the_follow_ups_go_on(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    await start(services, "telegram:1")
    clock = clock_of(services)
    clock.advance(24 * H)
    recorder = Recorder(clock)
    flaky = FlakySender(recorder)
    outbox = Outbox(services.redis, "w1", OutboxPolicy(backoff=0.05))
    worker = Worker(services.conversations, {"telegram": flaky}, clock, outbox=outbox)

    with caplog.at_level(logging.WARNING, "storage.outbox"):
        assert await worker.tick() == 1  # the timer; the send failed

    assert "ConnectionError: Telegram is unreachable" in caplog.text
    assert await sharded.total(services.redis.zcard, keys.timers_processing) == 0
    assert await worker.scheduler.next_due() == T0 + 48 * H
    flaky.up = True
    await asyncio.sleep(0.1)  # the outbox's backoff
    assert await worker.deliver() == 1  # the message, this time
    assert [a.text.splitlines()[0] for _, _, a in recorder.sent] == ["Still keen, Alex?"]


async def test_a_message_queued_for_a_prospect_who_opted_out_is_not_sent(
    services: Services,
) -> None:
    await start(services, "telegram:1")
    clock = clock_of(services)
    clock.advance(24 * H)
    nowhere = Worker(services.conversations, {}, clock, outbox=Outbox(services.redis, "n1"))
    nowhere.deliveries.wait = 0.01
    await nowhere.tick()  # the nudge is in the outbox, undelivered
    await services.conversations.handle("telegram:1", Stop())
    await asyncio.sleep(0.05)
    recorder = Recorder(clock)
    worker = Worker(
        services.conversations, {"telegram": recorder}, clock, outbox=Outbox(services.redis)
    )
    await worker.tick()
    assert recorder.sent == []
    assert await sharded.total(services.redis.xlen, keys.outbox) == 0


class StopAfter:
    """Records, and sets `stop` once `count` messages went out."""

    def __init__(self, recorder: Recorder, stop: asyncio.Event, count: int) -> None:
        self.recorder, self.stop, self.count = recorder, stop, count

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        await self.recorder.deliver(conversation, actions)
        if len(self.recorder.sent) >= self.count:
            self.stop.set()


async def test_run_works_through_due_timers_until_stopped(services: Services) -> None:
    await start(services, *(f"telegram:{n}" for n in range(5)))
    clock = clock_of(services)
    clock.advance(24 * H)
    recorder = Recorder(clock)
    stop = asyncio.Event()
    sender = StopAfter(recorder, stop, 5)

    worker = Worker(services.conversations, {"telegram": sender}, clock, batch=2, idle=0.01)
    await asyncio.wait_for(worker.run(stop), 120)  # the bound only stops a hang

    assert len(recorder.sent) == 5
    assert await worker.pause() == 0.01  # next timer is a day away: sleep at most `idle`
    clock.advance(24 * H - timedelta(milliseconds=5))
    assert await worker.pause() == pytest.approx(0.005)


async def test_a_round_without_redis_is_logged_and_counts_as_idle(
    own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "f.yaml").write_text(FLOW)
    redis = connect(own_redis.url)
    services = await build(Settings.from_env(), SystemClock(), redis, [tmp_path / "f.yaml"])
    worker = Worker(services.conversations, {}, services.clock)
    own_redis.stop()

    with caplog.at_level(logging.ERROR, "bot.worker"):
        assert await worker.round() == 0
    assert "worker round failed" in caplog.text
    assert await worker.pause() == worker.idle
    await redis.aclose()


# --- worker processes ----------------------------------------------------------------------


class Processes:
    """`worker_process` children on the test's Redis and flow; all stopped at the end."""

    def __init__(self, redis_url: str, flows: Path) -> None:
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "FLOWS_DIR": str(flows),
            "LADDER_SECRET": secrets.token_urlsafe(32),  # the same in every child
            "SENT_KEY": "test:sent",
            "LEASE_SECONDS": "2",
            "BATCH": "50",
        }
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, *command: str, **env: str) -> subprocess.Popen[bytes]:
        """A `worker_process`, or `python <command>` (e.g. "-m", "bot.cli", "worker")."""
        command = command or ("-c", "from tests.test_worker import worker_process as w; w()")
        child = subprocess.Popen([sys.executable, *command], cwd=ROOT, env={**self.env, **env})
        self.children.append(child)
        return child

    def stop_all(self) -> list[int]:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        return [child.wait(timeout=10) for child in self.children]


@pytest.fixture
def processes(redis_url: str, flows: Path) -> Iterator[Processes]:
    group = Processes(redis_url, flows)
    yield group
    group.stop_all()


async def due_now(services: Services, conversations: Sequence[str], late: timedelta) -> None:
    """Start these prospects so that their first nudge fell due `late` ago (real time)."""
    clock_of(services).set(datetime.now(UTC) - 24 * H - late)
    await start(services, *conversations)


async def sent(redis: Redis) -> list[dict[str, str]]:
    return [json.loads(entry) for entry in await redis.lrange("test:sent", 0, -1)]


async def settled(redis: Redis) -> bool:
    """No timer due now or claimed, nothing left in the outbox: every due item was handled,
    acked and its message delivered."""
    due_now = sum(
        [await redis.zcount(keys.timers_due(s), "-inf", time.time()) for s in keys.shards()]
    )
    idle = due_now == 0 and await sharded.total(redis.zcard, keys.timers_processing) == 0
    return idle and await sharded.total(redis.xlen, keys.outbox) == 0


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float = 300) -> None:
    """Poll `check` until it holds; `seconds` only bounds a test that would otherwise hang."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not done within {seconds}s"
        await asyncio.sleep(0.05)


async def _events(redis: Redis) -> list[DomainEvent]:
    return [DomainEvent.from_fields(f) for _, f in await sharded.entries(redis, keys.events)]


async def nudged(redis: Redis) -> list[str]:
    entries = await sharded.entries(redis, keys.events)
    return [f["conversation"] for _, f in entries if f["name"] == "nudged"]


async def test_two_worker_processes_send_each_of_1200_nudges_once(
    services: Services, processes: Processes
) -> None:
    prospects = [f"telegram:{n}" for n in range(1200)]
    await due_now(services, prospects, late=H)
    # Neither worker dies here, so no lease needs to run out: a long one keeps a worker that
    # the busy machine holds up from being taken for dead (which would allow a second send).
    for _ in range(2):
        processes.start(LEASE_SECONDS="600")

    await wait_until(lambda: settled(services.redis))
    messages = await sent(services.redis)

    assert sorted(m["conversation"] for m in messages) == sorted(prospects)  # each once
    assert {m["text"].splitlines()[0] for m in messages} == {"Still keen, Alex?"}
    assert sorted(await nudged(services.redis)) == sorted(prospects)
    assert processes.stop_all() == [0, 0]  # SIGTERM: a clean stop


async def test_a_killed_workers_batch_is_sent_by_the_other_after_its_lease(
    services: Services, processes: Processes
) -> None:
    prospects = [f"telegram:{n}" for n in range(300)]
    await due_now(services, prospects, late=H)
    doomed = processes.start(HANG_AFTER="20")  # its 20th send never returns

    await wait_until(lambda: _length(services.redis, 20))  # its 20th send hangs from now on
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    survivor = processes.start()
    await wait_until(lambda: settled(services.redis))
    messages = await sent(services.redis)

    conversations = [m["conversation"] for m in messages]
    assert sorted(set(conversations)) == sorted(prospects)  # none lost
    # a message goes twice only if it was in flight when the worker died (sent, its delivery
    # record not yet written): at most once per prospect, at most a round's worth in all
    assert max(conversations.count(c) for c in prospects) <= 2
    assert len(conversations) - len(prospects) <= 50
    assert survivor.poll() is None
    assert sorted(await nudged(services.redis)) == sorted(prospects)


async def test_nudges_due_while_every_worker_was_down_are_sent_or_skipped_when_stale(
    services: Services, processes: Processes
) -> None:
    fresh = [f"telegram:fresh{n}" for n in range(50)]
    stale = [f"telegram:stale{n}" for n in range(50)]
    await due_now(services, fresh, late=11 * H)  # stale_after is 12h
    await due_now(services, stale, late=13 * H)
    processes.start()

    await wait_until(lambda: settled(services.redis))
    messages = await sent(services.redis)

    assert sorted(m["conversation"] for m in messages) == sorted(fresh)
    entries = await sharded.entries(services.redis, keys.events)
    skipped = [f for _, f in entries if f["name"] == "follow_up_skipped"]
    assert sorted(f["conversation"] for f in skipped) == sorted(stale)
    assert all(json.loads(f["data"])["seq"] == "1" for f in skipped)
    pending = await sharded.total(services.redis.zcard, keys.timers_due)
    assert pending == 100  # each one's next nudge is on


async def _length(redis: Redis, n: int) -> bool:
    return int(await redis.llen("test:sent")) >= n


async def test_ladder_worker_sends_nudges_on_telegram_and_alerts_on_slack(
    services: Services, processes: Processes
) -> None:
    clock = clock_of(services)
    now = datetime.now(UTC)
    clock.set(now - 97 * H)
    await start(services, "telegram:43")  # nudged twice already, its drop fell due an hour ago
    await Worker(services.conversations, {"telegram": Recorder(clock)}, clock).fast_forward(
        clock, now - 2 * H
    )
    clock.set(now - 25 * H)
    await start(services, "telegram:42")  # its first nudge fell due an hour ago
    with FakeTelegram() as telegram, FakeSlack() as slack:
        env = {"TELEGRAM_API_URL": telegram.url, "SLACK_WEBHOOK_URL": slack.webhook_url}
        processes.start("-m", "bot.cli", "worker", TELEGRAM_TOKEN=TOKEN, **env)
        try:
            [nudge] = await telegram.wait_messages(42, 1, seconds=120)
            await telegram.wait_for(lambda: bool(slack.webhook_posts()), 120, "the Slack alert")
        finally:
            assert processes.stop_all() == [0]  # SIGTERM: a clean stop

    assert nudge.text.startswith("Still keen, Alex?")
    assert telegram.messages(43) == []  # the drop says nothing to the prospect
    [alert] = slack.webhook_posts()
    assert "dropped" in json.dumps(alert)
    assert await sharded.total(services.redis.zcard, keys.timers_processing) == 0


async def test_a_nudge_whose_worker_was_killed_while_sending_arrives_once(
    services: Services, processes: Processes
) -> None:
    await due_now(services, ["telegram:42"], late=H)
    with FakeTelegram() as telegram:
        env = {"TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_URL": telegram.url}
        arrived = telegram.hold("sendMessage")  # the nudge's send stalls: kill the sender then
        doomed = processes.start("-m", "bot.cli", "worker", **env)
        assert await asyncio.to_thread(arrived.wait, 60)
        assert await nudged(services.redis) == ["telegram:42"]  # the step is committed
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        telegram.release("sendMessage", process=False)  # that request never reached Telegram
        assert telegram.messages(42) == []
        processes.start("-m", "bot.cli", "worker", **env)
        [nudge] = await telegram.wait_messages(42, 1, seconds=60)
        await wait_until(lambda: settled(services.redis))

    assert nudge.text.startswith("Still keen, Alex?")
    assert len(telegram.messages(42)) == 1
    assert await nudged(services.redis) == ["telegram:42"]


async def test_telegram_and_slack_down_for_most_of_a_day_lose_nothing_and_post_once(
    redis: Redis, flows: Path
) -> None:
    with FakeTelegram() as telegram, FakeSlack() as slack:
        settings = replace(
            Settings.from_env(), telegram_token=TOKEN, telegram_api_url=telegram.url,
            slack_webhook_url=slack.webhook_url, slack_bot_token=None, secret="test-secret",
            public_url=None, telegram_chat_rate=1000.0, telegram_bot_rate=1000.0,
        )  # fmt: skip
        clock = ManualClock(T0)
        services = await build(settings, clock=clock, redis=redis, paths=[flows / "followups.yaml"])
        channel = TelegramChannel.from_services(services)
        channel.sender.attempts = 1  # each outbox attempt is one call: the outbox retries
        worker = Worker(services.conversations, services.senders, clock, slack=services.slack)
        await start(services, "telegram:42")

        async def hours(count: float) -> None:
            for _ in range(int(count * 12)):  # a worker round every 5 minutes
                clock.advance(timedelta(minutes=5))
                await worker.tick()

        await hours(23)
        telegram.fail_next("sendMessage", times=10**6, error_code=502, retry_after=None,
                           description="Bad Gateway")  # fmt: skip
        await hours(20)  # the first nudge falls due at 24h, into the outage
        assert telegram.messages(42) == []
        telegram.recover("sendMessage")
        await hours(52)
        slack.fail_next("webhook", 503, times=10**6, error="service unavailable")
        await hours(20)  # the drop (and its alert) at 96h, into Slack's outage
        assert slack.webhook_posts() == []
        slack.recover("webhook")
        await hours(1)
        await channel.sender.aclose()

    said = [m.text.splitlines()[0] for m in telegram.messages(42)]
    assert said == ["Still keen, Alex?", "Last call, Alex!"]
    [alert] = slack.webhook_posts()
    assert "dropped" in json.dumps(alert)
    assert await Outbox(redis).dead_count() == 0 and await Outbox(redis).backlog() == 0
