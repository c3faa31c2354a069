"""/metrics read with prometheus_client's own text parser while a ladder is walked on a real
redis-server: the per-process counters move, and the gauges follow what waits in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot.app import Services, build
from bot.config import Settings
from bot.web import create_app
from bot.worker import Worker
from domain.clock import ManualClock
from domain.model import Conversation, Say, Start, Text
from storage.ratelimit import Rate
from tests.channels.telegram.test_cli import ladder_env
from tests.channels.telegram.test_sender import new_sender
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import FakeReceiver
from tests.processes import LadderProcess
from tests.redis_server import free_port
from tests.test_webhooks import ADA, FLOW, SECRET_ENV, hooks_file

TOKEN = "metrics-token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as fake:
        yield fake


async def scrape(services: Services) -> tuple[str, Samples]:
    """The page, and its samples by (name, labels) as prometheus_client parses them."""
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ladder") as http:
        page = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(page.text)
        for s in family.samples
    }
    return page.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_counters_move_as_a_ladder_is_walked(
    redis: Redis, tmp_path: Path, receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, receiver.secret)
    settings = replace(
        Settings.from_env(),
        metrics_token=TOKEN,
        webhooks_file=hooks_file(tmp_path, receiver.url, "[started, committed]"),
    )
    clock = ManualClock()
    services = await build(settings, clock=clock, redis=redis, paths=[FLOW])
    worker = Worker(services.conversations, {}, clock)
    page, before = await scrape(services)

    conversations = services.conversations
    await conversations.handle("telegram:42", Start(), profile=ADA, update_key="telegram:update:1")
    await conversations.handle("telegram:42", Start(), profile=ADA, update_key="telegram:update:1")
    await conversations.handle("telegram:42", Text("yes"), durable=False)
    receiver.fail_next(500)
    await worker.deliver()  # one webhook fails, one goes: which one is up to the outbox
    waiting = (await scrape(services))[1]
    clock.advance(timedelta(minutes=5))
    await worker.deliver()
    clock.advance(timedelta(hours=25))  # the first follow-up fell due an hour ago
    due = (await scrape(services))[1]
    await worker.handle_due()
    _, after = await scrape(services)

    for family in ("ladder_updates", "ladder_step_seconds", "ladder_deliveries",
                   "ladder_outbox_length", "ladder_timers_due", "ladder_flood_waits"):  # fmt: skip
        assert f"# HELP {family}" in page and f"# TYPE {family}" in page

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ladder_updates_total", channel="telegram", result="handled") == 2
    assert moved("ladder_updates_total", channel="telegram", result="duplicate") == 1
    assert moved("ladder_updates_total", channel="timer", result="handled") == 1
    assert moved("ladder_step_seconds_count", channel="telegram") == 3
    assert moved("ladder_deliveries_total", kind="webhook", result="failed") == 1
    assert moved("ladder_deliveries_total", kind="webhook", result="delivered") == 2
    assert moved("ladder_timer_lateness_seconds_count") == 1
    assert moved("ladder_timer_lateness_seconds_sum") >= 3600
    assert len(receiver.delivered()) == 2

    # the Redis gauges: the welcome message waits (no Telegram sender here), the failed
    # webhook waited for its retry, the follow-up was due and late until the worker fired it
    assert value(waiting, "ladder_outbox_length") == 2  # the welcome message + the retry
    assert value(waiting, "ladder_outbox_oldest_age_seconds") >= 0
    assert (value(due, "ladder_timers_due"), value(due, "ladder_timers_late")) == (1, 1)
    assert (value(after, "ladder_timers_due"), value(after, "ladder_timers_late")) == (0, 0)
    assert value(after, "ladder_outbox_dead") == 0


async def test_flood_limit_waits_are_counted(
    telegram_api: FakeTelegram, redis: Redis, tmp_path: Path
) -> None:
    settings = replace(Settings.from_env(), metrics_token=TOKEN)
    services = await build(settings, redis=redis, paths=[FLOW])
    _, before = await scrape(services)
    sender = new_sender(telegram_api, redis, tmp_path, per_chat=Rate(20.0))
    conv = Conversation(id="telegram:42", flow="test-ladder", version=1, step="welcome")
    await sender.deliver(conv, [Say("one"), Say("two"), Say("three")])
    await sender.aclose()
    _, after = await scrape(services)

    assert len(telegram_api.messages(42)) == 3
    waits = value(after, "ladder_flood_waits_total") - value(before, "ladder_flood_waits_total")
    assert waits >= 2  # the 2nd and 3rd message to the chat waited for its limit
    waited = value(after, "ladder_flood_wait_seconds_total")
    assert waited > value(before, "ladder_flood_wait_seconds_total")


async def test_a_worker_serves_its_own_metrics_behind_the_token(
    telegram_api: FakeTelegram, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "ladder.yaml").write_text(FLOW.read_text())
    port = free_port()
    env = ladder_env(telegram_api, tmp_path, redis_url, METRICS_PORT=str(port),
                     METRICS_TOKEN=TOKEN)  # fmt: skip
    with LadderProcess("worker", env=env) as worker:
        await worker.wait_for("worker metrics on port")
        url = f"http://127.0.0.1:{port}/metrics"
        async with httpx.AsyncClient() as http:
            for _ in range(600):  # until uvicorn listens (bounded)
                try:
                    refused = await http.get(url)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            page = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert worker.stop() == 0  # SIGTERM stops the rounds and the metrics server

    assert refused.status_code == 401
    names = {family.name for family in text_string_to_metric_families(page.text)}
    assert {"ladder_deliveries", "ladder_timer_lateness_seconds", "ladder_outbox_length"} <= names
