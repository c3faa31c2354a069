"""Where Slack's side of each lead is kept (storage/slack.py), on a real redis-server."""

from __future__ import annotations

from redis.asyncio import Redis

from storage.slack import Posted, RedisSlackRecords


async def test_the_lead_card_and_the_take_over_thread_are_remembered(redis: Redis) -> None:
    records = RedisSlackRecords(redis)
    assert await records.posted("telegram:1") == Posted()
    assert (await records.posted("telegram:1")).thread is None  # no alert yet: nowhere to relay
    await records.card_posted("telegram:1", "C1", "1.0")
    assert (await records.posted("telegram:1")).thread == ("C1", "1.0")
    assert await records.conversation_at("C1", "1.0") == "telegram:1"
    assert await records.conversation_at("C1", "2.0") is None
    await records.card_posted("telegram:1", "C1", "3.0")  # a new card after a deleted one
    await records.taken_over_in("telegram:1", "C1", "1.0")
    posted = await records.posted("telegram:1")
    assert (posted.ts, posted.thread) == ("3.0", ("C1", "1.0"))  # relays stay in the thread


async def test_only_the_first_attempt_of_an_item_is_first(redis: Redis) -> None:
    records = RedisSlackRecords(redis)
    assert await records.first_attempt("k1") and not await records.first_attempt("k1")
    assert await records.first_attempt("k2")


async def test_channel_ids_are_learnt_by_name(redis: Redis) -> None:
    records = RedisSlackRecords(redis)
    assert await records.channel_id("#sales") is None
    await records.remember_channel("#sales", "C0SALES")
    assert await records.channel_id("#sales") == "C0SALES"
