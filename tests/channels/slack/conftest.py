"""Fixtures of the Slack tests: the fake Slack server, a flow, services with Slack as an app
(the prospects' side a recording Sender), and the real web app on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import Services, build
from bot.web import create_app
from domain.clock import ManualClock
from tests.channels.slack.support import FLOW, Prospects, settings_for
from tests.fakes.http import listening_socket, serving
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    (tmp_path / "slack-test.yaml").write_text(FLOW)
    return tmp_path


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


@pytest.fixture
async def web(services: Services) -> AsyncIterator[str]:
    """The real web app on a free loopback port, in this test's event loop."""
    sock, url = listening_socket()
    async with serving(create_app(services), sock):
        yield url
