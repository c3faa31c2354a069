"""POST /slack/events: signatures, url_verification, `/ladder stats`, and the Slack modes."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.app import Services, build
from bot.channels.slack import blocks as kit
from bot.channels.slack import events, mode
from bot.web import create_app
from domain.clock import ManualClock
from domain.model import Status
from storage import keys
from storage.slack import Posted
from tests import sharded
from tests.channels.slack.support import SALES, alert_message, post, settings_for, to_email_alert
from tests.fakes.slack_api import FakeSlack, button_press, slash_command


async def test_bad_or_stale_signatures_get_401_and_change_nothing(
    services: Services, fake_slack: FakeSlack, web: str
) -> None:
    message = await alert_message(services, fake_slack)
    before = fake_slack.calls()
    press = button_press(message, kit.TAKE_OVER, SALES)
    assert (await post(web, press, secret="not-the-secret")).status_code == 401
    assert (await post(web, press, age=6 * 60)).status_code == 401  # older than 5 minutes
    async with httpx.AsyncClient() as client:  # not signed at all
        unsigned = await client.post(f"{web}/slack/events", content=press)
    assert unsigned.status_code == 401
    reply = json.dumps(fake_slack.user_reply(message, SALES, "hi", "EvX")).encode()
    assert (await post(web, reply, kind="json", secret="nope")).status_code == 401
    assert fake_slack.calls() == before
    assert await services.slack_records.posted("telegram:42") == Posted(
        channel=message.channel, ts=message.ts
    )
    stored = await services.conversations.store.load("telegram:42")
    assert stored is not None and stored.status == Status.ACTIVE
    assert not await services.redis.exists(keys.seen("telegram:42", "slack:event:EvX"))


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
    assert (mode.slack_mode(none), mode.slack_mode(webhook), mode.slack_mode(app)) == (
        "none", "webhook", "app"
    )  # fmt: skip
    assert "Slack mode: none" in mode.startup_message(none)
    assert "Slack mode: webhook" in mode.startup_message(webhook)
    assert "Slack mode: app" in mode.startup_message(app)
    assert "503" in mode.startup_message(replace(app, slack_signing_secret=None))


def test_the_startup_line_warns_when_slack_is_not_usable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.channels.slack.mode")
    app = settings_for(tmp_path, slack_bot_token="xoxb-1", slack_signing_secret="s")
    for config in (settings_for(tmp_path), app, replace(app, slack_signing_secret=None)):
        assert mode.log_startup(config) == mode.slack_mode(config)
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
    assert services.slack is None
    assert events.routes(services.settings, services.slack_listeners()) == []
    await to_email_alert(services)
    assert await sharded.total(redis.xlen, keys.outbox) == 1
