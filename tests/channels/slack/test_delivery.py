"""Alerts and relayed messages from the outbox: one lead card per prospect, redrawn in place;
webhook mode. A real redis-server and the fake Slack server driven through the real slack-sdk
clients."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from redis.asyncio import Redis

from bot.app import Services, build
from bot.channels.slack import blocks as kit
from bot.channels.slack import events
from domain.clock import ManualClock
from domain.model import Conversation, Text
from storage import keys
from storage.outbox import Outbox
from tests import sharded
from tests.channels.slack.support import (
    ANN,
    FLOW,
    POLICY,
    deliver,
    deliver_until,
    post,
    settings_for,
    to_email_alert,
)
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack, Message, button_press


async def test_one_lead_card_per_prospect_is_updated_in_place_through_the_ladder(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    conv = await to_email_alert(services)
    assert await deliver(services) == 1  # the first alert posts the card
    [card] = fake_slack.messages("#sales-leads")
    assert "said yes: email_given" in card.text
    await post(web, button_press(card, kit.CLAIM, "U1"))
    await services.conversations.handle(
        conv, Text("Yes"), durable=False
    )  # the end: a `completed` alert
    assert await deliver(services) == 1
    [card] = fake_slack.messages("#sales-leads")  # still one message, redrawn
    assert "completed the ladder" in card.text and "• talk: Yes" in card.mrkdwn()
    assert "Claimed by <@U1>" in card.mrkdwn()
    await post(web, button_press(card, kit.WON, "U1"))
    thread = [m.text for m in fake_slack.messages("#sales-leads", thread_ts=card.ts)]
    assert thread == [
        "🙋 <@U1> claimed the lead.",
        "🔔 Ann Lee &lt;!channel&gt; completed the ladder",
        "🏆 Won, says <@U1>.",
    ]
    top_level = [c for c in fake_slack.calls("chat.postMessage") if not c.args.get("thread_ts")]
    assert len(top_level) == 1
    assert len(fake_slack.calls("chat.update")) == 3  # claim, completed, won
    [card] = fake_slack.messages("#sales-leads")
    assert "🏆 Won, says <@U1>" in card.mrkdwn() and card.buttons() == []


async def test_the_alerts_of_one_step_are_one_message(
    services: Services, fake_slack: FakeSlack
) -> None:
    conv = Conversation(id="telegram:5", flow="slack-test", version=1, step="email", profile=ANN)
    body = {"reasons": ["email_given", "score"], "slack_channel": "#sales-leads",
            "conversation": json.loads(conv.to_json())}  # fmt: skip
    await services.redis.xadd(
        keys.outbox(0), {"kind": "alert", "key": "k", "body": json.dumps(body)}
    )
    assert await deliver(services) == 1
    [card] = fake_slack.messages("#sales-leads")
    assert card.text == (
        "Lead: Ann Lee &lt;!channel&gt; said yes: email_given and reached the lead-score threshold"
    )


async def test_a_deleted_lead_card_is_posted_again(
    services: Services, fake_slack: FakeSlack
) -> None:
    conv = await to_email_alert(services)
    assert await deliver(services) == 1
    await services.redis.hset(keys.lead_key(conv), "ts", "1.000000")  # Slack has no such message
    await services.conversations.handle(conv, Text("Yes"), durable=False)
    assert await deliver(services) == 1
    first, second = fake_slack.messages("#sales-leads")
    assert "said yes: email_given" in first.text and "completed the ladder" in second.text
    assert (await services.slack_records.posted(conv)).ts == second.ts


async def test_the_default_channel_is_used_when_the_flow_names_none(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    (flows_dir / "slack-test.yaml").write_text(FLOW.replace('slack_channel: "#sales-leads", ', ""))
    settings = settings_for(
        flows_dir, slack_bot_token=BOT_TOKEN, slack_api_url=fake_slack.url,
        slack_channel="#default-leads",
    )  # fmt: skip
    services = await build(settings, clock=ManualClock(), redis=redis)
    await to_email_alert(services)
    assert await deliver(services) == 1
    assert len(fake_slack.messages("#default-leads")) == 1


async def test_an_alert_without_any_channel_is_dead_lettered_with_the_reason(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    (flows_dir / "slack-test.yaml").write_text(FLOW.replace('slack_channel: "#sales-leads", ', ""))
    settings = settings_for(flows_dir, slack_bot_token=BOT_TOKEN, slack_api_url=fake_slack.url)
    services = await build(settings, clock=ManualClock(), redis=redis)
    await to_email_alert(services)
    assert await deliver(services) == 0
    [dead] = await Outbox(redis, "test").dead_letters()
    assert "no Slack channel" in dead.error and "SLACK_CHANNEL" in dead.error
    assert fake_slack.calls("chat.postMessage") == []


async def test_a_malformed_alert_is_dead_lettered_not_retried(
    services: Services, fake_slack: FakeSlack
) -> None:
    await services.redis.xadd(keys.outbox(0), {"kind": "alert", "key": "bad", "body": "{not json"})
    await services.redis.xadd(keys.outbox(0), {"kind": "alert", "key": "bad2", "body": '{"x": 1}'})
    await services.redis.xadd(keys.outbox(0), {"kind": "fax", "key": "bad3", "body": "{}"})
    relay = json.dumps({"text": "hi", "conversation": "telegram:404"})
    await services.redis.xadd(keys.outbox(0), {"kind": "relay", "key": "bad4", "body": relay})
    await services.redis.xadd(keys.outbox(0), {"kind": "relay", "key": "bad5", "body": "[1]"})
    assert await deliver(services) == 0
    dead = {d.item.key: d.error for d in await Outbox(services.redis, "test").dead_letters()}
    assert "body is not JSON" in dead["bad"]
    assert "not a valid alert body" in dead["bad2"]
    assert "kind 'fax'" in dead["bad3"]
    assert "no Slack alert thread for telegram:404" in dead["bad4"]
    assert "body is not a JSON object" in dead["bad5"]
    assert fake_slack.calls("chat.postMessage") == []


async def test_webhook_mode_posts_alerts_without_buttons_and_retries_a_429(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    settings = settings_for(flows_dir, slack_webhook_url=fake_slack.webhook_url)
    services = await build(settings, clock=ManualClock(), redis=redis)
    assert events.routes(services.settings, services.slack_listeners()) == []
    fake_slack.fail_next("webhook", 429, retry_after=1, error="rate_limited")
    await to_email_alert(services)
    handler = services.slack
    assert handler is not None
    outbox = Outbox(redis, "test", POLICY)
    await deliver_until(outbox, handler, fake_slack.webhook_posts)
    [posted] = fake_slack.webhook_posts()
    assert posted["text"] == "Lead: Ann Lee &lt;!channel&gt; said yes: email_given"
    assert all(block["type"] != "actions" for block in posted["blocks"])
    assert "• email: ann@example.com" in Message("hook", "0", "", posted["blocks"]).mrkdwn()
    first, second = fake_slack.calls("webhook")
    assert second.at - first.at >= 1.0
    assert fake_slack.calls("chat.postMessage") == []


async def test_webhook_mode_posts_a_relayed_message_as_plain_text(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    settings = settings_for(flows_dir, slack_webhook_url=fake_slack.webhook_url)
    services = await build(settings, clock=ManualClock(), redis=redis)
    body = json.dumps({"text": "Call me <maybe>", "conversation": "telegram:5"})
    await redis.xadd(keys.outbox(0), {"kind": "relay", "key": "r1", "body": body})
    assert await deliver(services) == 1
    [posted] = fake_slack.webhook_posts()
    assert posted["text"] == "💬 *telegram:5:* Call me &lt;maybe&gt;" and "blocks" not in posted


async def test_webhook_mode_retries_a_webhook_that_failed(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    settings = settings_for(flows_dir, slack_webhook_url=fake_slack.webhook_url)
    services = await build(settings, clock=ManualClock(), redis=redis)
    fake_slack.fail_next("webhook", 500, error="upstream trouble")
    await to_email_alert(services)
    assert await deliver(services) == 0
    [retry] = [json.loads(v) for v in (await sharded.retries(redis))]
    assert "SlackError: incoming webhook answered 500: upstream trouble" in retry["error"]
    await asyncio.sleep(POLICY.backoff)
    assert await deliver(services) == 1
    assert len(fake_slack.webhook_posts()) == 1


async def test_webhook_mode_dead_letters_a_revoked_webhook(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    settings = settings_for(flows_dir, slack_webhook_url=fake_slack.webhook_url)
    services = await build(settings, clock=ManualClock(), redis=redis)
    fake_slack.fail_next("webhook", 404, error="no_service")
    await to_email_alert(services)
    assert await deliver(services) == 0
    [dead] = await Outbox(redis, "test").dead_letters()
    assert dead.error == "incoming webhook answered 404: no_service"
