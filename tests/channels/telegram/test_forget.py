"""/forget through the Telegram webhook while the Bot API is down: the question and the answer
wait in the outbox like every other message, and each arrives once when Telegram is back."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from bot.channels.telegram.sender import TelegramSender
from bot.texts import Builtin, text
from bot.worker import Worker
from storage import keys
from tests import sharded
from tests.channels.conftest import CONV, stored, telegram_settings, web_process
from tests.fakes.telegram_api import FakeTelegram

FORGET_ASK = text(Builtin.FORGET_ASK, "en")
FORGOTTEN = text(Builtin.FORGOTTEN, "en")

DOWN = 10**6  # failures: Telegram stays down until `recover`


def texts(api: FakeTelegram) -> list[str]:
    return [m.text for m in api.messages(42)]


async def test_forget_while_telegram_is_down_asks_and_answers_once_it_is_back(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        sender = web.services.senders["telegram"]
        assert isinstance(sender, TelegramSender)
        sender.attempts = 1
        worker = Worker(web.services.conversations, web.services.senders, web.services.clock)
        assert await web.post(ada.text("/start")) == 200

        telegram_api.fail_next("sendMessage", DOWN, error_code=502, retry_after=None)
        forget = ada.text("/forget")
        assert await web.post(forget) == 200  # stored: Telegram need not send it again
        assert await web.post(forget) == 200  # and if it does, nothing more is written
        assert FORGET_ASK not in texts(telegram_api)
        assert await sharded.total(redis.xlen, keys.outbox) == 1
        telegram_api.recover("sendMessage")
        assert await worker.deliver() == 1
        assert texts(telegram_api).count(FORGET_ASK) == 1
        assert [b["text"] for b in ada.last.buttons] == [
            "Yes, erase everything",
            "No, keep it",
        ]

        telegram_api.fail_next("sendMessage", DOWN, error_code=502, retry_after=None)
        yes = ada.press("Yes, erase everything")
        assert await web.post(yes) == 200
        assert await web.post(yes) == 200  # redelivered
        assert await stored(redis) is None  # erased at once, Telegram or not
        assert FORGOTTEN not in texts(telegram_api)
        telegram_api.recover("sendMessage")
        assert await worker.deliver() == 1  # to a prospect no longer stored
        assert await worker.deliver() == 0
    assert texts(telegram_api).count(FORGET_ASK) == 1
    assert texts(telegram_api).count(FORGOTTEN) == 1
    assert ada.last.text == FORGOTTEN
    assert await sharded.total(redis.xlen, keys.outbox) == 0
    assert await redis.keys(f"*{{conv:{CONV}}}*") == []
