"""The replies of `ladder serve` survive what happens after their step is stored: the web
process killed while sending, Redis restarted mid-ladder. Real processes (`ladder serve`,
`ladder worker`), real redis-server, the fake Bot API recording every message."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.channels.telegram.webhook import SECRET_HEADER
from storage import keys
from storage.connect import connect
from tests import sharded
from tests.channels.conftest import WEBHOOK_SECRET, stored
from tests.channels.telegram.test_cli import ladder, ladder_env, wait_healthy
from tests.fakes.telegram_api import FakeTelegram, Prospect
from tests.redis_server import RedisServer, free_port

WELCOME = "Hi Ada!\n\nWant our 2-minute checklist?"
STEPS = 4
BUTTONS_FLOW = (
    "flow: buttons\ntitle: Buttons\nsteps:\n"
    + "".join(
        f"  - id: q{n}\n    ask: 'Question {n}?'\n    choices: [Yes, No]\n" for n in range(STEPS)
    )
    + "  - id: done\n    kind: end\n    say: Thanks\n"
)
LADDER = [f"Question {n}?" for n in range(STEPS)] + ["Thanks"]


async def post(url: str, update: dict[str, Any]) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{url}/telegram/webhook", json=update, headers={SECRET_HEADER: WEBHOOK_SECRET}
        )
    return response.status_code


async def settled(redis: Redis) -> bool:
    """No message for a prospect waits in the outbox (alerts do: Slack is not configured)."""
    entries = await sharded.entries(redis, keys.outbox)
    return not [f for _, f in entries if f["kind"].startswith("message:")]


async def wait_until_settled(redis: Redis, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await settled(redis):
        assert time.monotonic() < deadline, "messages still wait in the outbox"
        await asyncio.sleep(0.05)


async def test_a_reply_whose_web_process_was_killed_while_sending_arrives_once(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = ladder_env(telegram_api, flows_dir, redis_url, PORT=str(port))
    ada = telegram_api.prospect(42)
    start = ada.text("/start")
    arrived = telegram_api.hold("sendMessage")  # the reply's send stalls: kill the sender then
    with ladder("serve", "--host", "127.0.0.1", env=env) as web:
        await wait_healthy(url, web)
        answer = asyncio.create_task(post(url, start))
        assert await asyncio.to_thread(arrived.wait, 30)
        assert (await stored(redis)) is not None  # the step is committed, its reply not sent
        web.send_signal(signal.SIGKILL)
        web.wait(timeout=10)
        with pytest.raises(httpx.TransportError):
            await answer
    telegram_api.release("sendMessage", process=False)  # that request never reached Telegram
    assert ada.messages() == []

    with ladder("worker", env=env):
        await telegram_api.wait_messages(42, 1, seconds=60)
        await wait_until_settled(redis)
    with ladder("serve", "--host", "127.0.0.1", env=env) as web:  # Telegram retries the update
        await wait_healthy(url, web)
        assert await post(url, start) == 200

    assert [m.text for m in ada.messages()] == [WELCOME]


async def climb(url: str, person: Prospect) -> None:
    """The prospect's whole ladder as Telegram drives it: an update is posted again until it is
    answered 2xx; the next one is a press on the bot's next message, whoever sends it."""
    update = person.text("/start")
    while True:
        seen = len(person.messages())
        while True:
            try:
                if await post(url, update) == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 60
        while len(person.messages()) == seen:
            assert time.monotonic() < deadline, f"no answer to {update} for {person.chat_id}"
            await asyncio.sleep(0.05)
        last = person.last
        if not last.buttons:
            return
        update = person.press(last.buttons[0]["text"], last)


async def test_redis_restarted_mid_ladder_loses_no_message(
    telegram_api: FakeTelegram, own_redis: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "buttons.yaml").write_text(BUTTONS_FLOW)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = ladder_env(telegram_api, tmp_path, own_redis.url, PORT=str(port))
    people = [telegram_api.prospect(n) for n in range(1, 21)]
    redis = connect(own_redis.url)
    try:
        with ladder("serve", "--host", "127.0.0.1", env=env) as web, ladder("worker", env=env):
            await wait_healthy(url, web)
            ladders = asyncio.gather(*(climb(url, person) for person in people))
            halfway = 2 * len(people)
            await telegram_api.wait_for(
                lambda: sum(len(p.messages()) for p in people) >= halfway, 60, "halfway"
            )
            await asyncio.to_thread(own_redis.restart)  # appendonly: the data comes back
            await asyncio.wait_for(ladders, 120)
            await wait_until_settled(redis)
    finally:
        await redis.aclose()

    for person in people:  # every prospect completed, each message once, in order
        assert [m.text for m in person.messages()] == LADDER, person.chat_id
