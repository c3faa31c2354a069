"""The outbox consumer against a real redis-server: delivery, backoff, dead letters, rate limits,
several consumers, a consumer that vanished. The handler is the port the outbox delivers to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from domain.clock import ManualClock
from domain.model import Conversation
from storage import keys
from storage.base import Committed, Lane, OutboxItem, StepWrite
from storage.connect import connect
from storage.outbox import (
    GROUP,
    Outbox,
    OutboxPolicy,
    RetryLater,
    Undeliverable,
    deliver_outbox_once,
)
from storage.redis import RedisConversationStore
from tests import sharded
from tests.redis_server import RedisServer

FAST = OutboxPolicy(max_attempts=3, backoff=0.05, max_backoff=0.2, lease=0.4, batch=10)


class Receiver:
    """Records what it was given; fails the first `fail` calls per key with `error`."""

    def __init__(self, fail: int = 0, error: Exception | None = None, delay: float = 0) -> None:
        self.fail = fail
        self.error = error or ConnectionError("receiver down")
        self.delay = delay
        self.calls: list[tuple[str, float]] = []
        self.delivered: list[OutboxItem] = []
        self.called = asyncio.Event()

    async def __call__(self, item: OutboxItem) -> None:
        self.calls.append((item.key, time.monotonic()))
        self.called.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if sum(1 for key, _ in self.calls if key == item.key) <= self.fail:
            raise self.error
        self.delivered.append(item)


async def add(redis: Redis, key: str, kind: str = "alert", body: str = '{"n":1}') -> str:
    """An item about no conversation, in shard 0's Stream."""
    return str(await redis.xadd(keys.outbox(0), {"kind": kind, "key": key, "body": body}))


async def drain(outbox: Outbox, handler: Receiver, until: float = 120) -> None:
    """Run passes until nothing is left in the outbox (`until` seconds only bound a hang)."""
    deadline = time.monotonic() + until
    while await outbox.backlog() and time.monotonic() < deadline:
        await outbox.deliver_once(handler)
        await asyncio.sleep(0.01)


async def test_an_item_is_delivered_acknowledged_and_marked(redis: Redis) -> None:
    await add(redis, "k1", body='{"hello":"sales"}')
    receiver = Receiver()
    assert await deliver_outbox_once(redis, receiver, "w1", FAST) == 1
    assert receiver.delivered == [OutboxItem("alert", "k1", '{"hello":"sales"}')]
    assert await redis.xlen(keys.outbox(0)) == 0
    assert await redis.exists(keys.delivered(0, "k1"))
    assert (await redis.xpending(keys.outbox(0), GROUP))["pending"] == 0
    assert await deliver_outbox_once(redis, receiver, "w1", FAST) == 0


async def test_items_added_before_the_group_exists_are_not_skipped(redis: Redis) -> None:
    for n in range(3):
        await add(redis, f"early{n}")
    receiver = Receiver()
    assert await Outbox(redis, "w1", FAST).deliver_once(receiver) == 3


async def test_a_failure_is_retried_after_the_backoff_then_delivered(redis: Redis) -> None:
    await add(redis, "k1")
    receiver = Receiver(fail=2)
    outbox = Outbox(redis, "w1", FAST)
    await drain(outbox, receiver)
    times = [at for _, at in receiver.calls]
    assert len(times) == 3 and len(receiver.delivered) == 1
    assert times[1] - times[0] >= 0.05  # first retry after `backoff`
    assert times[2] - times[1] >= 0.1  # then doubled
    assert not await redis.hlen(keys.outbox_retries(0))


async def test_a_failure_is_not_retried_before_its_backoff_is_over(redis: Redis) -> None:
    await add(redis, "k1")
    receiver = Receiver(fail=1)
    outbox = Outbox(redis, "w1", replace(FAST, backoff=600, max_backoff=600))  # not over here
    assert await outbox.deliver_once(receiver) == 0
    assert await outbox.deliver_once(receiver) == 0
    assert len(receiver.calls) == 1


async def test_after_max_attempts_the_item_goes_to_dead_letters(redis: Redis) -> None:
    await add(redis, "k1", body='{"x":1}')
    receiver = Receiver(fail=99)
    outbox = Outbox(redis, "w1", FAST)
    await drain(outbox, receiver)
    assert len(receiver.calls) == FAST.max_attempts
    assert await outbox.dead_count() == 1
    [dead] = await outbox.dead_letters()
    assert dead.item == OutboxItem("alert", "k1", '{"x":1}')
    assert dead.attempts == 3 and "receiver down" in dead.error
    assert await outbox.backlog() == 0 and not await redis.hlen(keys.outbox_retries(0))


async def test_an_undeliverable_item_is_dead_lettered_at_once(redis: Redis) -> None:
    await add(redis, "k1")
    outbox = Outbox(redis, "w1", FAST)
    receiver = Receiver(fail=1, error=Undeliverable("no Slack channel configured"))
    assert await outbox.deliver_once(receiver) == 0
    [dead] = await outbox.dead_letters()
    assert dead.error == "no Slack channel configured" and dead.attempts == 1
    assert len(receiver.calls) == 1


async def test_a_malformed_entry_is_dead_lettered_not_lost(redis: Redis) -> None:
    await redis.xadd(keys.outbox(0), {"kind": "alert"})
    outbox = Outbox(redis, "w1", FAST)
    receiver = Receiver()
    assert await outbox.deliver_once(receiver) == 0
    [dead] = await outbox.dead_letters()
    assert "malformed outbox entry" in dead.error and dead.item.kind == "alert"
    assert receiver.calls == []


async def rate_limited(redis: Redis, seconds: float) -> tuple[Outbox, Receiver]:
    """Two alerts and a webhook; the receiver's first answer for each kind is "wait `seconds`"."""
    await add(redis, "a1", kind="alert")
    await add(redis, "a2", kind="alert")
    await add(redis, "w1", kind="webhook")
    receiver = Receiver(fail=1, error=RetryLater("429 from Slack", seconds))
    one_at_a_time = OutboxPolicy(max_attempts=1, backoff=0.05, lease=600, concurrency=1)
    outbox = Outbox(redis, "w1", one_at_a_time)
    assert await outbox.deliver_once(receiver) == 0  # a1 limited -> a2 waits too; w1 limited
    assert [key for key, _ in receiver.calls] == ["a1", "w1"]
    return outbox, receiver


async def test_rate_limit_pauses_the_kind_for_every_consumer(redis: Redis) -> None:
    outbox, receiver = await rate_limited(redis, 600)  # certainly not over in this test
    assert 0 < await redis.pttl(keys.paused(0, "alert")) <= 600_000  # shared through Redis
    await add(redis, "a3", kind="alert")
    assert await Outbox(redis, "w2").deliver_once(receiver) == 0  # another consumer waits too
    assert await outbox.deliver_once(receiver) == 0
    assert [key for key, _ in receiver.calls] == ["a1", "w1"]


async def test_rate_limit_is_waited_out_without_counting_a_failure(redis: Redis) -> None:
    outbox, receiver = await rate_limited(redis, 0.3)
    await drain(outbox, receiver)
    # max_attempts=1, yet nothing was dead-lettered: waiting on a rate limit is not a failure
    assert sorted(i.key for i in receiver.delivered) == ["a1", "a2", "w1"]
    assert await outbox.dead_count() == 0
    first_a1, second_a1 = [at for key, at in receiver.calls if key == "a1"]
    assert second_a1 - first_a1 >= 0.3


async def test_two_consumers_deliver_each_item_exactly_once(redis: Redis, redis_url: str) -> None:
    for n in range(200):
        await add(redis, f"item{n}")
    receiver = Receiver(delay=0.001)
    other = connect(redis_url)
    # Both stay alive, so no lease needs to run out: a long one keeps a consumer that the busy
    # machine holds up from being taken for dead (which would allow a second delivery).
    alive = replace(FAST, lease=600)
    try:
        a, b = Outbox(redis, "a", alive), Outbox(other, "b", alive)
        await asyncio.gather(*(drain(o, receiver) for o in (a, b)))
    finally:
        await other.aclose()
    keys_delivered = [item.key for item in receiver.delivered]
    assert sorted(keys_delivered) == sorted(f"item{n}" for n in range(200))  # each once


async def killed_mid_delivery(outbox: Outbox, hang: Receiver) -> None:
    """Run a pass whose handler hangs, and cancel it once the handler started: the consumer
    dies holding the item, as a killed worker would."""
    hang.called.clear()
    task = asyncio.create_task(outbox.deliver_once(hang))
    await asyncio.wait_for(hang.called.wait(), 60)
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def test_an_item_of_a_vanished_consumer_is_taken_over_after_the_lease(redis: Redis) -> None:
    await add(redis, "k1")
    await killed_mid_delivery(Outbox(redis, "gone", FAST), Receiver(delay=10))
    receiver = Receiver()
    patient = Outbox(redis, "alive", replace(FAST, lease=600))  # certainly within its lease
    assert await patient.deliver_once(receiver) == 0  # left alone
    survivor = Outbox(redis, "alive", FAST)
    await asyncio.sleep(FAST.lease)
    assert await survivor.deliver_once(receiver) == 1
    assert [i.key for i in receiver.delivered] == ["k1"]


async def test_a_poison_item_that_kills_consumers_ends_in_dead_letters(redis: Redis) -> None:
    await add(redis, "poison")
    hang = Receiver(delay=10)
    for n in range(FAST.max_attempts):
        await killed_mid_delivery(Outbox(redis, f"victim{n}", FAST), hang)
        await asyncio.sleep(FAST.lease)
    outbox = Outbox(redis, "last", FAST)
    assert await outbox.deliver_once(hang) == 0
    assert len(hang.calls) == FAST.max_attempts
    [dead] = await outbox.dead_letters()
    assert "consumer lost" in dead.error and dead.attempts == FAST.max_attempts


async def test_a_redelivered_item_already_delivered_is_only_acknowledged(redis: Redis) -> None:
    """A consumer delivered and marked the item, then died before its XACK: the state that
    crash leaves behind is built here, and the next consumer must not deliver again."""
    entry = await add(redis, "k1")
    await Outbox(redis, "x", FAST).ensure_group()
    await redis.xreadgroup(GROUP, "crashed", {keys.outbox(0): ">"})
    await redis.set(keys.delivered(0, "k1"), entry)
    await asyncio.sleep(FAST.lease)
    receiver = Receiver()
    assert await Outbox(redis, "next", FAST).deliver_once(receiver) == 0
    assert receiver.calls == []
    assert await redis.xlen(keys.outbox(0)) == 0
    assert (await redis.xpending(keys.outbox(0), GROUP))["pending"] == 0


async def test_a_slow_handler_is_cut_off_at_half_the_lease_and_retried(redis: Redis) -> None:
    await add(redis, "k1")
    outbox = Outbox(redis, "w1", FAST)
    slow = Receiver(delay=FAST.lease)
    assert await outbox.deliver_once(slow) == 0
    info = await redis.hget(keys.outbox_retries(0), (await redis.xrange(keys.outbox(0)))[0][0])
    assert info is not None and "TimeoutError" in info
    await drain(outbox, Receiver())
    assert await outbox.backlog() == 0


async def test_pending_retries_beyond_one_page_are_all_retried(redis: Redis) -> None:
    policy = OutboxPolicy(max_attempts=5, backoff=0.02, max_backoff=0.02, lease=5, batch=2)
    for n in range(7):
        await add(redis, f"k{n}")
    outbox = Outbox(redis, "w1", policy)
    receiver = Receiver(fail=1)
    await drain(outbox, receiver)
    assert sorted(i.key for i in receiver.delivered) == sorted(f"k{n}" for n in range(7))


async def test_run_delivers_until_stopped(redis: Redis) -> None:
    outbox = Outbox(redis, "w1", FAST)
    receiver = Receiver()
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(receiver, stop, idle=0.01))
    await add(redis, "late")
    await until(lambda: bool(receiver.delivered))
    stop.set()
    await asyncio.wait_for(task, 60)
    assert [i.key for i in receiver.delivered] == ["late"]


async def test_a_deleted_outbox_stream_is_recreated(redis: Redis) -> None:
    outbox = Outbox(redis, "w1", FAST)
    receiver = Receiver()
    await add(redis, "before")
    assert await outbox.deliver_once(receiver) == 1
    await redis.delete(keys.outbox(0))  # e.g. an operator flushed it
    await add(redis, "after")
    assert await outbox.deliver_once(receiver) == 1
    assert [i.key for i in receiver.delivered] == ["before", "after"]


async def test_run_waits_out_a_redis_outage(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = connect(own_redis.url)
    receiver = Receiver()
    stop = asyncio.Event()
    task = asyncio.create_task(Outbox(client, "w1", FAST).run(receiver, stop, idle=0.02))
    try:
        await add(client, "before")
        await until(lambda: len(receiver.delivered) == 1)
        await asyncio.to_thread(own_redis.stop)
        await until(lambda: "Redis unavailable" in caplog.text)
        await asyncio.to_thread(own_redis.start)
        await add(client, "after")
        await until(lambda: len(receiver.delivered) == 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await client.aclose()
    assert [i.key for i in receiver.delivered] == ["before", "after"]
    assert not task.exception()


async def until(condition: Callable[[], bool], within: float = 120) -> None:
    """Poll `condition` until it holds; `within` only bounds a test that would otherwise hang."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# --- lanes, long outages, dead letters ------------------------------------------------------


async def step(redis: Redis, conversation: str, *keys_: str, hold: str | None = None) -> Committed:
    """Commit a step of `conversation` whose effects are prospect messages `keys_`."""
    store = RedisConversationStore(redis)
    conv = await store.load(conversation) or Conversation(id=conversation, flow="f", version=1)
    items = tuple(
        OutboxItem("message:test", key, '{"n":1}', conversation, Lane.PROSPECT) for key in keys_
    )
    return await store.commit(StepWrite(conversation=conv, outbox=items, hold=hold))


async def test_a_conversations_messages_go_in_order_across_retries(redis: Redis) -> None:
    clock = ManualClock()
    await step(redis, "c1", "m1", "m2")
    await step(redis, "c1", "m3")
    await step(redis, "c2", "n1")
    receiver = Receiver(fail=2)  # every item fails twice first
    outbox = Outbox(redis, "w1", OutboxPolicy(backoff=1, max_backoff=1, batch=2), clock=clock)
    for _ in range(40):
        await outbox.deliver_once(receiver)
        clock.advance(timedelta(seconds=1))
    assert [i.key for i in receiver.delivered if i.conversation == "c1"] == ["m1", "m2", "m3"]
    assert [i.key for i in receiver.delivered if i.conversation == "c2"] == ["n1"]
    order = [key for key, _ in receiver.calls if key != "n1"]
    assert order == ["m1", "m1", "m1", "m2", "m2", "m2", "m3", "m3", "m3"]  # none overtook
    assert await outbox.backlog() == 0 and not await redis.exists(keys.lane("c1", Lane.PROSPECT))


async def test_a_held_conversation_is_left_to_its_holder_until_the_hold_ends(redis: Redis) -> None:
    committed = await step(redis, "c1", "m1", hold="web-1")
    assert committed.held
    receiver = Receiver()
    worker = Outbox(redis, "w1", FAST)
    assert await worker.deliver_once(receiver) == 0  # the holder sends it
    web = Outbox(redis, "web-1", FAST)
    assert await web.deliver_now(committed.outbox, receiver) == 1
    assert not await redis.exists(keys.hold("c1"))
    await drain(worker, receiver)
    assert [i.key for i in receiver.delivered] == ["m1"]  # once


async def test_a_step_behind_an_undelivered_message_is_not_held(redis: Redis) -> None:
    await step(redis, "c1", "m1")  # waits in the outbox (its sender failed, say)
    later = await step(redis, "c1", "m2", hold="web-1")
    assert not later.held  # so the web process does not send m2 before m1
    receiver = Receiver()
    await drain(Outbox(redis, "w1", FAST), receiver)
    assert [i.key for i in receiver.delivered] == ["m1", "m2"]


async def test_a_day_long_outage_loses_nothing_and_delivers_once(redis: Redis) -> None:
    clock = ManualClock()
    await add(redis, "k1")
    receiver = Receiver(fail=10_000)
    outbox = Outbox(redis, "w1", OutboxPolicy(), clock=clock)
    for _ in range(23 * 12):  # 23 hours, a pass every 5 minutes
        await outbox.deliver_once(receiver)
        clock.advance(timedelta(minutes=5))
    assert await outbox.dead_count() == 0 and await outbox.backlog() == 1
    assert len(receiver.calls) > 250  # retried all along, every 5 minutes at most
    receiver.fail = 0
    await outbox.deliver_once(receiver)
    assert [i.key for i in receiver.delivered] == ["k1"]
    assert await outbox.backlog() == 0


async def test_after_a_day_of_failures_an_item_is_dead_lettered_then_replayed(redis: Redis) -> None:
    clock = ManualClock()
    committed = await step(redis, "c1", "m1")
    receiver = Receiver(fail=10_000)
    outbox = Outbox(redis, "w1", OutboxPolicy(), clock=clock)
    for _ in range(25 * 12):
        await outbox.deliver_once(receiver)
        clock.advance(timedelta(minutes=5))
    [dead] = await outbox.dead_letters()
    assert dead.item == committed.outbox[0][1] and "receiver down" in dead.error
    assert await outbox.backlog() == 0 and not await redis.exists(keys.lane("c1", Lane.PROSPECT))
    await step(redis, "c1", "m2")  # the prospect went on meanwhile

    receiver.fail = 0
    assert await outbox.replay([dead.id]) == 1
    await drain(outbox, receiver)
    assert [i.key for i in receiver.delivered] == ["m2", "m1"]  # a replay joins the lane's end
    assert await outbox.dead_count() == 0


async def test_dead_letters_can_be_dropped(redis: Redis) -> None:
    await add(redis, "k1")
    outbox = Outbox(redis, "w1", FAST)
    await outbox.deliver_once(Receiver(fail=1, error=Undeliverable("never")))
    [dead] = await outbox.dead_letters()
    assert await outbox.drop([dead.id, "0-1"]) == 1
    assert await outbox.dead_count() == 0 and await outbox.replay([dead.id]) == 0


class Stalls(Receiver):
    """A consumer's receiver whose first send outlives the consumer's lease: meanwhile (by the
    shared clock) the lease runs out and another consumer takes the items over and delivers
    them to `receiver`."""

    def __init__(self, clock: ManualClock, other: Outbox, receiver: Receiver) -> None:
        super().__init__()
        self.clock, self.other, self.receiver = clock, other, receiver

    async def __call__(self, item: OutboxItem) -> None:
        if not self.calls:
            self.clock.advance(timedelta(seconds=LEASED.lease + 1))
            await self.other.deliver_once(self.receiver)
        await super().__call__(item)


LEASED = OutboxPolicy(lease=60, batch=10, concurrency=1)


@pytest.mark.parametrize("lane", [False, True], ids=["items alone", "one conversation's lane"])
async def test_a_batch_that_outlives_its_lease_sends_none_of_its_later_items(
    redis: Redis, lane: bool
) -> None:
    """The stalled consumer may still finish the send it was in (the item in flight goes
    twice); every later item of its batch goes once, from the consumer that took it over."""
    clock = ManualClock()
    wanted = [f"k{n}" for n in range(5)]
    if lane:
        await step(redis, "c1", *wanted)
    else:
        for key in wanted:
            await add(redis, key)
    late = Receiver()
    taker = Outbox(redis, "taker", LEASED, lease_clock=clock)
    stalled = Stalls(clock, taker, late)
    await Outbox(redis, "stalled", LEASED, lease_clock=clock).deliver_once(stalled)
    assert [i.key for i in stalled.delivered] == ["k0"]  # in flight when its lease ran out
    assert [i.key for i in late.delivered] == wanted  # the taker's: all of them, in order
    assert await sharded.total(redis.xlen, keys.outbox) == 0
