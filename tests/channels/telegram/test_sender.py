"""TelegramSender against the fake Bot API and the real Redis: flood limits, 429 and other
errors, keyboards, tracked links, documents and calendar files; and a follow-up sent by the
worker through it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import icalendar
import pytest
from redis.asyncio import Redis

from bot.app import build
from bot.channels import Sender
from bot.channels.telegram.buttons import OPENED, verify_callback
from bot.channels.telegram.factory import make_bot
from bot.channels.telegram.sender import DeliveryFailed, TelegramSender
from bot.worker import Worker
from domain.clock import ManualClock
from domain.model import (
    Button,
    Conversation,
    LinkButton,
    Press,
    Say,
    SendCalendar,
    SendDocument,
    Start,
)
from storage.connect import connect
from storage.keyboards import RedisKeyboards
from storage.links import LinkStore
from storage.media import RedisMediaFiles
from storage.ratelimit import FloodLimiter, Rate
from tests.channels.conftest import telegram_settings
from tests.fakes.telegram_api import FakeTelegram
from tests.redis_server import RedisServer

CONV = Conversation(id="telegram:42", flow="tg-ladder", version=1, step="welcome")
FAST = Rate(1000.0, burst=1000)


def new_sender(
    api: FakeTelegram,
    redis: Redis,
    tmp_path: Path,
    *,
    public_url: str | None = None,
    per_chat: Rate = FAST,
    limiter_redis: Redis | None = None,
) -> TelegramSender:
    settings = telegram_settings(api, tmp_path, "redis://unused")
    limiter = FloodLimiter(limiter_redis or redis, "123456", per_chat=per_chat, per_bot=FAST)
    return TelegramSender(
        make_bot(settings),
        keyboards=RedisKeyboards(redis),
        links=LinkStore(redis),
        secret="test-secret",
        public_url=public_url,
        documents=tmp_path,
        limiter=limiter,
        media_files=RedisMediaFiles(redis, "123456"),
    )


@pytest.fixture
async def sender(
    telegram_api: FakeTelegram, redis: Redis, tmp_path: Path
) -> AsyncIterator[TelegramSender]:
    sender = new_sender(telegram_api, redis, tmp_path)
    yield sender
    await sender.aclose()


def texts(api: FakeTelegram, chat: int = 42) -> list[str]:
    return [m.text for m in api.messages(chat)]


async def test_it_is_a_sender_for_the_worker(sender: TelegramSender) -> None:
    as_protocol: Sender = sender
    assert callable(as_protocol.deliver)


async def test_a_429_is_waited_out_and_the_message_resent(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    telegram_api.fail_next("sendMessage", retry_after=1)
    await sender.deliver(CONV, [Say("hello"), Say("again")])
    assert texts(telegram_api) == ["hello", "again"]
    first, resent, _ = telegram_api.calls("sendMessage")
    assert first.params["text"] == resent.params["text"] == "hello"
    assert resent.at - first.at >= 1.0


async def test_giving_up_after_repeated_429s_raises_so_the_caller_can_retry_later(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    sender.attempts = 2
    telegram_api.fail_next("sendMessage", times=2, retry_after=1)
    with pytest.raises(DeliveryFailed, match="gave up sending to chat 42 after 2 attempts"):
        await sender.deliver(CONV, [Say("first"), Say("second")])
    assert texts(telegram_api) == []
    assert len(telegram_api.calls("sendMessage")) == 2  # nothing sent out of order


async def test_network_errors_are_retried(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    telegram_api.fail_next(
        "sendMessage", times=2, error_code=502, description="Bad Gateway", retry_after=None
    )
    await sender.deliver(CONV, [Say("hello")])
    assert texts(telegram_api) == ["hello"]
    assert len(telegram_api.calls("sendMessage")) == 3


async def test_a_refused_message_is_skipped_and_the_rest_sent(
    telegram_api: FakeTelegram, sender: TelegramSender, caplog: pytest.LogCaptureFixture
) -> None:
    too_long = "Bad Request: message is too long"
    telegram_api.fail_next("sendMessage", error_code=400, retry_after=None, description=too_long)
    await sender.deliver(CONV, [Say("x" * 5000), Say("short")])
    assert texts(telegram_api) == ["short"]
    assert "Message is too long" in caplog.text


async def test_a_prospect_who_blocked_the_bot_gets_nothing_more(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    blocked = "Forbidden: bot was blocked by the user"
    telegram_api.fail_next("sendMessage", error_code=403, retry_after=None, description=blocked)
    await sender.deliver(CONV, [Say("one"), Say("two")])
    assert texts(telegram_api) == []
    assert len(telegram_api.calls("sendMessage")) == 1


async def test_the_chat_limit_spaces_messages_from_two_processes(
    telegram_api: FakeTelegram, redis_url: str, tmp_path: Path
) -> None:
    clients = [connect(redis_url), connect(redis_url)]
    await clients[0].flushdb()
    senders = [new_sender(telegram_api, c, tmp_path, per_chat=Rate(10.0)) for c in clients]
    batches = [[Say(f"{n}a"), Say(f"{n}b"), Say(f"{n}c")] for n in range(2)]
    await asyncio.gather(*(s.deliver(CONV, b) for s, b in zip(senders, batches, strict=True)))
    for sender, client in zip(senders, clients, strict=True):
        await sender.aclose()
        await client.aclose()
    sent = telegram_api.calls("sendMessage")
    assert len(sent) == 6
    assert sent[-1].at - sent[0].at >= 5 * 0.1 * 0.95  # one per 100 ms, shared by both


async def test_without_redis_for_the_limiter_messages_still_go(
    telegram_api: FakeTelegram, redis: Redis, tmp_path: Path, own_redis: RedisServer
) -> None:
    down = connect(own_redis.url)
    own_redis.stop()
    sender = new_sender(telegram_api, redis, tmp_path, limiter_redis=down)
    await sender.deliver(CONV, [Say("hello")])
    await sender.aclose()
    await down.aclose()
    assert texts(telegram_api) == ["hello"]


async def test_choice_buttons_carry_signed_callback_data(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    buttons = (Button("Yes please", "welcome", "yes-please"), Button("No", "welcome", "no"))
    await sender.deliver(CONV, [Say("Want it?", buttons)])
    (message,) = telegram_api.messages(42)
    data = [b["callback_data"] for b in message.buttons]
    assert [d.rsplit(":", 1)[0] for d in data] == ["welcome:yes-please", "welcome:no"]
    assert all(len(d.encode()) <= 64 for d in data)


async def test_a_new_keyboard_replaces_the_previous_one(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    ask = Say("Want it?", (Button("Yes", "welcome", "yes"),))
    await sender.deliver(CONV, [ask])
    await sender.deliver(CONV, [Say("Untracked", (Button("Ok", "!forget", "yes"),))])
    await sender.deliver(CONV, [ask])  # e.g. a follow-up asks again
    first, untracked, second = telegram_api.messages(42)
    assert not first.buttons
    assert untracked.buttons and second.buttons
    (edit,) = telegram_api.calls("editMessageReplyMarkup")
    assert int(edit.params["message_id"]) == first.message_id


async def test_link_buttons_are_tracked_links_when_there_is_a_public_url(
    telegram_api: FakeTelegram, redis: Redis, tmp_path: Path
) -> None:
    sender = new_sender(telegram_api, redis, tmp_path, public_url="https://bot.example.com")
    say = Say("Here", (LinkButton("Open", "checklist", "https://example.com/c.pdf"),))
    await sender.deliver(CONV, [say, say])
    await sender.aclose()
    urls = [m.button("Open")["url"] for m in telegram_api.messages(42)]
    assert urls[0] == urls[1]  # sent again: the same token
    assert urls[0].startswith("https://bot.example.com/r/")
    link = await LinkStore(redis).resolve(urls[0].rsplit("/", 1)[1])
    assert link is not None
    assert link.conversation == "telegram:42" and link.step == "checklist"
    assert link.url == "https://example.com/c.pdf"


async def test_without_a_public_url_link_buttons_lead_straight_to_the_url(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    await sender.deliver(CONV, [Say("Here", (LinkButton("Open", "c", "https://example.com/c"),))])
    message = telegram_api.messages(42)[0]
    assert message.button("Open")["url"] == "https://example.com/c"
    done = message.button("✓ Done")["callback_data"]
    assert verify_callback(sender.secret, CONV.id, done) == Press("c", OPENED)


def test_a_missing_public_url_is_warned_about(
    telegram_api: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        new_sender(telegram_api, Redis(), tmp_path)
    assert "PUBLIC_URL is not set" in caplog.text


async def test_documents_are_uploaded_or_linked_and_a_missing_one_is_skipped(
    telegram_api: FakeTelegram,
    sender: TelegramSender,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "guide.pdf").write_bytes(b"%PDF-1.4 guide")
    documents = [
        SendDocument("guide.pdf", "The guide"),
        SendDocument("missing.pdf"),
        SendDocument("https://example.com/remote.pdf"),
    ]
    await sender.deliver(CONV, documents)
    local, remote = telegram_api.messages(42)
    assert local.document == ("guide.pdf", b"%PDF-1.4 guide") and local.text == "The guide"
    assert remote.document == ("https://example.com/remote.pdf", b"")
    assert "missing.pdf" in caplog.text and "does not exist" in caplog.text


async def test_a_booked_webinar_arrives_as_an_ics_file(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    await sender.deliver(CONV, [SendCalendar("Live demo", "2030-12-03T16:00:00+01:00", 45, "Q&A")])
    (message,) = telegram_api.messages(42)
    assert message.document is not None and message.document[0] == "webinar.ics"
    event = icalendar.Calendar.from_ical(message.document[1]).walk("VEVENT")[0]
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
    assert str(event["DESCRIPTION"]) == "Q&A"


FOLLOW_UP_FLOW = """\
flow: nudged
title: Nudged
follow_up: {after: 1h, max: 1, say: "Still there?"}
steps:
  - id: welcome
    ask: "Want it?"
    choices: [Yes, No]
  - id: done
    kind: end
    say: "Bye"
"""


async def test_the_worker_sends_a_follow_up_through_it(
    telegram_api: FakeTelegram, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    (tmp_path / "nudged.yaml").write_text(FOLLOW_UP_FLOW)
    settings = telegram_settings(telegram_api, tmp_path, redis_url)
    clock = ManualClock()
    services = await build(settings, clock=clock, redis=connect(redis_url))
    sender = new_sender(telegram_api, services.redis, tmp_path)
    outcome = await services.conversations.handle("telegram:42", Start())
    await sender.deliver(outcome.conversation, outcome.actions)
    clock.advance(timedelta(hours=2))
    await Worker(services.conversations, {"telegram": sender}, clock).tick()
    await sender.aclose()
    await services.redis.aclose()
    first, nudge = telegram_api.messages(42)
    assert nudge.text.startswith("Still there?")
    assert [b["text"] for b in nudge.buttons] == ["Yes", "No"]
    assert not first.buttons  # the nudge's keyboard replaced it


async def test_another_telegram_refusal_is_logged_and_the_rest_sent(
    telegram_api: FakeTelegram, sender: TelegramSender, caplog: pytest.LogCaptureFixture
) -> None:
    upgraded = "Bad Request: group chat was upgraded to a supergroup chat"
    telegram_api.fail_next(
        "sendMessage",
        error_code=400,
        retry_after=None,
        description=upgraded,
        migrate_to_chat_id=-100123,
    )
    await sender.deliver(CONV, [Say("one"), Say("two")])
    assert texts(telegram_api) == ["two"]
    assert "-100123" in caplog.text
