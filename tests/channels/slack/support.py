"""What the Slack tests share: the flow, the prospect, signed posts to /slack/events, walking a
prospect to an alert, one outbox pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import httpx

from bot.analytics import read_events
from bot.app import Services
from bot.config import Settings
from domain.model import Action, Conversation, DomainEvent, Lead, Profile, Say, Start, Text
from storage.outbox import Handler, Outbox, OutboxPolicy
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack, Message, sign

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


def prospects(services: Services) -> Prospects:
    sender = services.senders["telegram"]
    assert isinstance(sender, Prospects)
    return sender


async def post(
    web: str, body: bytes, *, kind: str = "form", secret: str = SIGNING_SECRET, age: int = 0
) -> httpx.Response:
    """POST a body to /slack/events signed as Slack would (`age` seconds ago)."""
    content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
    headers = {"Content-Type": content_type, **sign(body, int(time.time()) - age, secret)}
    async with httpx.AsyncClient(timeout=60) as client:  # a reply may wait out a channel's retries
        return await client.post(f"{web}/slack/events", content=body, headers=headers)


async def to_email_alert(services: Services, chat: str = "42") -> str:
    """Walk a prospect to the email_given alert; returns the conversation id."""
    conv = f"telegram:{chat}"
    await services.conversations.handle(conv, Start("linkedin-ads"), profile=ANN, durable=False)
    await services.conversations.handle(conv, Text("Founder"), durable=False)
    await services.conversations.handle(conv, Text("ann@example.com"), durable=False)
    return conv


async def lead_of(services: Services, conversation_id: str) -> Lead:
    stored = await services.conversations.store.load(conversation_id)
    assert stored is not None
    return stored.lead


async def events_of(services: Services, conversation_id: str) -> list[DomainEvent]:
    return [e for e in await read_events(services.redis) if e.conversation == conversation_id]


async def deliver(services: Services) -> int:
    """One outbox pass (a failed item waits out its backoff: it is not retried in this pass)."""
    handler = services.slack
    assert handler is not None
    return await Outbox(services.redis, "test", POLICY).deliver_once(handler)


async def deliver_all(services: Services) -> int:
    """One outbox pass of everything: the prospects' messages, alerts and relays."""
    return await Outbox(services.redis, "test", POLICY).deliver_once(services.deliveries())


async def alert_message(services: Services, fake_slack: FakeSlack) -> Message:
    conv = await to_email_alert(services)
    assert await deliver(services) == 1
    [message] = fake_slack.messages("#sales-leads")
    assert (await services.slack_records.posted(conv)).ts == message.ts
    return message


async def deliver_until(outbox: Outbox, handler: Handler, done: Callable[[], object]) -> None:
    """Outbox passes until `done()` holds (the deadline only bounds a test that would hang)."""
    deadline = time.monotonic() + 120
    while not done():
        assert time.monotonic() < deadline, "nothing delivered"
        await outbox.deliver_once(handler)
        await asyncio.sleep(0.02)
