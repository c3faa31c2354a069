"""Long-polling mode end to end: `TelegramChannel.poll` (what `ladder run` runs) against the fake
Bot API's getUpdates, with the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import build
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.factory import make_bot
from bot.channels.telegram.polling import poll
from bot.config import Settings
from domain.model import Conversation, Status
from storage import keys
from storage.connect import connect
from tests.channels.conftest import stored, telegram_settings, web_process
from tests.fakes.http import listening_socket
from tests.fakes.telegram_api import FakeTelegram
from tests.redis_server import RedisServer

LONG_POLL = 60  # seconds a getUpdates call may wait for an update


@asynccontextmanager
async def polling(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """A `ladder run`-like process: its own services, polling until the block ends."""
    assert settings.redis_url
    services = await build(settings, redis=connect(settings.redis_url))
    channel = TelegramChannel.from_services(services)
    stop = asyncio.Event()
    task = asyncio.create_task(poll(channel, stop, wait_seconds=LONG_POLL))
    try:
        yield task
    finally:
        stop.set()
        # a pending long poll does not hold up stopping: stopped well before it would end
        await asyncio.wait_for(task, LONG_POLL / 2)
        await channel.sender.aclose()
        await services.redis.aclose()


async def test_a_whole_ladder_by_long_polling(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    telegram_api.push({"update_id": 1, "message": None})  # nothing for us; still confirmed
    sock, url = listening_socket()
    settings = telegram_settings(telegram_api, flows_dir, redis_url, public_url=url)
    ada = telegram_api.prospect(42, "Ada")
    async with polling(settings), web_process(settings, sock) as web:

        async def say(update: dict[str, object], count: int) -> None:
            telegram_api.push(update)
            await telegram_api.wait_messages(42, count)

        await say(ada.text("/start"), 1)
        await say(ada.press("Yes please"), 2)
        await say(ada.press("Sales lead"), 3)
        await say(ada.text("ada@example.com"), 5)
        link = ada.messages()[-2].button("Open the checklist")["url"]
        assert (await web.get(link.removeprefix(url))).status_code == 302
        await telegram_api.wait_messages(42, 6)
        await say(ada.press("No thanks"), 7)
        assert ada.last.text == "Thank you, Ada!"
        await telegram_api.wait_for(lambda: telegram_api.pending_updates() == 0, what="confirm")
    assert telegram_api.calls()[0].method == "deleteWebhook"
    offsets = [int(c.params.get("offset") or 0) for c in telegram_api.calls("getUpdates")]
    assert offsets == sorted(offsets)
    conv = await stored(redis, "telegram:42")
    assert conv is not None and conv.status == Status.COMPLETED
    assert conv.answers["role"] == "Sales lead"


async def test_a_batch_from_many_chats_keeps_each_chats_order(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    prospects = [telegram_api.prospect(chat) for chat in range(1, 6)]
    for prospect in prospects:  # one batch: every chat's /start, then a typed "yes"
        telegram_api.push(prospect.text("/start"))
    for prospect in prospects:
        telegram_api.push(prospect.text("Yes please"))
    async with polling(telegram_settings(telegram_api, flows_dir, redis_url)):
        for prospect in prospects:
            await telegram_api.wait_messages(prospect.chat_id, 2)
    for prospect in prospects:
        assert [m.text for m in prospect.messages()][1] == "What's your role?"


async def test_redis_down_means_the_batch_is_retried_not_lost(
    telegram_api: FakeTelegram, flows_dir: Path, own_redis: RedisServer
) -> None:
    ada = telegram_api.prospect(42)
    settings = telegram_settings(telegram_api, flows_dir, own_redis.url)
    async with polling(settings):
        own_redis.stop()
        telegram_api.push(ada.text("/start"))
        await telegram_api.wait_for(
            lambda: len(telegram_api.calls("getUpdates")) >= 3, what="a failed round"
        )
        assert ada.messages() == []
        assert telegram_api.pending_updates() == 1  # not confirmed
        own_redis.start()
        await telegram_api.wait_messages(42, 1, seconds=20)
        await telegram_api.wait_for(lambda: telegram_api.pending_updates() == 0, 20, "confirm")
    assert len(ada.messages()) == 1


async def test_an_update_that_fails_for_another_reason_is_skipped(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    """A conversation pinned to an unpublished flow must not stall everyone else."""
    ghost = Conversation(id="telegram:1", flow="ghost", version=1, step="welcome")
    await redis.hset(keys.conversation("telegram:1"), mapping={"v": 1, "doc": ghost.to_json()})
    stuck, fine = telegram_api.prospect(1), telegram_api.prospect(2)
    telegram_api.push(stuck.text("hello"))
    telegram_api.push(fine.text("/start"))
    async with polling(telegram_settings(telegram_api, flows_dir, redis_url)):
        await telegram_api.wait_messages(2, 1)
        await telegram_api.wait_for(lambda: telegram_api.pending_updates() == 0, what="confirm")
    assert stuck.messages() == []


async def test_a_redelivered_update_is_processed_once(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    start = ada.text("/start")
    async with polling(telegram_settings(telegram_api, flows_dir, redis_url)):
        telegram_api.push(start)
        await telegram_api.wait_messages(42, 1)
    async with polling(telegram_settings(telegram_api, flows_dir, redis_url)):
        telegram_api.push(start)  # e.g. confirmed too late before a restart
        telegram_api.push(ada.text("/help"))
        await telegram_api.wait_messages(42, 2)
    assert len(ada.messages()) == 2
    assert ada.last.text.startswith("I ask a few quick questions")


async def test_polling_waits_while_a_webhook_is_set_elsewhere(
    telegram_api: FakeTelegram,
    flows_dir: Path,
    redis_url: str,
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = telegram_settings(telegram_api, flows_dir, redis_url)
    ada = telegram_api.prospect(42)
    async with make_bot(settings) as other, polling(settings):  # other: a `ladder serve`
        await telegram_api.wait_for(lambda: bool(telegram_api.calls("getUpdates")), what="a poll")
        await other.set_webhook("https://elsewhere.example.com/telegram/webhook")
        telegram_api.push(ada.text("/start"))  # ends the long poll already waiting
        await telegram_api.wait_messages(42, 1)
        await telegram_api.wait_for(lambda: "polling refused" in caplog.text, what="a 409")
        telegram_api.push(ada.text("/help"))
        await other.delete_webhook()
        await telegram_api.wait_messages(42, 2)
    assert "webhook is active" in caplog.text
