"""The sales team's buttons and thread replies: signed requests to the real web app served by
uvicorn on 127.0.0.1, a real redis-server, the fake Slack server. The prospect's side is a
recording Sender (a double of the channel port)."""

from __future__ import annotations

import asyncio
import json

from bot.app import Services
from bot.channels.slack import blocks as kit
from bot.channels.slack import texts
from bot.privacy import export
from domain.model import Conversation, Lead, Status, Stop, Text
from storage import keys
from storage.base import StepWrite
from storage.scheduler import RedisScheduler
from tests.channels.slack.support import (
    ANN,
    SALES,
    alert_message,
    deliver,
    events_of,
    lead_of,
    post,
    prospects,
)
from tests.fakes.slack_api import FakeSlack, Message, button_press

# --- buttons -------------------------------------------------------------------------------------


async def test_claim_updates_the_alert_and_a_second_claim_is_refused_politely(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    original = Message(**vars(message))  # as everyone's screen still shows it
    response = await post(web, button_press(message, kit.CLAIM, "U1"))
    assert response.status_code == 200
    [updated] = fake_slack.messages("#sales-leads")
    assert "Claimed by <@U1>" in updated.mrkdwn()
    assert kit.CLAIM not in [b["action_id"] for b in updated.buttons()]
    assert "*Answers*" in updated.mrkdwn()  # the alert itself is kept
    response = await post(web, button_press(original, kit.CLAIM, "U2"))
    assert response.status_code == 200
    [refusal] = fake_slack.ephemeral()
    assert refusal["user"] == "U2" and "<@U1> has already claimed" in refusal["text"]
    assert (await lead_of(services, "telegram:42")).claimed_by == "slack:U1"
    assert len(fake_slack.calls("chat.update")) == 2  # the refused presser's stale screen too
    # the prospect's next alert already shows the claim
    await services.conversations.handle("telegram:42", Text("Yes"), durable=False)
    assert await deliver(services) == 1
    completed = fake_slack.messages("#sales-leads")[-1]
    assert "completed the ladder" in completed.text and "Claimed by <@U1>" in completed.mrkdwn()
    assert kit.CLAIM not in [b["action_id"] for b in completed.buttons()]


async def test_simultaneous_claims_have_one_winner(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    users = [f"U{n}" for n in range(8)]
    await asyncio.gather(*(post(web, button_press(message, kit.CLAIM, u)) for u in users))
    winner = (await lead_of(services, "telegram:42")).claimed_by.removeprefix("slack:")
    assert winner in users
    assert sorted(e["user"] for e in fake_slack.ephemeral()) == sorted(set(users) - {winner})
    claims = [e for e in await events_of(services, "telegram:42") if e.name == "claimed"]
    assert [e.data["by"] for e in claims] == [f"slack:{winner}"]  # one claim in the log


async def test_buttons_of_an_erased_prospect_create_no_new_conversation(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    original = Message(**vars(message))  # as a colleague's screen still shows it
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    [taken] = fake_slack.messages("#sales-leads")
    await services.conversations.forget("telegram:42")
    await post(web, button_press(taken, kit.HAND_BACK, SALES))
    assert fake_slack.messages("#sales-leads")[0].buttons() == []  # nothing left to press
    await post(web, button_press(original, kit.TAKE_OVER, "U0OTHER"))
    assert [e["text"] for e in fake_slack.ephemeral()] == [texts.ERASED, texts.ERASED]
    assert await services.conversations.store.load("telegram:42") is None
    assert (await services.slack_records.posted("telegram:42")).thread_ts == ""


async def test_handing_back_an_opted_out_prospect_keeps_the_bot_quiet(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    await services.conversations.handle("telegram:42", Stop(), durable=False)
    [taken] = fake_slack.messages("#sales-leads")
    await post(web, button_press(taken, kit.HAND_BACK, SALES))
    note = fake_slack.messages("#sales-leads", thread_ts=message.ts)[-1]
    assert note.text == (
        f"<@{SALES}> handed the chat back: the conversation is stopped, so the bot stays quiet."
    )


async def test_not_a_fit_marks_the_lead_once(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    original = Message(**vars(message))
    await post(web, button_press(message, kit.NOT_A_FIT, "U1"))
    [alert] = fake_slack.messages("#sales-leads")
    assert "Not a fit, says <@U1>" in alert.mrkdwn() and alert.buttons() == []
    await post(web, button_press(original, kit.NOT_A_FIT, "U2"))
    assert "<@U1> has already marked" in fake_slack.ephemeral()[0]["text"]


async def test_claim_won_and_not_a_fit_change_the_conversation_and_the_log(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    assert (await post(web, button_press(message, kit.CLAIM, "U1"))).status_code == 200
    assert (await post(web, button_press(message, kit.WON, "U1"))).status_code == 200
    stored = await services.conversations.store.load("telegram:42")
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
    timers = RedisScheduler(services.redis).of
    assert [t.kind for t in await timers("telegram:42")] == ["nudge"]
    assert (await post(web, button_press(message, kit.NOT_A_FIT, "U2"))).status_code == 200
    assert await RedisScheduler(services.redis).of("telegram:42") == []
    stored = await services.conversations.store.load("telegram:42")
    assert stored is not None
    assert (stored.status, stored.outcome, stored.lead.verdict_by) == (
        Status.COMPLETED, "disqualified", "slack:U2"
    )  # fmt: skip
    [event] = [e for e in await events_of(services, "telegram:42") if e.name == "not_a_fit"]
    assert event.data["by"] == "slack:U2" and event.step == "offer"
    told = len(prospects(services).texts("telegram:42"))
    await services.conversations.handle("telegram:42", Text("Yes"))  # the prospect writes again
    assert await RedisScheduler(services.redis).of("telegram:42") == []  # still no nudges
    assert len(prospects(services).texts("telegram:42")) == told  # replies come via handle


async def test_taking_over_an_opted_out_prospect_is_refused(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await services.conversations.handle("telegram:42", Stop(), durable=False)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    assert "conversation is stopped" in fake_slack.ephemeral()[0]["text"]
    assert (await lead_of(services, "telegram:42")).taken_by == ""


async def test_a_failed_take_over_changes_nothing_and_says_so(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    """A conversation pinned to a flow that is not published (any failure in `Conversations`)."""
    ghost = Conversation(id="telegram:77", flow="ghost", version=3, step="x", profile=ANN)
    await services.conversations.store.commit(StepWrite(conversation=ghost))
    body = {"reason": "completed", "slack_channel": "#sales-leads",
            "conversation": json.loads(ghost.to_json())}  # fmt: skip
    await services.redis.xadd(
        keys.outbox(0), {"kind": "alert", "key": "ghost", "body": json.dumps(body)}
    )
    assert await deliver(services) == 1
    [message] = fake_slack.messages("#sales-leads")
    assert "*Flow*\nghost (`ghost` v3)" in message.mrkdwn()  # no title to show: the name
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    [warning] = fake_slack.ephemeral()
    assert warning["user"] == SALES and "UnknownFlow" in warning["text"]
    assert (await lead_of(services, "telegram:77")).taken_by == ""
    stored = await services.conversations.store.load("telegram:77")
    assert stored is not None and stored.status == Status.ACTIVE
    assert fake_slack.messages("#sales-leads", thread_ts=message.ts) == []


async def test_a_failed_hand_back_keeps_the_take_over(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    stored = await services.conversations.store.load("telegram:42")
    assert stored is not None  # its flow version disappears (any failure inside `Conversations`)
    await services.conversations.store.commit(StepWrite(conversation=stored.with_(flow="ghost")))
    [taken] = fake_slack.messages("#sales-leads")
    await post(web, button_press(taken, kit.HAND_BACK, SALES))
    assert "UnknownFlow" in fake_slack.ephemeral()[-1]["text"]
    assert (await lead_of(services, "telegram:42")).taken_by == f"slack:{SALES}"
    after = await services.conversations.store.load("telegram:42")
    assert after is not None and after.status == Status.PAUSED
