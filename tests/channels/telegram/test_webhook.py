"""Webhook mode end to end: real uvicorn web processes sharing one real Redis, the real
python-telegram-bot client talking to the fake Bot API."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import icalendar
import pytest
from redis.asyncio import Redis

from bot.channels.telegram.channel import FORGED_PRESS, STALE_PRESS
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.webhook import webhook_secret
from bot.config import Settings
from bot.texts import Builtin, text
from bot.worker import Worker
from domain.model import Conversation, Status
from storage import keys
from tests import sharded
from tests.channels.conftest import (
    CONV,
    WEBHOOK_SECRET,
    WebProcess,
    stored,
    telegram_settings,
    web_process,
    with_value,
)
from tests.fakes.http import listening_socket
from tests.fakes.telegram_api import FakeTelegram, Prospect
from tests.redis_server import RedisServer

FORGET_ASK = text(Builtin.FORGET_ASK, "en")
FORGOTTEN = text(Builtin.FORGOTTEN, "en")
KEPT = text(Builtin.KEPT, "en")


def test_webhook_secret_is_derived_when_not_configured() -> None:
    base = replace(Settings.from_env(), telegram_webhook_secret=None, secret="a")
    derived = webhook_secret(base)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", derived)
    assert webhook_secret(replace(base, secret="b")) != derived
    assert webhook_secret(replace(base, telegram_webhook_secret="given")) == "given"


async def events_of(redis: Redis, conversation: str = CONV) -> list[str]:
    entries = await sharded.entries(redis, keys.events)
    return [f["name"] for _, f in entries if f["conversation"] == conversation]


def answers(api: FakeTelegram) -> list[str | None]:
    return [c.params.get("text") for c in api.calls("answerCallbackQuery")]


async def test_a_whole_ladder_across_two_web_processes(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    sock_a, url_a = listening_socket()
    sock_b, _ = listening_socket()
    settings = telegram_settings(telegram_api, flows_dir, redis_url, public_url=url_a)
    ada = telegram_api.prospect(42, "Ada", username="ada", language_code="en")
    async with web_process(settings, sock_a) as a, web_process(settings, sock_b) as b:
        assert await a.post(ada.text("/start linkedin")) == 200
        welcome = ada.last
        assert welcome.text == "Hi Ada!\n\nWant our 2-minute checklist?"
        assert [button["text"] for button in welcome.buttons] == ["Yes please", "Not now"]

        assert await b.post(ada.press("Yes please")) == 200
        role = ada.last
        assert role.text == "What's your role?"
        assert await a.post(ada.press("Founder")) == 200
        assert ada.last.text == "Where should we send it?"
        assert await b.post(ada.text("not an email")) == 200
        assert "Where should we send it?" in ada.last.text
        assert await b.post(ada.text("ada@example.com")) == 200

        resource, document = ada.messages()[-2:]
        assert resource.text == "Here it is, Ada."
        link = resource.button("Open the checklist")["url"]
        assert link.startswith(f"{url_a}/r/")
        assert document.document == ("checklist.txt", b"The 2-minute checklist\n")

        opened = await b.get(link.removeprefix(url_a))  # any web process resolves it
        assert opened.status_code == 302
        assert opened.headers["location"] == "https://example.com/checklist.pdf?ref=telegram:42"
        await telegram_api.wait_for(lambda: "live demo" in ada.last.text, what="the webinar ask")
        webinar = ada.last
        assert [b["text"] for b in webinar.buttons][-1] == "No thanks"

        assert await a.post(ada.press(webinar.buttons[0]["text"])) == 200
        last_three = ada.messages()[-3:]
        (invite,) = [m for m in last_three if m.document]
        assert invite.document is not None and invite.document[0] == "webinar.ics"
        texts = [m.text for m in last_three if not m.document]
        assert texts[0].startswith("You're booked for") and texts[1] == "Thank you, Ada!"
        event = icalendar.Calendar.from_ical(invite.document[1]).walk("VEVENT")[0]
        assert event.decoded("DTSTART").isoformat() == "2030-12-03T15:00:00+00:00"
        assert str(event["SUMMARY"]) == "Telegram test ladder"

    conv = await stored(redis)
    assert conv is not None
    assert conv.status == Status.COMPLETED
    assert conv.source == "linkedin"
    assert conv.profile.username == "ada" and conv.profile.language == "en"
    assert conv.answers["role"] == "Founder" and conv.answers["email"] == "ada@example.com"
    assert [c.step for c in conv.commitments] == [
        "welcome",
        "role",
        "email",
        "checklist",
        "webinar",
    ]
    assert answers(telegram_api) == [None, None, None]  # every press answered, none stale
    assert all(not m.buttons for m in (welcome, role, webinar))  # old keyboards were removed


async def test_one_update_sent_to_two_processes_is_answered_once(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    settings = telegram_settings(telegram_api, flows_dir, redis_url)
    ada = telegram_api.prospect(42)
    async with web_process(settings) as a, web_process(settings) as b:
        start = ada.text("/start")
        assert await asyncio.gather(a.post(start), b.post(start)) == [200, 200]
        assert len(ada.messages()) == 1
        press = ada.press("Yes please")
        assert await asyncio.gather(a.post(press), b.post(press)) == [200, 200]
        assert await a.post(press) == 200  # and a late redelivery
    assert [m.text for m in ada.messages()] == [
        "Hi Ada!\n\nWant our 2-minute checklist?",
        "What's your role?",
    ]
    assert answers(telegram_api) == [None]
    names = ["started", "step_reached", "answered", "committed", "step_reached"]
    assert await events_of(redis) == names


async def test_forged_presses_change_nothing_and_are_answered_politely(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    eve = telegram_api.prospect(666, "Eve")
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        await web.post(ada.text("/start"))
        welcome = ada.last
        genuine = welcome.button("Yes please")["callback_data"]
        before = await redis.hgetall(keys.conversation(CONV))
        step, choice, signature = genuine.split(":")
        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        for data in (f"{step}:not-now:{signature}", f"{step}:{choice}:{flipped}", "junk", ""):
            assert await web.post(ada.press_data(data, welcome.message_id)) == 200
        assert await web.post(eve.press_data(genuine, welcome.message_id)) == 200  # other chat
    assert answers(telegram_api) == [FORGED_PRESS] * 5
    assert await redis.hgetall(keys.conversation(CONV)) == before
    assert await stored(redis, "telegram:666") is None
    assert len(ada.messages()) == 1 and eve.messages() == []
    assert welcome.buttons  # the genuine keyboard is untouched


async def test_a_stale_button_is_answered_and_the_current_question_asked_again(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        await web.post(ada.text("/start"))
        welcome = ada.last
        not_now = welcome.button("Not now")["callback_data"]
        await web.post(ada.press("Yes please"))
        assert not welcome.buttons  # its keyboard was removed once answered
        answered = await stored(redis)
        assert await web.post(ada.press_data(not_now, welcome.message_id)) == 200  # stale client
    assert answers(telegram_api) == [None, STALE_PRESS]
    assert ada.last.text.endswith("What's your role?")
    assert [b["text"] for b in ada.last.buttons] == ["Founder", "Sales lead"]
    after = await stored(redis)
    assert answered is not None and after is not None
    assert after.step == "role" and after.answers == answered.answers
    assert (await events_of(redis))[-1] == "stale_press"


async def test_a_triple_tapped_button_is_answered_without_filling_the_chat(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        await web.post(ada.text("/start"))
        welcome = ada.last
        yes = welcome.button("Yes please")["callback_data"]
        for _ in range(3):  # the client sent the taps before the keyboard went away
            assert await web.post(ada.press_data(yes, welcome.message_id)) == 200
    assert answers(telegram_api) == [None, STALE_PRESS, STALE_PRESS]
    said = [m.text for m in ada.messages()]
    assert len(said) == 2 and said[1].endswith("What's your role?")
    assert not any("earlier question" in text for text in said)
    assert not welcome.buttons  # the answered question's keyboard was removed
    assert (await events_of(redis))[-2:] == ["stale_press", "stale_press"]


async def test_wrong_or_missing_secret_token_is_refused(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        assert await web.post(ada.text("/start"), secret="guess") == 403
        assert await web.post(ada.text("/start"), secret=None) == 403
        assert await web.post(ada.text("/start"), secret=WEBHOOK_SECRET + "x") == 403
    assert await stored(redis) is None
    assert ada.messages() == []
    assert await sharded.total(redis.xlen, keys.events) == 0


async def test_malformed_bodies_are_bad_requests(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    bodies = [
        b"not json",
        b"[]",
        b'{"message": {}}',
        b'{"update_id": "1"}',
        b'{"update_id": true}',
    ]
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        for body in bodies:
            response = await web.http.post(
                f"{web.url}/telegram/webhook", content=body, headers=headers
            )
            assert response.status_code == 400, body
        nothing = json.dumps({"update_id": 3, "edited_message": None})
        ok = await web.http.post(f"{web.url}/telegram/webhook", content=nothing, headers=headers)
        assert ok.status_code == 200  # a well-formed update with nothing for us
    assert await sharded.total(redis.xlen, keys.events) == 0
    assert telegram_api.calls() == []


async def test_redis_down_gives_503_and_the_retry_is_processed(
    telegram_api: FakeTelegram, flows_dir: Path, own_redis: RedisServer
) -> None:
    ada = telegram_api.prospect(42)
    settings = telegram_settings(telegram_api, flows_dir, own_redis.url)
    async with web_process(settings) as web:
        update = ada.text("/start")
        own_redis.stop()
        assert await web.post(update) == 503
        assert ada.messages() == []
        own_redis.start()
        assert await web.post(update) == 200  # Telegram's retry
        assert await web.post(update) == 200  # and a redelivery after that
    assert [m.text for m in ada.messages()] == ["Hi Ada!\n\nWant our 2-minute checklist?"]


async def test_an_update_that_fails_for_another_reason_is_not_acknowledged(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    """A conversation pinned to a flow that is not published: 500, so it is not lost."""
    ghost = Conversation(id=CONV, flow="ghost", version=1, step="welcome")
    await redis.hset(keys.conversation(CONV), mapping={"v": 1, "doc": ghost.to_json()})
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        assert await web.post(ada.text("hello")) == 500
    assert ada.messages() == []


async def test_forget_asks_first_then_erases_everything(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    sock, url = listening_socket()
    settings = telegram_settings(telegram_api, flows_dir, redis_url, public_url=url)
    ada = telegram_api.prospect(42)
    bob = telegram_api.prospect(7, "Bob")
    async with web_process(settings, sock) as web:
        await web.post(bob.text("/start"))
        await web.post(ada.text("/start"))
        await web.post(ada.press("Yes please"))
        role = ada.last
        await web.post(ada.text("/forget"))
        ask = ada.last
        assert ask.text == FORGET_ASK
        await web.post(ada.press("No, keep it"))
        assert ada.last.text == KEPT
        assert not ask.buttons
        assert role.buttons  # the question being answered keeps its buttons
        assert await stored(redis) is not None

        await web.post(ada.press("Founder"))
        await web.post(ada.text("ada@example.com"))
        link = ada.messages()[-2].button("Open the checklist")["url"].removeprefix(url)
        assert (await web.get(link)).status_code == 302
        await telegram_api.wait_for(lambda: "live demo" in ada.last.text, what="the next step")
        forget = ada.text("/forget")  # asked once the messages before it went out
        await web.post(forget)
        await web.post(forget)  # a redelivered /forget asks once
        assert [m.text for m in ada.messages()].count(FORGET_ASK) == 2
        yes = ada.press("Yes, erase everything")
        await web.post(yes)
        await web.post(yes)  # redelivered: erased once, said once
        assert ada.last.text == FORGOTTEN
        assert [m.text for m in ada.messages()].count(FORGOTTEN) == 1

        assert await stored(redis) is None
        assert await events_of(redis) == []
        assert await redis.keys(f"*{{conv:{CONV}}}*") == []
        assert (await web.get(link)).status_code == 404
        assert await stored(redis, "telegram:7") is not None  # others are untouched
        assert await events_of(redis, "telegram:7")

        await web.post(ada.text("/start"))  # a new beginning
        conv = await stored(redis)
        assert conv is not None and conv.step == "welcome" and not conv.answers


async def reach_the_checklist(web: WebProcess, ada: Prospect) -> None:
    await web.post(ada.text("/start"))
    await web.post(ada.press("Yes please"))
    await web.post(ada.press("Founder"))
    await web.post(ada.text("ada@example.com"))


async def test_a_link_opened_again_later_is_recorded_and_still_redirects(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    sock, url = listening_socket()
    settings = telegram_settings(telegram_api, flows_dir, redis_url, public_url=url)
    ada = telegram_api.prospect(42)
    async with web_process(settings, sock) as web:
        await reach_the_checklist(web, ada)
        link = ada.messages()[-2].button("Open the checklist")["url"].removeprefix(url)
        assert (await web.get(link)).status_code == 302
        await telegram_api.wait_for(lambda: "live demo" in ada.last.text, what="the next step")
        sent = len(ada.messages())
        again = await web.get(link)
        assert again.status_code == 302
        assert again.headers["location"].startswith("https://example.com/checklist.pdf")
        assert (await web.get("/r/AAAAAAAAAAAAAAAAAAAAAA")).status_code == 404
        assert (await web.get("/r/not-a-token")).status_code == 404
    # the web process has stopped, so its background deliveries have all run
    assert len(ada.messages()) == sent  # nothing more to say
    conv = await stored(redis)
    assert conv is not None and conv.step == "webinar"
    assert (await events_of(redis)).count("link_opened") == 2
    assert [c.step for c in conv.commitments].count("checklist") == 1


async def test_a_link_opened_while_redis_is_down_gets_503(
    telegram_api: FakeTelegram, flows_dir: Path, own_redis: RedisServer
) -> None:
    sock, url = listening_socket()
    settings = telegram_settings(telegram_api, flows_dir, own_redis.url, public_url=url)
    ada = telegram_api.prospect(42)
    async with web_process(settings, sock) as web:
        await reach_the_checklist(web, ada)
        link = ada.messages()[-2].button("Open the checklist")["url"].removeprefix(url)
        own_redis.stop()
        down = await web.get(link)
        assert down.status_code == 503
        assert "try the link again" in down.text
        own_redis.start()
        assert (await web.get(link)).status_code == 302
        await telegram_api.wait_for(lambda: "live demo" in ada.last.text, what="the next step")


async def test_an_answer_telegram_would_not_take_waits_in_the_outbox_for_the_worker(
    telegram_api: FakeTelegram,
    flows_dir: Path,
    redis_url: str,
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        sender = web.services.senders["telegram"]
        assert isinstance(sender, TelegramSender)
        sender.attempts = 1
        telegram_api.fail_next("sendMessage", error_code=502, retry_after=None, description="")
        assert await web.post(ada.text("/start")) == 200  # a retry would be a duplicate
        assert ada.messages() == []
        assert "1 item(s) left to the worker: DeliveryFailed" in caplog.text
        assert await sharded.total(redis.xlen, keys.outbox) == 1
        worker = Worker(web.services.conversations, web.services.senders, web.services.clock)
        assert await worker.deliver() == 1
        assert ada.last.text == "Hi Ada!\n\nWant our 2-minute checklist?"
        assert [button["text"] for button in ada.last.buttons] == ["Yes please", "Not now"]
    conv = await stored(redis)
    assert conv is not None and conv.step == "welcome"
    assert await sharded.total(redis.xlen, keys.outbox) == 0


async def test_without_a_public_url_the_prospect_says_the_link_was_opened(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42, "Ada")
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        assert await web.post(ada.text("/start")) == 200
        assert await web.post(ada.press("Yes please")) == 200
        assert await web.post(ada.press("Founder")) == 200
        assert await web.post(ada.text("ada@example.com")) == 200
        resource = [m for m in ada.messages() if m.text == "Here it is, Ada."][-1]
        link = resource.button("Open the checklist")["url"]
        assert link == "https://example.com/checklist.pdf?ref=telegram:42"  # untracked
        assert await web.post(ada.press("✓ Done")) == 200
        assert "live demo" in ada.last.text
    conv = await stored(redis)
    assert conv is not None and conv.step == "webinar"
    assert conv.commitments[-1].name == "resource_opened"


# Fields of an update given values of the wrong type: each field the ladder reads, and the
# structures python-telegram-bot must unpack. None only where the field is required.
MALFORMED: list[tuple[str, list[Any]]] = [
    ("message", [5, "hello", [1], True]),
    ("message.text", [5, 2.5, True, {"a": 1}, ["hi"], {"text": "hi"}]),
    ("message.chat", [5, "x", [1], None]),
    ("message.chat.id", ["42", 4.2, True, None, {"id": 42}]),
    ("message.message_id", ["1", None, [1]]),
    ("message.date", ["today", [1], {"a": 1}]),
    ("message.from", [5, "x", [1]]),
    ("message.from.id", ["42", None, 1.5]),
    ("message.from.first_name", [5, None, {"a": 1}]),
    ("message.from.username", [5, ["ada"]]),
    ("message.entities", [5, "x", [5]]),
    ("callback_query", [5, "x", [1]]),
    ("callback_query.id", [5, None, {"a": 1}]),
    ("callback_query.data", [5, True, {"a": 1}, ["x"]]),
    ("callback_query.from", [None, 5, "x"]),
    ("callback_query.from.id", ["42", None]),
    ("callback_query.message", [5, "x"]),
    ("callback_query.message.message_id", ["7", None]),
    ("callback_query.message.chat.id", ["42", None]),
]


async def test_malformed_updates_are_acknowledged_logged_and_change_nothing(
    telegram_api: FakeTelegram,
    flows_dir: Path,
    redis_url: str,
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Telegram resends what it does not get a 200 for, so a broken update is answered 200,
    logged by update id and field (not its content), and nothing is stored or sent."""
    ada = telegram_api.prospect(42, "Ada", last_name="Lovelace-private")

    def good(path: str) -> dict[str, Any]:
        return ada.text("hello") if path.startswith("message") else ada.press_data("x", 7)

    updates = [with_value(good(path), path, v) for path, values in MALFORMED for v in values]
    caplog.set_level(logging.WARNING)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        for update in updates:
            assert await web.post(update) == 200, update
        assert await sharded.total(redis.xlen, keys.events) == 0
        assert await stored(redis) is None
        assert telegram_api.calls() == []
        ignored = [r.getMessage() for r in caplog.records if "ignored update" in r.getMessage()]
        assert [m.split(":")[0] for m in ignored] == [
            f"ignored update {u['update_id']}" for u in updates
        ]
        assert "Lovelace" not in caplog.text
        assert "hello" not in caplog.text

        assert await web.post(ada.text("/start")) == 200  # and the channel still works
    assert [m.text for m in ada.messages()] == ["Hi Ada!\n\nWant our 2-minute checklist?"]
