"""A whole deployment on a real Redis Cluster (three redis-servers on loopback): prospects walk
a ladder through the Telegram webhook, follow-ups fire from the worker, the outbox delivers
what the web process could not; the keys spread over every node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from bot.analytics import read_events
from bot.app import Services, build
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.webhook import SECRET_HEADER
from bot.config import Settings
from bot.web import create_app
from bot.worker import Worker
from domain.clock import ManualClock
from storage.connect import connect
from storage.outbox import Outbox
from storage.redis import RedisConversationStore
from tests.fakes.http import listening_socket, serving
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.redis_server import RedisClusterServers

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SECRET = "hook-secret"
FLOW = """\
flow: cluster-ladder
follow_up: {after: 1h, max: 1, say: "Still there, {first_name}?"}
steps:
  - id: welcome
    say: "Hi {first_name}!"
    ask: "Want our 2-minute checklist?"
    choices:
      - {label: "Yes please", go: email}
      - {label: "Not now", go: later, commit: false}
  - id: email
    kind: input
    ask: "Where should we send it?"
    validate: email
    save_as: email
  - id: done
    kind: end
    outcome: won
    say: "Thank you, {first_name}!"
  - id: later
    kind: end
    outcome: declined
    say: "No problem."
"""
PROSPECTS = 24  # enough for every node to hold some of the shards they fall in


@pytest.fixture
async def on_cluster(
    redis_cluster: RedisClusterServers, telegram_api: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Services, str]]:
    """The web process's services on the cluster (a moved clock for the follow-ups), served."""
    (tmp_path / "cluster-ladder.yaml").write_text(FLOW)
    client = connect(redis_cluster.url)
    await client.flushdb()
    settings = replace(
        Settings.from_env(), redis_url=redis_cluster.url, flows_dir=tmp_path, default_flow=None,
        telegram_token=TOKEN, telegram_api_url=telegram_api.url, telegram_webhook_secret=SECRET,
        public_url=None, secret="test-secret", telegram_chat_rate=1000.0,
        telegram_bot_rate=1000.0,
    )  # fmt: skip
    services = await build(settings, clock=ManualClock(T0), redis=client)
    sock, url = listening_socket()
    try:
        async with serving(create_app(services), sock):
            yield services, url
    finally:
        sender = services.senders.get("telegram")
        if isinstance(sender, TelegramSender):
            await sender.aclose()
        await client.aclose()


async def test_a_ladder_with_follow_ups_and_the_outbox_runs_on_a_redis_cluster(
    on_cluster: tuple[Services, str], telegram_api: FakeTelegram, redis_cluster: RedisClusterServers
) -> None:
    services, url = on_cluster
    assert isinstance(services.redis, RedisCluster)  # found out from the url alone
    prospects = [telegram_api.prospect(1000 + n, f"P{n}") for n in range(PROSPECTS)]
    ada = telegram_api.prospect(42, "Ada")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def post(update: dict[str, object]) -> None:
            answer = await http.post(
                "/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}
            )
            assert answer.status_code == 200

        await post(ada.text("/start"))
        await post(ada.press("Yes please"))
        await post(ada.text("ada@example.com"))
        assert ada.last.text == "Thank you, Ada!"
        sender = services.senders["telegram"]
        assert isinstance(sender, TelegramSender)
        sender.attempts = 1  # the web process leaves a failed send to the worker at once
        telegram_api.fail_next("sendMessage", error_code=502, retry_after=None, description="")
        for prospect in prospects:
            await post(prospect.text("/start"))
    late = [p for p in prospects if not p.messages()]
    assert len(late) == 1  # the send that failed waits in the outbox
    clock = services.clock
    assert isinstance(clock, ManualClock)
    worker = Worker(services.conversations, services.senders, clock)
    assert await worker.deliver() == 1
    assert late[0].last.text == f"Hi {late[0].user['first_name']}!\n\nWant our 2-minute checklist?"

    await worker.fast_forward(clock, T0 + timedelta(hours=2))

    for prospect in prospects:
        nudges = [m.text for m in prospect.messages() if m.text and "Still there" in m.text]
        nudge = f"Still there, {prospect.user['first_name']}?\n\nWant our 2-minute checklist?"
        assert nudges == [nudge]  # once each
    assert not [m for m in ada.messages() if m.text and "Still there" in m.text]
    outbox = Outbox(services.redis)
    assert await outbox.dead_count() == 0
    assert [i.kind for _, i in await outbox.about("telegram:42")] == ["alert"]  # no Slack here
    assert await outbox.backlog() == 1  # every message went
    events = await read_events(services.redis, "cluster-ladder")
    assert [e.data.get("outcome") for e in events if e.name == "completed"] == ["won"]
    assert sum(e.name == "nudged" for e in events) == PROSPECTS
    stored = [c async for c in RedisConversationStore(services.redis).all()]
    assert len(stored) == PROSPECTS + 1
    assert all(size > 0 for size in await redis_cluster.keys_per_node())
