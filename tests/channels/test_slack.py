"""Slack end to end: a real redis-server, the fake Slack server driven through the real
slack-sdk clients, and signed requests to the real web app served by uvicorn on 127.0.0.1.
The prospect's side is a recording Sender (a double of the channel port)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot.analytics import read_events
from bot.app import Services, build
from bot.channels import slack
from bot.clock import ManualClock
from bot.config import Settings
from bot.model import (
    Action,
    Commitment,
    Conversation,
    DomainEvent,
    Lead,
    Profile,
    Say,
    Start,
    Status,
    Stop,
    Text,
)
from bot.publish import export, pending_timers
from bot.web import create_app
from storage import keys
from storage.base import StepWrite
from storage.connect import connect
from storage.outbox import Handler, Outbox, OutboxPolicy
from tests import sharded
from tests.fakes.http import listening_socket, serving
from tests.fakes.slack_api import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    Message,
    button_press,
    sign,
    slash_command,
)

FLOW = """\
flow: slack-test
title: Slack test ladder
alerts: {slack_channel: "#sales-leads", on: [completed, email_given]}
follow_up: {after: 1h, say: "Still there?"}
steps:
  - id: role
    kind: survey
    ask: "What's your role?"
    choices: [Founder, Sales lead]
    save_as: role
  - id: email
    kind: input
    ask: "Where should we send it?"
    validate: email
    save_as: email
  - id: offer
    kind: survey
    ask: "Shall we talk?"
    choices: [Yes, Later]
    save_as: talk
  - id: done
    kind: end
    say: "Thanks {first_name}!"
"""
POLICY = OutboxPolicy(max_attempts=4, backoff=0.05, max_backoff=0.2, lease=0.6)
ANN = Profile(first_name="Ann", last_name="Lee <!channel>", username="annlee")
SALES = "U0SALES"


class Prospects:
    """The prospects' channel as a recording Sender: what each conversation was told."""

    def __init__(self) -> None:
        self.told: dict[str, list[Action]] = {}

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        self.told.setdefault(conversation.id, []).extend(actions)

    def texts(self, conversation_id: str) -> list[str]:
        return [a.text for a in self.told.get(conversation_id, []) if isinstance(a, Say)]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    (tmp_path / "slack-test.yaml").write_text(FLOW)
    return tmp_path


def settings_for(flows: Path, **changes: object) -> Settings:
    base = replace(
        Settings.from_env(),
        flows_dir=flows,
        default_flow=None,
        telegram_token=None,
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_webhook_url=None,
        slack_channel=None,
        dashboard_token=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def services(redis: Redis, fake_slack: FakeSlack, flows_dir: Path) -> Services:
    settings = settings_for(
        flows_dir,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
    )
    built = await build(settings, clock=ManualClock(), redis=redis)
    built.senders["telegram"] = Prospects()
    return built


def prospects(services: Services) -> Prospects:
    sender = services.senders["telegram"]
    assert isinstance(sender, Prospects)
    return sender


@pytest.fixture
async def web(services: Services) -> AsyncIterator[str]:
    """The real web app on a free loopback port, in this test's event loop."""
    sock, url = listening_socket()
    async with serving(create_app(services), sock):
        yield url


async def post(
    web: str, body: bytes, *, kind: str = "form", secret: str = SIGNING_SECRET, age: int = 0
) -> httpx.Response:
    """POST a body to /slack/events signed as Slack would (`age` seconds ago)."""
    content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
    headers = {"Content-Type": content_type, **sign(body, int(time.time()) - age, secret)}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{web}/slack/events", content=body, headers=headers)


async def to_email_alert(services: Services, chat: str = "42") -> str:
    """Walk a prospect to the email_given alert; returns the conversation id."""
    conv = f"telegram:{chat}"
    await services.ladder.handle(conv, Start("linkedin-ads"), profile=ANN, durable=False)
    await services.ladder.handle(conv, Text("Founder"), durable=False)
    await services.ladder.handle(conv, Text("ann@example.com"), durable=False)
    return conv


async def lead_of(services: Services, conversation_id: str) -> Lead:
    stored = await services.ladder.store.load(conversation_id)
    assert stored is not None
    return stored.lead


async def events_of(services: Services, conversation_id: str) -> list[DomainEvent]:
    return [e for e in await read_events(services.redis) if e.conversation == conversation_id]


async def deliver(services: Services) -> int:
    """One outbox pass (a failed item waits out its backoff: it is not retried in this pass)."""
    handler = slack.outbox_handler(services)
    assert handler is not None
    return await Outbox(services.redis, "test", POLICY).deliver_once(handler)


async def alert_message(services: Services, fake_slack: FakeSlack) -> Message:
    conv = await to_email_alert(services)
    assert await deliver(services) == 1
    [message] = fake_slack.messages("#sales-leads")
    assert (await slack.load_posted(services.redis, conv)).ts == message.ts
    return message


# --- alerts ------------------------------------------------------------------------------------


async def test_an_alert_shows_everything_a_salesperson_needs(
    services: Services, fake_slack: FakeSlack
) -> None:
    message = await alert_message(services, fake_slack)
    [call] = fake_slack.calls("chat.postMessage")
    assert call.token == BOT_TOKEN and call.args["channel"] == "#sales-leads"
    shown = message.mrkdwn()
    assert "*Prospect*\nAnn Lee &lt;!channel&gt; (@annlee)" in shown  # escaped: no @channel
    assert message.text == "Lead: Ann Lee &lt;!channel&gt; said yes: email_given"
    assert "linkedin-ads" in shown  # source
    assert "• role: Founder" in shown and "• email: ann@example.com" in shown
    assert "_score" not in shown
    assert "*role_answered*" in shown and "*email_given*" in shown  # the ladder
    assert "<!date^1796115600^" in shown  # commitment times as Slack dates (2026-12-01 09:00)
    assert "*Lead score*\n15" in shown
    assert "Slack test ladder (`slack-test` v1)" in shown
    assert "said yes: email_given" in shown
    assert [b["action_id"] for b in message.buttons()] == [
        slack.CLAIM,
        slack.TAKE_OVER,
        slack.WON,
        slack.LOST,
        slack.NOT_A_FIT,
    ]
    assert {b["value"] for b in message.buttons()} == {"telegram:42"}


SLACK_MARKUP = re.compile(r"<!date\^\d+\^\{date_short\} \{time\}\|[^<>]*>|<@U\w+>")


@settings(max_examples=60, deadline=None)
@given(
    answers=st.dictionaries(st.text(min_size=1, max_size=40), st.text(max_size=900), max_size=12),
    name=st.text(max_size=300),
    commitments=st.lists(st.text(min_size=1, max_size=60), max_size=60),
)
def test_any_alert_fits_slack_limits_and_cannot_inject_markup(
    answers: dict[str, str], name: str, commitments: list[str]
) -> None:
    conv = Conversation(
        id="telegram:1", flow="f", version=2, step="s", answers=answers, profile=Profile(name),
        commitments=tuple(Commitment(c, c, "2026-12-01T09:00:00+00:00") for c in commitments),
        source="ads", lead=Lead(claimed_by="slack:U1"),
    )  # fmt: skip
    blocks = slack.alert_blocks(conv, ["completed", "score"], name, True)
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150  # header
    for block in blocks[1:]:
        texts = [f["text"] for f in block.get("fields", [])]
        assert all(len(t) <= 2000 for t in texts) and len(texts) <= 10
        if "text" in block:
            texts.append(block["text"]["text"])
            assert len(block["text"]["text"]) <= 3000
        texts += [e["text"] for e in block.get("elements", []) if e["type"] == "mrkdwn"]
        for text in texts:
            assert "<" not in SLACK_MARKUP.sub("", text), text


async def test_one_lead_card_per_prospect_is_updated_in_place_through_the_ladder(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    conv = await to_email_alert(services)
    assert await deliver(services) == 1  # the first alert posts the card
    [card] = fake_slack.messages("#sales-leads")
    assert "said yes: email_given" in card.text
    await post(web, button_press(card, slack.CLAIM, "U1"))
    await services.ladder.handle(conv, Text("Yes"), durable=False)  # the end: a `completed` alert
    assert await deliver(services) == 1
    [card] = fake_slack.messages("#sales-leads")  # still one message, redrawn
    assert "completed the ladder" in card.text and "• talk: Yes" in card.mrkdwn()
    assert "Claimed by <@U1>" in card.mrkdwn()
    await post(web, button_press(card, slack.WON, "U1"))
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
    await services.ladder.handle(conv, Text("Yes"), durable=False)
    assert await deliver(services) == 1
    first, second = fake_slack.messages("#sales-leads")
    assert "said yes: email_given" in first.text and "completed the ladder" in second.text
    assert (await slack.load_posted(services.redis, conv)).ts == second.ts


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


async def deliver_until(outbox: Outbox, handler: Handler, done: Callable[[], object]) -> None:
    """Outbox passes until `done()` holds (the deadline only bounds a test that would hang)."""
    deadline = time.monotonic() + 120
    while not done():
        assert time.monotonic() < deadline, "nothing delivered"
        await outbox.deliver_once(handler)
        await asyncio.sleep(0.02)


async def test_slack_500_then_429_then_success_posts_one_message(
    services: Services, fake_slack: FakeSlack
) -> None:
    await to_email_alert(services)
    fake_slack.fail_next("chat.postMessage", 500)
    fake_slack.fail_next("chat.postMessage", 429, retry_after=1, error="ratelimited")
    handler = slack.outbox_handler(services)
    assert handler is not None
    outbox = Outbox(services.redis, "test", POLICY)
    await deliver_until(outbox, handler, lambda: fake_slack.messages("#sales-leads"))
    calls = fake_slack.calls("chat.postMessage")
    assert len(calls) == 3
    assert calls[2].at - calls[1].at >= 1.0  # Retry-After: 1 was honoured
    for _ in range(3):
        await outbox.deliver_once(handler)
    assert len(fake_slack.messages("#sales-leads")) == 1
    assert await outbox.backlog() == 0 and await outbox.dead_count() == 0


async def test_a_post_slack_made_but_answered_500_is_not_repeated(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    """Slack posts, then the answer is lost (a 500): the retry finds the post by its outbox
    key, for an alert in the channel and for a relayed message in the thread."""
    await to_email_alert(services)
    fake_slack.fail_next("chat.postMessage", 500, processed=True)
    assert await deliver(services) == 0
    await asyncio.sleep(POLICY.backoff)
    assert await deliver(services) == 1
    [message] = fake_slack.messages("#sales-leads")
    assert len(fake_slack.calls("chat.postMessage")) == 1
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    await services.ladder.handle("telegram:42", Text("Hello?"), durable=False)
    fake_slack.fail_next("chat.postMessage", 500, processed=True)
    assert await deliver(services) == 0
    await asyncio.sleep(POLICY.backoff)
    assert await deliver(services) == 1
    thread = fake_slack.messages("#sales-leads", thread_ts=message.ts)
    assert [m.text for m in thread].count("💬 *Ann Lee &lt;!channel&gt;:* Hello?") == 1
    assert len(fake_slack.calls("conversations.replies")) == 1


@pytest.mark.parametrize("refused", ["conversations.list", "conversations.history"])
async def test_without_lookup_rights_a_lost_answer_means_a_second_post(
    services: Services, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, refused: str
) -> None:
    """What stays at-least-once: Slack will not list channels or show their history (a missing
    scope), so a retry cannot look for the earlier post; it posts again rather than lose it."""
    await to_email_alert(services)
    fake_slack.fail_next("chat.postMessage", 500, processed=True)
    fake_slack.fail_next(refused, 200, error="missing_scope")
    assert await deliver(services) == 0
    await asyncio.sleep(POLICY.backoff)
    assert await deliver(services) == 1
    assert len(fake_slack.messages("#sales-leads")) == 2
    assert "cannot check for an earlier post (missing_scope)" in caplog.text


async def test_a_lookup_failing_with_500_retries_instead_of_risking_a_second_post(
    services: Services, fake_slack: FakeSlack
) -> None:
    await to_email_alert(services)
    fake_slack.fail_next("chat.postMessage", 500, processed=True)
    fake_slack.fail_next("conversations.history", 503)
    assert await deliver(services) == 0
    await asyncio.sleep(POLICY.backoff)
    assert await deliver(services) == 0  # the lookup failed: nothing posted, retried later
    await asyncio.sleep(POLICY.wait_after(2))
    assert await deliver(services) == 1
    assert len(fake_slack.messages("#sales-leads")) == 1


async def test_a_channel_slack_does_not_know_is_dead_lettered(
    services: Services, fake_slack: FakeSlack
) -> None:
    await to_email_alert(services)
    fake_slack.fail_next("chat.postMessage", 200, error="channel_not_found")
    assert await deliver(services) == 0
    [dead] = await Outbox(services.redis, "test").dead_letters()
    assert dead.error == "Slack refused: channel_not_found"


async def test_two_consumers_post_exactly_one_message_per_alert(
    services: Services, fake_slack: FakeSlack, redis_url: str
) -> None:
    for n in range(15):
        await to_email_alert(services, chat=str(100 + n))
    other_redis = connect(redis_url)
    try:
        other = replace(services, redis=other_redis)
        # both stay alive: a long lease keeps a held-up one from being taken for dead
        one_at_a_time = replace(POLICY, batch=1, lease=600)
        consumers = [
            (Outbox(services.redis, "a", one_at_a_time), slack.outbox_handler(services)),
            (Outbox(other_redis, "b", one_at_a_time), slack.outbox_handler(other)),
        ]

        async def run(outbox: Outbox, handler: slack.SlackDelivery | None) -> int:
            assert handler is not None
            total = 0
            while await outbox.backlog():
                total += await outbox.deliver_once(handler)
            return total

        counts = await asyncio.gather(*(run(o, h) for o, h in consumers))
    finally:
        await other_redis.aclose()
    posted = fake_slack.messages("#sales-leads")
    assert len(posted) == 15 == sum(counts)
    assert len({b["value"] for m in posted for b in m.buttons()}) == 15


CONSUMER = """
import asyncio, dataclasses, sys
from bot.app import build
from bot.channels import slack
from bot.clock import ManualClock
from bot.config import Settings
from storage.outbox import Handler, Outbox, OutboxPolicy

async def main():
    settings = dataclasses.replace(Settings.from_env(), slack_bot_token=sys.argv[1],
                                   slack_api_url=sys.argv[2], telegram_token=None)
    services = await build(settings, clock=ManualClock())
    print("ready", flush=True)
    await Outbox(services.redis, "doomed", OutboxPolicy(lease=30)).deliver_once(
        slack.outbox_handler(services))

asyncio.run(main())
"""


async def kill_mid_post(fake_slack: FakeSlack, redis_url: str, flows_dir: Path) -> None:
    """A consumer process posts an alert and is SIGKILLed while Slack holds the request."""
    arrived = fake_slack.hold("chat.postMessage")
    env = {**os.environ, "REDIS_URL": redis_url, "FLOWS_DIR": str(flows_dir)}
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CONSUMER, BOT_TOKEN, fake_slack.url, env=env,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        assert await asyncio.to_thread(arrived.wait, 30), "the consumer never called Slack"
    finally:
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()


@pytest.mark.parametrize("slack_got_it", [False, True])
async def test_a_consumer_killed_mid_delivery_is_replaced_and_posts_once(
    services: Services, fake_slack: FakeSlack, redis_url: str, flows_dir: Path, slack_got_it: bool
) -> None:
    """Killed while Slack held its request; then Slack either drops the request or posts the
    message (the crash fell between Slack's post and the outbox's acknowledgement)."""
    await to_email_alert(services)
    await kill_mid_post(fake_slack, redis_url, flows_dir)
    fake_slack.release("chat.postMessage", process=slack_got_it)
    await fake_slack.wait_for(
        lambda: len(fake_slack.messages("#sales-leads")) == int(slack_got_it), what="the post"
    )
    handler = slack.outbox_handler(services)
    assert handler is not None
    patient = Outbox(services.redis, "survivor", replace(POLICY, lease=600))
    assert await patient.deliver_once(handler) == 0  # the item is still leased to the dead one
    survivor = Outbox(services.redis, "survivor", POLICY)
    await asyncio.sleep(POLICY.lease)
    assert await survivor.deliver_once(handler) == 1
    [message] = fake_slack.messages("#sales-leads")  # exactly one alert either way
    posts = 1 if slack_got_it else 2
    assert len(fake_slack.calls("chat.postMessage")) == posts
    assert len(fake_slack.calls("conversations.list")) == 1  # "#sales-leads" -> its id
    assert len(fake_slack.calls("conversations.history")) == 1  # looked before posting again
    lead = await slack.load_posted(services.redis, "telegram:42")
    assert (lead.channel, lead.ts) == (message.channel, message.ts)
    assert await survivor.backlog() == 0


# --- buttons -------------------------------------------------------------------------------------


async def test_claim_updates_the_alert_and_a_second_claim_is_refused_politely(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    original = Message(**vars(message))  # as everyone's screen still shows it
    response = await post(web, button_press(message, slack.CLAIM, "U1"))
    assert response.status_code == 200
    [updated] = fake_slack.messages("#sales-leads")
    assert "Claimed by <@U1>" in updated.mrkdwn()
    assert slack.CLAIM not in [b["action_id"] for b in updated.buttons()]
    assert "*Answers*" in updated.mrkdwn()  # the alert itself is kept
    response = await post(web, button_press(original, slack.CLAIM, "U2"))
    assert response.status_code == 200
    [refusal] = fake_slack.ephemeral()
    assert refusal["user"] == "U2" and "<@U1> has already claimed" in refusal["text"]
    assert (await lead_of(services, "telegram:42")).claimed_by == "slack:U1"
    assert len(fake_slack.calls("chat.update")) == 2  # the refused presser's stale screen too
    # the prospect's next alert already shows the claim
    await services.ladder.handle("telegram:42", Text("Yes"), durable=False)
    assert await deliver(services) == 1
    completed = fake_slack.messages("#sales-leads")[-1]
    assert "completed the ladder" in completed.text and "Claimed by <@U1>" in completed.mrkdwn()
    assert slack.CLAIM not in [b["action_id"] for b in completed.buttons()]


async def test_simultaneous_claims_have_one_winner(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    users = [f"U{n}" for n in range(8)]
    await asyncio.gather(*(post(web, button_press(message, slack.CLAIM, u)) for u in users))
    winner = (await lead_of(services, "telegram:42")).claimed_by.removeprefix("slack:")
    assert winner in users
    assert sorted(e["user"] for e in fake_slack.ephemeral()) == sorted(set(users) - {winner})
    claims = [e for e in await events_of(services, "telegram:42") if e.name == "claimed"]
    assert [e.data["by"] for e in claims] == [f"slack:{winner}"]  # one claim in the log


async def test_take_over_relays_both_ways_and_hand_back_resumes(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    conv = "telegram:42"
    assert (await post(web, button_press(message, slack.TAKE_OVER, SALES))).status_code == 200
    stored = await services.ladder.store.load(conv)
    assert stored is not None and stored.status == Status.PAUSED
    [note] = fake_slack.messages("#sales-leads", thread_ts=message.ts)
    assert f"<@{SALES}> took over the chat with Ann Lee" in note.text
    [alert] = fake_slack.messages("#sales-leads")
    assert [b["action_id"] for b in alert.buttons()] == [
        slack.HAND_BACK, slack.WON, slack.LOST, slack.NOT_A_FIT
    ]  # fmt: skip
    assert f"<@{SALES}> is chatting" in alert.mrkdwn()

    # the prospect writes: it reaches the thread through the outbox
    await services.ladder.handle(conv, Text("Is there a discount?"), durable=False)
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
    assert (await post(web, button_press(alert, slack.HAND_BACK, SALES))).status_code == 200
    stored = await services.ladder.store.load(conv)
    assert stored is not None and stored.status == Status.ACTIVE and stored.step == "offer"
    assert "handed the chat back" in fake_slack.messages("#sales-leads", message.ts)[-1].text
    [alert] = fake_slack.messages("#sales-leads")
    assert slack.TAKE_OVER in [b["action_id"] for b in alert.buttons()]
    outcome = await services.ladder.handle(conv, Text("Yes"), durable=False)
    assert outcome.conversation.status == Status.COMPLETED
    # a second Hand back from a screen that was not refreshed yet
    await post(web, button_press(stale, slack.HAND_BACK, "U0OTHER"))
    assert fake_slack.ephemeral()[-1]["text"] == "Nobody has taken over this chat."
    after = await services.ladder.store.load(conv)
    assert after is not None and after.status == Status.COMPLETED  # untouched


async def test_thread_messages_not_from_the_taker_stay_in_slack(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    conv = "telegram:42"
    colleague = fake_slack.user_reply(message, "U0OTHER", "Before take-over", "Ev0")
    assert (await post(web, json.dumps(colleague).encode(), kind="json")).status_code == 200
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
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
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    reply = json.dumps(fake_slack.user_reply(message, SALES, "Hello Ann", "EvSame")).encode()
    for _ in range(3):  # Slack retries when it thinks we were slow
        assert (await post(web, reply, kind="json")).status_code == 200
    assert prospects(services).texts("telegram:42").count("Hello Ann") == 1


async def test_a_reply_that_cannot_reach_the_prospect_is_reported_in_the_thread(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    del services.senders["telegram"]
    reply = fake_slack.user_reply(message, SALES, "Hello?", "Ev9")
    assert (await post(web, json.dumps(reply).encode(), kind="json")).status_code == 200
    warning = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert "Not delivered to the prospect" in warning.text and "telegram" in warning.text


async def test_a_prospect_who_opted_out_during_a_take_over_gets_no_more_messages(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    await services.ladder.handle("telegram:42", Stop(), durable=False)
    told = len(prospects(services).texts("telegram:42"))
    reply = fake_slack.user_reply(message, SALES, "Are you still there?", "Ev5")
    assert (await post(web, json.dumps(reply).encode(), kind="json")).status_code == 200
    assert len(prospects(services).texts("telegram:42")) == told
    warning = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert warning.text == (
        "⚠️ Not delivered to the prospect: the conversation is stopped, no longer taken over"
    )


async def test_buttons_of_an_erased_prospect_create_no_new_conversation(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    original = Message(**vars(message))  # as a colleague's screen still shows it
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    [taken] = fake_slack.messages("#sales-leads")
    await services.ladder.store.forget("telegram:42")
    await post(web, button_press(taken, slack.HAND_BACK, SALES))
    assert fake_slack.messages("#sales-leads")[0].buttons() == []  # nothing left to press
    await post(web, button_press(original, slack.TAKE_OVER, "U0OTHER"))
    assert [e["text"] for e in fake_slack.ephemeral()] == [slack.ERASED, slack.ERASED]
    assert await services.ladder.store.load("telegram:42") is None
    assert (await slack.load_posted(services.redis, "telegram:42")).thread_ts == ""


async def test_handing_back_an_opted_out_prospect_keeps_the_bot_quiet(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    await services.ladder.handle("telegram:42", Stop(), durable=False)
    [taken] = fake_slack.messages("#sales-leads")
    await post(web, button_press(taken, slack.HAND_BACK, SALES))
    note = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert note.text == (
        f"<@{SALES}> handed the chat back: the conversation is stopped, so the bot stays quiet."
    )


async def test_not_a_fit_marks_the_lead_once(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    original = Message(**vars(message))
    await post(web, button_press(message, slack.NOT_A_FIT, "U1"))
    [alert] = fake_slack.messages("#sales-leads")
    assert "Not a fit, says <@U1>" in alert.mrkdwn() and alert.buttons() == []
    await post(web, button_press(original, slack.NOT_A_FIT, "U2"))
    assert "<@U1> has already marked" in fake_slack.ephemeral()[0]["text"]


async def test_claim_won_and_not_a_fit_change_the_conversation_and_the_log(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    assert (await post(web, button_press(message, slack.CLAIM, "U1"))).status_code == 200
    assert (await post(web, button_press(message, slack.WON, "U1"))).status_code == 200
    stored = await services.ladder.store.load("telegram:42")
    assert stored is not None and stored.lead == Lead("slack:U1", "", "slack:U1")
    assert (stored.outcome, stored.status) == ("won", Status.ACTIVE)  # the ladder goes on
    logged = [(e.name, e.data.get("by"), e.data.get("outcome"))
              for e in await events_of(services, "telegram:42")
              if e.name in ("claimed", "won")]  # fmt: skip
    assert logged == [("claimed", "slack:U1", None), ("won", "slack:U1", "won")]
    exported = json.loads((await export(services.redis, "telegram:42")).to_json())
    assert {"claimed", "won"} <= {e["name"] for e in exported["events"]}
    [alert] = fake_slack.messages("#sales-leads")
    assert "🏆 Won, says <@U1>" in alert.mrkdwn() and alert.buttons() == []  # decided


async def test_not_a_fit_cancels_the_pending_follow_ups(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    assert [t.kind for t in await pending_timers(services.redis, "telegram:42")] == ["nudge"]
    assert (await post(web, button_press(message, slack.NOT_A_FIT, "U2"))).status_code == 200
    assert await pending_timers(services.redis, "telegram:42") == []
    stored = await services.ladder.store.load("telegram:42")
    assert stored is not None
    assert (stored.status, stored.outcome, stored.lead.verdict_by) == (
        Status.COMPLETED, "disqualified", "slack:U2"
    )  # fmt: skip
    [event] = [e for e in await events_of(services, "telegram:42") if e.name == "not_a_fit"]
    assert event.data["by"] == "slack:U2" and event.step == "offer"
    told = len(prospects(services).texts("telegram:42"))
    await services.ladder.handle("telegram:42", Text("Yes"))  # the prospect writes again
    assert await pending_timers(services.redis, "telegram:42") == []  # still no nudges
    assert len(prospects(services).texts("telegram:42")) == told  # replies come via handle


async def test_taking_over_an_opted_out_prospect_is_refused(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await services.ladder.handle("telegram:42", Stop(), durable=False)
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    assert "conversation is stopped" in fake_slack.ephemeral()[0]["text"]
    assert (await lead_of(services, "telegram:42")).taken_by == ""


async def test_a_failed_take_over_changes_nothing_and_says_so(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    """A conversation pinned to a flow that is not published (any failure inside the Ladder)."""
    ghost = Conversation(id="telegram:77", flow="ghost", version=3, step="x", profile=ANN)
    await services.ladder.store.commit(StepWrite(conversation=ghost))
    body = {"reason": "completed", "slack_channel": "#sales-leads",
            "conversation": json.loads(ghost.to_json())}  # fmt: skip
    await services.redis.xadd(
        keys.outbox(0), {"kind": "alert", "key": "ghost", "body": json.dumps(body)}
    )
    assert await deliver(services) == 1
    [message] = fake_slack.messages("#sales-leads")
    assert "*Flow*\nghost (`ghost` v3)" in message.mrkdwn()  # no title to show: the name
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    [warning] = fake_slack.ephemeral()
    assert warning["user"] == SALES and "UnknownFlow" in warning["text"]
    assert (await lead_of(services, "telegram:77")).taken_by == ""
    stored = await services.ladder.store.load("telegram:77")
    assert stored is not None and stored.status == Status.ACTIVE
    assert fake_slack.messages("#sales-leads", thread_ts=message.ts) == []


async def test_a_failed_hand_back_keeps_the_take_over(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, slack.TAKE_OVER, SALES))
    stored = await services.ladder.store.load("telegram:42")
    assert stored is not None  # its flow version disappears (any failure inside the Ladder)
    await services.ladder.store.commit(StepWrite(conversation=stored.with_(flow="ghost")))
    [taken] = fake_slack.messages("#sales-leads")
    await post(web, button_press(taken, slack.HAND_BACK, SALES))
    assert "UnknownFlow" in fake_slack.ephemeral()[-1]["text"]
    assert (await lead_of(services, "telegram:42")).taken_by == f"slack:{SALES}"
    after = await services.ladder.store.load("telegram:42")
    assert after is not None and after.status == Status.PAUSED


async def test_bad_or_stale_signatures_get_401_and_change_nothing(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    before = fake_slack.calls()
    press = button_press(message, slack.TAKE_OVER, SALES)
    assert (await post(web, press, secret="not-the-secret")).status_code == 401
    assert (await post(web, press, age=6 * 60)).status_code == 401  # older than 5 minutes
    async with httpx.AsyncClient() as client:  # not signed at all
        unsigned = await client.post(f"{web}/slack/events", content=press)
    assert unsigned.status_code == 401
    reply = json.dumps(fake_slack.user_reply(message, SALES, "hi", "EvX")).encode()
    assert (await post(web, reply, kind="json", secret="nope")).status_code == 401
    assert fake_slack.calls() == before
    assert await slack.load_posted(services.redis, "telegram:42") == slack.Posted(
        channel=message.channel, ts=message.ts
    )
    stored = await services.ladder.store.load("telegram:42")
    assert stored is not None and stored.status == Status.ACTIVE
    assert not await services.redis.exists(keys.event_key("EvX"))


async def test_url_verification_echoes_the_challenge(services: Services, web: str) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"}).encode()
    response = await post(web, body, kind="json")
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}


async def test_ladder_stats_shows_todays_funnel(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    await to_email_alert(services)
    response = await post(web, slash_command("stats"))
    assert response.status_code == 200
    text = response.json()["text"]
    assert "*slack-test*: 1 started, 0 completed" in text
    assert "email: 1 reached, 1 committed" in text
    usage = await post(web, slash_command("help"))
    assert "Usage: `/ladder stats" in usage.json()["text"]


# --- modes ---------------------------------------------------------------------------------------


def test_the_mode_follows_the_settings(tmp_path: Path) -> None:
    none = settings_for(tmp_path)
    webhook = replace(none, slack_webhook_url="http://127.0.0.1:9/hook")
    app = replace(webhook, slack_bot_token="xoxb-1", slack_signing_secret="s")
    assert (slack.slack_mode(none), slack.slack_mode(webhook), slack.slack_mode(app)) == (
        "none", "webhook", "app"
    )  # fmt: skip
    assert "Slack mode: none" in slack.startup_message(none)
    assert "Slack mode: webhook" in slack.startup_message(webhook)
    assert "Slack mode: app" in slack.startup_message(app)
    assert "503" in slack.startup_message(replace(app, slack_signing_secret=None))


def test_the_startup_line_warns_when_slack_is_not_usable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ladderbot.slack")
    app = settings_for(tmp_path, slack_bot_token="xoxb-1", slack_signing_secret="s")
    for config in (settings_for(tmp_path), app, replace(app, slack_signing_secret=None)):
        assert slack.log_startup(config) == slack.slack_mode(config)
    levels = [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records]
    assert levels == [
        ("WARNING", "Slack mode: none"), ("INFO", "Slack mode: app"), ("WARNING", "Slack mode: app")
    ]  # fmt: skip


async def test_app_mode_without_a_signing_secret_refuses_slack_requests(
    services: Services,
) -> None:
    services_without = replace(
        services, settings=replace(services.settings, slack_signing_secret=None)
    )
    app = create_app(services_without)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        response = await client.post("http://ladder/slack/events", content=b"{}")
    assert response.status_code == 503 and "SLACK_SIGNING_SECRET" in response.json()["error"]


async def test_no_slack_leaves_alerts_waiting_in_the_outbox(redis: Redis, flows_dir: Path) -> None:
    services = await build(settings_for(flows_dir), clock=ManualClock(), redis=redis)
    assert slack.outbox_handler(services) is None and slack.routes(services) == []
    await to_email_alert(services)
    assert await sharded.total(redis.xlen, keys.outbox) == 1


async def test_webhook_mode_posts_alerts_without_buttons_and_retries_a_429(
    redis: Redis, fake_slack: FakeSlack, flows_dir: Path
) -> None:
    settings = settings_for(flows_dir, slack_webhook_url=fake_slack.webhook_url)
    services = await build(settings, clock=ManualClock(), redis=redis)
    assert slack.routes(services) == []
    fake_slack.fail_next("webhook", 429, retry_after=1, error="rate_limited")
    await to_email_alert(services)
    handler = slack.outbox_handler(services)
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
    retries = [await redis.hgetall(keys.outbox_retries(shard)) for shard in keys.shards()]
    [retry] = [json.loads(v) for found in retries for v in found.values()]
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
