"""Fixtures for the Telegram channel tests: the fake Bot API, a flow, settings, web processes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.app import Services, build
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.webhook import SECRET_HEADER
from bot.config import Settings
from bot.web import create_app
from domain.model import Conversation
from storage import keys
from storage.connect import connect
from tests.fakes.http import listening_socket, serving
from tests.fakes.telegram_api import TOKEN, FakeTelegram

WEBHOOK_SECRET = "hook-secret"
CONV = "telegram:42"  # Ada, the prospect most tests follow
TG_FLOW = """\
flow: tg-ladder
title: Telegram test ladder
steps:
  - id: welcome
    say: "Hi {first_name}!"
    ask: "Want our 2-minute checklist?"
    choices:
      - {label: "Yes please", go: role}
      - {label: "Not now", go: later, commit: false}
  - id: role
    ask: "What's your role?"
    choices: [Founder, Sales lead]
    save_as: role
  - id: email
    kind: input
    ask: "Where should we send it?"
    validate: email
    save_as: email
  - id: checklist
    kind: resource
    ask: "Here it is, {first_name}."
    url: "https://example.com/checklist.pdf?ref={conversation_id}"
    button: "Open the checklist"
    document: checklist.txt
  - id: webinar
    kind: webinar
    ask: "Join the 30-minute live demo?"
    slots: ["2030-12-03T16:00:00+01:00", "2030-12-05T10:00:00+01:00"]
    choices: [{label: "No thanks", go: done, commit: false}]
  - id: done
    kind: end
    outcome: won
    say: "Thank you, {first_name}!"
  - id: later
    kind: end
    outcome: declined
    say: "No problem. Send /restart any time."
"""


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    (tmp_path / "tg-ladder.yaml").write_text(TG_FLOW)
    (tmp_path / "checklist.txt").write_text("The 2-minute checklist\n")
    return tmp_path


async def stored(redis: Redis, conversation: str = CONV) -> Conversation | None:
    """The conversation as stored in Redis, None if there is none."""
    rev, doc = await redis.hmget(keys.conversation(conversation), ["v", "doc"])
    return Conversation.from_json(doc, int(rev)) if doc else None


def telegram_settings(
    api: FakeTelegram, flows_dir: Path, redis_url: str, **changes: Any
) -> Settings:
    """Settings for a process under test; flood limits high unless a test sets them."""
    base = replace(
        Settings.from_env(),
        redis_url=redis_url,
        flows_dir=flows_dir,
        default_flow=None,
        telegram_token=TOKEN,
        telegram_api_url=api.url,
        telegram_webhook_secret=WEBHOOK_SECRET,
        public_url=None,
        secret="test-secret",
        telegram_chat_rate=1000.0,
        telegram_bot_rate=1000.0,
    )
    return replace(base, **changes)


@dataclass
class WebProcess:
    """One web process under test: its own Services and Redis client, served by uvicorn."""

    url: str
    services: Services
    http: httpx.AsyncClient

    async def post(self, update: dict[str, Any], secret: str | None = WEBHOOK_SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        response = await self.http.post(
            f"{self.url}/telegram/webhook", json=update, headers=headers
        )
        return response.status_code

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(f"{self.url}{path}")


@asynccontextmanager
async def web_process(settings: Settings, sock: Any = None) -> AsyncIterator[WebProcess]:
    """Build services and serve create_app on `sock` (default: a fresh port)."""
    if sock is None:
        sock, url = listening_socket()
    else:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert settings.redis_url
    services = await build(settings, redis=connect(settings.redis_url))
    app = create_app(services)
    try:
        async with serving(app, sock), httpx.AsyncClient(timeout=30) as http:
            yield WebProcess(url, services, http)
    finally:
        sender = services.senders.get("telegram")
        if isinstance(sender, TelegramSender):
            await sender.aclose()
        await services.redis.aclose()


def with_value(update: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `update` with the field at `path` (dotted) set to `value`."""
    changed = json.loads(json.dumps(update))
    *parents, last = path.split(".")
    place = changed
    for key in parents:
        place = place[key]
    place[last] = value
    return changed
