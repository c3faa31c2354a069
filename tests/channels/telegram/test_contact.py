"""A contact step end to end: the request_contact keyboard as the Bot API receives it, the
prospect's own card taken in one tap, a forwarded card asked again, typed input checked as a
phone number. A real web process and Redis, the fake Bot API."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis
from telegram import Bot, Update

from bot.channels.telegram.updates import shared_contact
from bot.texts import Builtin, text
from domain.model import ContactShared
from tests.channels.conftest import CONV, stored, telegram_settings, web_process
from tests.fakes.telegram_api import TOKEN, FakeTelegram

FLOW = """\
flow: tg-ladder
title: Call back
steps:
  - id: phone
    kind: contact
    ask: "Which number should we call?"
    button: "Send my number"
    choices: [{label: "Rather not", id: skip, go: bye}]
    save_as: phone
  - id: thanks
    kind: end
    outcome: won
    say: "We'll call {phone}."
  - id: bye
    kind: end
    outcome: declined
    say: "No problem."
"""


def test_a_card_is_the_prospects_own_only_when_its_user_is_the_sender() -> None:
    ada = FakeTelegram().prospect(42)
    bot = Bot(TOKEN)

    def read(update: dict[str, object]) -> ContactShared | None:
        message = Update.de_json(update, bot).message
        assert message is not None
        return shared_contact(message)

    assert read(ada.contact("+4930123456")) == ContactShared("+4930123456", own=True)
    assert read(ada.contact("+4930999999", user_id=77)) == ContactShared("+4930999999", own=False)
    assert read(ada.contact("+4930999999", user_id=0)) == ContactShared("+4930999999", own=False)
    assert read(ada.text("hello")) is None


async def test_the_contact_keyboard_and_a_forwarded_card_asked_again(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    (flows_dir / "tg-ladder.yaml").write_text(FLOW)
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        await web.post(ada.text("/start"))
        asked = telegram_api.calls("sendMessage")[-1]
        assert asked.params["text"] == "Which number should we call?"
        assert asked.json("reply_markup") == {
            "keyboard": [
                [{"text": "Send my number", "request_contact": True}],
                [{"text": "Rather not"}],
            ],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
        await web.post(ada.contact("+49 30 999999", user_id=77))  # someone else's card
        forwarded = await stored(redis)
        assert forwarded is not None and forwarded.step == "phone"
        assert "phone" not in forwarded.answers
        again = telegram_api.calls("sendMessage")[-1]
        assert again.params["text"].startswith(text(Builtin.CONTACT_NOT_YOURS, "en"))
        assert again.json("reply_markup")["keyboard"][0][0]["request_contact"] is True
        await web.post(ada.contact("+49 30 1234567"))  # one tap on the button
    done = await stored(redis)
    assert done is not None and done.step == "thanks"
    assert done.answers["phone"] == "+49301234567"
    assert ada.last.text == "We'll call +49301234567."


async def test_a_typed_number_is_the_fallback_and_is_checked(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    (flows_dir / "tg-ladder.yaml").write_text(FLOW)
    ada = telegram_api.prospect(42)
    async with web_process(telegram_settings(telegram_api, flows_dir, redis_url)) as web:
        await web.post(ada.text("/start"))
        await web.post(ada.text("call me maybe"))
        unread = await stored(redis)
        assert unread is not None and unread.step == "phone" and unread.invalid == 1
        await web.post(ada.text("+1 (415) 555-0100"))
    typed = await stored(redis, CONV)
    assert typed is not None and typed.answers["phone"] == "+14155550100"
    assert typed.step == "thanks"
