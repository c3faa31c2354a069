"""One Slack message per outbox item, across retries, lost answers and killed consumers.
A real redis-server, the fake Slack server driven through the real slack-sdk clients, and
signed requests to the real web app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import Services
from bot.channels.slack import blocks as kit
from bot.channels.slack.delivery import SlackDelivery, outbox_handler
from domain.model import Text
from storage.connect import connect
from storage.outbox import Outbox
from storage.redis import RedisConversationStore
from storage.slack import RedisSlackRecords
from tests.channels.slack.support import POLICY, SALES, deliver, deliver_until, post, to_email_alert
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack, button_press


async def test_slack_500_then_429_then_success_posts_one_message(
    services: Services, fake_slack: FakeSlack
) -> None:
    await to_email_alert(services)
    fake_slack.fail_next("chat.postMessage", 500)
    fake_slack.fail_next("chat.postMessage", 429, retry_after=1, error="ratelimited")
    handler = services.slack
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
    await post(web, button_press(message, kit.TAKE_OVER, SALES))
    await services.conversations.handle("telegram:42", Text("Hello?"), durable=False)
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
        other = outbox_handler(
            services.settings, services.flows, RedisConversationStore(other_redis),
            RedisSlackRecords(other_redis),
        )  # fmt: skip
        # both stay alive: a long lease keeps a held-up one from being taken for dead
        one_at_a_time = replace(POLICY, batch=1, lease=600)
        consumers = [
            (Outbox(services.redis, "a", one_at_a_time), services.slack),
            (Outbox(other_redis, "b", one_at_a_time), other),
        ]

        async def run(outbox: Outbox, handler: SlackDelivery | None) -> int:
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
from domain.clock import ManualClock
from bot.config import Settings
from storage.outbox import Handler, Outbox, OutboxPolicy

async def main():
    settings = dataclasses.replace(Settings.from_env(), slack_bot_token=sys.argv[1],
                                   slack_api_url=sys.argv[2], telegram_token=None)
    services = await build(settings, clock=ManualClock())
    print("ready", flush=True)
    await Outbox(services.redis, "doomed", OutboxPolicy(lease=30)).deliver_once(
        services.slack)

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
    handler = services.slack
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
    lead = await services.slack_records.posted("telegram:42")
    assert (lead.channel, lead.ts) == (message.channel, message.ts)
    assert await survivor.backlog() == 0
