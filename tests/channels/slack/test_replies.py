"""A salesperson's replies in a taken-over chat's thread, to the prospect: one engine step each
(bot.sales), through the outbox in order with the bot's messages, sent at once, retried by the
worker. Signed requests to the real web app, a real redis-server, the fake Slack server; the
prospect's side is a recording Sender, or the real Telegram sender and the fake Bot API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import Services, build
from bot.channels.slack import blocks as kit
from bot.channels.telegram.sender import TelegramSender
from bot.web import create_app
from domain.clock import ManualClock
from domain.model import Status, Stop, Text
from storage.outbox import Outbox
from tests.channels.slack.support import (
    POLICY,
    SALES,
    alert_message,
    deliver,
    deliver_all,
    post,
    prospects,
    settings_for,
)
from tests.fakes.http import listening_socket, serving
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack, Message, button_press
from tests.fakes.telegram_api import TOKEN, FakeTelegram


async def test_take_over_relays_both_ways_and_hand_back_resumes(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    conv = "telegram:42"
    assert (await post(web, button_press(message, kit.TAKE_OVER, SALES))).status_code == 200
    stored = await services.conversations.store.load(conv)
    assert stored is not None and stored.status == Status.PAUSED
    [note] = fake_slack.messages("#sales-leads", thread_ts=message.ts)
    assert f"<@{SALES}> took over the chat with Ann Lee" in note.text
    [alert] = fake_slack.messages("#sales-leads")
    assert [b["action_id"] for b in alert.buttons()] == [
        kit.HAND_BACK, kit.WON, kit.LOST, kit.NOT_A_FIT
    ]  # fmt: skip
    assert f"<@{SALES}> is chatting" in alert.mrkdwn()

    # the prospect writes: it reaches the thread through the outbox
    await services.conversations.handle(conv, Text("Is there a discount?"), durable=False)
    assert await deliver(services) == 1
    relayed = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert relayed.text == "💬 *Ann Lee &lt;!channel&gt;:* Is there a discount?"

    # the salesperson answers in the thread: it reaches the prospect
    reply = fake_slack.user_reply(message, SALES, "Yes: 20% &amp; free setup", "Ev1")
    assert (await post(web, json.dumps(reply).encode(), kind="json")).status_code == 200
    assert prospects(services).texts(conv)[-1] == "Yes: 20% & free setup"

    # hand back: the flow continues where it was
    [alert] = fake_slack.messages("#sales-leads")
    stale = Message(**vars(alert))
    assert (await post(web, button_press(alert, kit.HAND_BACK, SALES))).status_code == 200
    stored = await services.conversations.store.load(conv)
    assert stored is not None and stored.status == Status.ACTIVE and stored.step == "offer"
    assert "handed the chat back" in fake_slack.messages("#sales-leads", message.ts)[-1].text
    [alert] = fake_slack.messages("#sales-leads")
    assert kit.TAKE_OVER in [b["action_id"] for b in alert.buttons()]
    outcome = await services.conversations.handle(conv, Text("Yes"), durable=False)
    assert outcome.conversation.status == Status.COMPLETED
    # a second Hand back from a screen that was not refreshed yet
    await post(web, button_press(stale, kit.HAND_BACK, "U0OTHER"))
    assert fake_slack.ephemeral()[-1]["text"] == "Nobody has taken over this chat."
    after = await services.conversations.store.load(conv)
    assert after is not None and after.status == Status.COMPLETED  # untouched


async def test_thread_messages_not_from_the_taker_stay_in_slack(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    conv = "telegram:42"
    colleague = fake_slack.user_reply(message, "U0OTHER", "Before take-over", "Ev0")
    assert (await post(web, json.dumps(colleague).encode(), kind="json")).status_code == 200
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    told = len(prospects(services).texts(conv))
    colleague = fake_slack.user_reply(message, "U0OTHER", "I know them!", "Ev1")
    assert (await post(web, json.dumps(colleague).encode(), kind="json")).status_code == 200
    bot_echo = fake_slack.user_reply(message, SALES, "from the bot", "Ev2")
    bot_echo["event"]["bot_id"] = "BBOT"
    assert (await post(web, json.dumps(bot_echo).encode(), kind="json")).status_code == 200
    assert len(prospects(services).texts(conv)) == told


async def test_a_duplicate_event_is_relayed_once(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    reply = json.dumps(fake_slack.user_reply(message, SALES, "Hello Ann", "EvSame")).encode()
    for _ in range(3):  # Slack retries when it thinks we were slow
        assert (await post(web, reply, kind="json")).status_code == 200
    assert prospects(services).texts("telegram:42").count("Hello Ann") == 1


async def test_a_reply_that_cannot_reach_the_prospect_now_is_reported_and_sent_later(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    sender = services.senders.pop("telegram")  # this process cannot reach the prospect
    reply = fake_slack.user_reply(message, SALES, "Hello?", "Ev9")
    assert (await post(web, json.dumps(reply).encode(), kind="json")).status_code == 200
    warning = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert "Not delivered to the prospect yet" in warning.text and "telegram" in warning.text
    services.senders["telegram"] = sender  # a process that can: the reply was kept for it
    assert await deliver_all(services) == 1
    assert prospects(services).texts("telegram:42").count("Hello?") == 1


async def test_a_prospect_who_opted_out_during_a_take_over_gets_no_more_messages(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    await services.conversations.handle("telegram:42", Stop(), durable=False)
    told = len(prospects(services).texts("telegram:42"))
    reply = fake_slack.user_reply(message, SALES, "Are you still there?", "Ev5")
    assert (await post(web, json.dumps(reply).encode(), kind="json")).status_code == 200
    assert len(prospects(services).texts("telegram:42")) == told
    warning = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert warning.text == (
        "⚠️ Not delivered to the prospect: the conversation is stopped, no longer taken over"
    )


@pytest.fixture
async def with_telegram(
    redis: Redis, fake_slack: FakeSlack, telegram_api: FakeTelegram, flows_dir: Path
) -> AsyncIterator[tuple[Services, str]]:
    """Services whose prospects are on (the fake) Telegram, and the web app serving them."""
    settings = settings_for(
        flows_dir, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url, telegram_token=TOKEN, telegram_api_url=telegram_api.url,
        secret="test-secret", telegram_chat_rate=1000.0, telegram_bot_rate=1000.0,
    )  # fmt: skip
    services = await build(settings, clock=ManualClock(), redis=redis)
    sock, url = listening_socket()
    try:
        async with serving(create_app(services), sock):
            yield services, url
    finally:
        sender = services.senders.get("telegram")
        if isinstance(sender, TelegramSender):
            await sender.aclose()


async def test_replies_keep_their_order_across_a_telegram_failure_and_arrive_once(
    with_telegram: tuple[Services, str], fake_slack: FakeSlack, telegram_api: FakeTelegram
) -> None:
    services, web = with_telegram
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    telegram_api.fail_next(
        "sendMessage", times=10**6, error_code=502, retry_after=None, description="Bad Gateway"
    )  # Telegram is down
    replies = [fake_slack.user_reply(message, SALES, f"Reply {n}", f"Ev{n}") for n in (1, 2, 3)]
    for reply in replies:
        assert (await post(web, json.dumps(reply).encode(), kind="json")).status_code == 200
    notes = [m.text for m in fake_slack.messages("#sales-leads", thread_ts=message.ts)]
    assert sum("Not delivered to the prospect yet" in n for n in notes) == 3
    [alert] = fake_slack.messages("#sales-leads")
    await post(web, button_press(alert, kit.HAND_BACK, SALES))  # the bot asks again, after them
    assert telegram_api.messages(42) == []

    telegram_api.recover("sendMessage")
    await post(web, json.dumps(replies[1]).encode(), kind="json")  # Slack retries an event
    worker = Outbox(services.redis, "worker", POLICY)
    while await worker.backlog():
        await worker.deliver_once(services.deliveries())
    assert [m.text for m in telegram_api.messages(42)] == [
        "Reply 1", "Reply 2", "Reply 3", "Shall we talk?"
    ]  # fmt: skip
