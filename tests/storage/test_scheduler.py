"""The timer queue on a real redis-server: claim, ack and recover, with timers written the way
the conversation store writes them (its commit)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from domain.model import Conversation, Timer, iso
from storage import keys
from storage.base import StepWrite
from storage.connect import connect
from storage.redis import RedisConversationStore
from storage.scheduler import Ack, RedisScheduler

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def due(conv: str) -> str:
    """The queue of the shard that holds `conv`'s timers."""
    return keys.timers_due(keys.shard_of(conv))


def processing(conv: str) -> str:
    return keys.timers_processing(keys.shard_of(conv))


def bodies(conv: str) -> str:
    return keys.timers_body(keys.shard_of(conv))


async def claimed(redis: Redis) -> int:
    """Timers claimed and not acknowledged, in every shard."""
    return sum([await redis.zcard(keys.timers_processing(shard)) for shard in keys.shards()])


def nudge(conv: str, due: datetime, seq: int = 1) -> Timer:
    return Timer(
        id=f"{conv}:nudge", conversation=conv, kind="nudge", due=iso(due), step="s", seq=seq
    )


async def schedule(redis: Redis, *timers: Timer, cancel: tuple[str, ...] = ()) -> None:
    """Commit a step that schedules `timers` for their conversation, as the service does."""
    store = RedisConversationStore(redis)
    conv_id = timers[0].conversation if timers else cancel[0].rsplit(":", 1)[0]
    conv = await store.load(conv_id) or Conversation(id=conv_id, flow="f", version=1)
    await store.commit(StepWrite(conversation=conv, schedule=timers, cancel=cancel))


async def test_claim_takes_due_timers_earliest_first_up_to_the_limit(redis: Redis) -> None:
    for n, minutes in enumerate([30, 10, 20, 90]):
        await schedule(redis, nudge(f"telegram:{n}", T0 + timedelta(minutes=minutes)))
    scheduler = RedisScheduler(redis)

    first = await scheduler.claim(T0 + timedelta(minutes=60), 2, LEASE)
    rest = await scheduler.claim(T0 + timedelta(minutes=60), 10, LEASE)

    assert [c.timer.conversation for c in first] == ["telegram:1", "telegram:2"]
    assert [c.timer.conversation for c in rest] == ["telegram:0"]
    assert first[0].timer == nudge("telegram:1", T0 + timedelta(minutes=10))
    assert await RedisScheduler(redis).pending() == 1
    assert await redis.zrange(due("telegram:3"), 0, -1) == ["telegram:3:nudge"]
    assert await claimed(redis) == 3
    assert await scheduler.claim(T0 + timedelta(minutes=60), 10, LEASE) == []
    assert await scheduler.claim(T0, 0, LEASE) == []


async def test_concurrent_claimers_split_the_due_timers_without_overlap(
    redis: Redis, redis_url: str
) -> None:
    timers = [nudge(f"telegram:{n}", T0 + timedelta(seconds=n % 50)) for n in range(600)]
    async with redis.pipeline(transaction=False) as pipe:
        for timer in timers:  # the same keys the store's commit writes
            score = datetime.fromisoformat(timer.due).timestamp()
            pipe.zadd(due(timer.conversation), {timer.id: score})
            pipe.hset(bodies(timer.conversation), timer.id, timer.to_json())
        await pipe.execute()
    clients = [connect(redis_url) for _ in range(4)]

    async def drain(client: Redis) -> list[str]:
        scheduler, got = RedisScheduler(client), []
        while batch := await scheduler.claim(T0 + timedelta(minutes=1), 7, LEASE):
            got.extend(c.timer.id for c in batch)
            await asyncio.sleep(0)
        return got

    try:
        results = await asyncio.gather(*(drain(c) for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    claimed = [tid for got in results for tid in got]
    assert sorted(claimed) == sorted(t.id for t in timers)  # none lost, none twice


async def test_ack_deletes_the_handled_timer_everywhere(redis: Redis) -> None:
    await schedule(redis, nudge("telegram:1", T0))
    scheduler = RedisScheduler(redis)
    [claim] = await scheduler.claim(T0, 10, LEASE)

    assert await scheduler.ack(claim) is Ack.DONE
    assert await redis.zcard(processing("telegram:1")) == 0
    assert await redis.hlen(bodies("telegram:1")) == 0
    assert await redis.smembers(keys.conversation_timers("telegram:1")) == set()


async def test_ack_keeps_the_timer_scheduled_again_while_claimed(redis: Redis) -> None:
    await schedule(redis, nudge("telegram:1", T0))
    scheduler = RedisScheduler(redis)
    [claim] = await scheduler.claim(T0, 10, LEASE)
    following = nudge("telegram:1", T0 + timedelta(days=1), seq=2)
    await schedule(redis, following)  # the engine's next nudge reuses the id

    assert await scheduler.ack(claim) is Ack.CHANGED
    assert await redis.hget(bodies("telegram:1"), following.id) == following.to_json()
    due_at = await redis.zscore(due("telegram:1"), following.id)
    assert due_at == (T0 + timedelta(days=1)).timestamp()
    assert await redis.smembers(keys.conversation_timers("telegram:1")) == {following.id}
    assert await redis.zcard(processing("telegram:1")) == 0
    [again] = await scheduler.claim(T0 + timedelta(days=1), 10, LEASE)
    assert again.timer == following


async def test_ack_of_a_timer_cancelled_while_claimed_leaves_nothing_behind(redis: Redis) -> None:
    timer = nudge("telegram:1", T0)
    await schedule(redis, timer)
    scheduler = RedisScheduler(redis)
    [claim] = await scheduler.claim(T0, 10, LEASE)
    await schedule(redis, cancel=(timer.id,))

    assert await scheduler.ack(claim) is Ack.CHANGED
    for key in (due("telegram:1"), processing("telegram:1")):
        assert await redis.zcard(key) == 0
    assert await redis.hlen(bodies("telegram:1")) == 0


async def test_recover_puts_back_claims_whose_lease_ran_out(redis: Redis) -> None:
    await schedule(redis, nudge("telegram:1", T0))
    await schedule(redis, nudge("telegram:2", T0))
    scheduler = RedisScheduler(redis)
    await scheduler.claim(T0, 1, LEASE)  # a worker that dies holding telegram:1
    await scheduler.claim(T0, 1, timedelta(minutes=5))  # a live one, holding telegram:2

    assert await scheduler.recover(T0 + LEASE - timedelta(seconds=1)) == 0
    assert await scheduler.recover(T0 + LEASE) == 1
    assert await claimed(redis) == 1
    assert await redis.zrange(processing("telegram:2"), 0, -1) == ["telegram:2:nudge"]
    [again] = await scheduler.claim(T0 + LEASE, 10, LEASE)
    assert again.timer == nudge("telegram:1", T0)
    assert await scheduler.ack(again) is Ack.DONE


async def test_recover_skips_cancelled_timers_and_keeps_rescheduled_due_times(
    redis: Redis,
) -> None:
    cancelled, moved = nudge("telegram:1", T0), nudge("telegram:2", T0)
    await schedule(redis, cancelled)
    await schedule(redis, moved)
    scheduler = RedisScheduler(redis)
    await scheduler.claim(T0, 10, LEASE)
    await schedule(redis, cancel=(cancelled.id,))
    await schedule(redis, nudge("telegram:2", T0 + timedelta(days=1), seq=2))

    assert await scheduler.recover(T0 + timedelta(hours=1)) == 0
    assert await claimed(redis) == 0
    assert await RedisScheduler(redis).pending() == 1
    assert await redis.zrange(due(moved.conversation), 0, -1, withscores=True) == [
        (moved.id, (T0 + timedelta(days=1)).timestamp())
    ]


async def test_a_worker_whose_lease_ran_out_cannot_ack_the_next_holders_claim(
    redis: Redis,
) -> None:
    await schedule(redis, nudge("telegram:1", T0))
    scheduler = RedisScheduler(redis)
    [slow] = await scheduler.claim(T0, 10, LEASE)
    await scheduler.recover(T0 + LEASE)
    [other] = await scheduler.claim(T0 + LEASE, 10, LEASE)

    assert await scheduler.ack(slow) is Ack.LOST
    assert await redis.zrange(processing("telegram:1"), 0, -1) == ["telegram:1:nudge"]
    assert await redis.hexists(bodies("telegram:1"), "telegram:1:nudge")
    assert await scheduler.ack(other) is Ack.DONE
    assert await redis.hlen(bodies("telegram:1")) == 0


async def test_next_due_is_the_earliest_queued_timer(redis: Redis) -> None:
    scheduler = RedisScheduler(redis)
    assert await scheduler.next_due() is None
    await schedule(redis, nudge("telegram:1", T0 + timedelta(hours=2)))
    await schedule(redis, nudge("telegram:2", T0 + timedelta(hours=1)))

    assert await scheduler.next_due() == T0 + timedelta(hours=1)
    await scheduler.claim(T0 + timedelta(hours=1), 10, LEASE)
    assert await scheduler.next_due() == T0 + timedelta(hours=2)
