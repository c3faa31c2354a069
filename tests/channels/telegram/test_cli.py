"""`ladder serve` and `ladder run` as real processes, against the fake Bot API and real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from redis.asyncio import Redis

from bot.channels.telegram.webhook import SECRET_HEADER
from tests.channels.conftest import WEBHOOK_SECRET
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.redis_server import free_port

ROOT = Path(__file__).parents[2]
LADDER_SECRET = "cli-secret-" + "x" * 32


def ladder_env(api: FakeTelegram, flows_dir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "FLOWS_DIR": str(flows_dir),
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.url,
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LADDER_SECRET": LADDER_SECRET,
        "TELEGRAM_CHAT_RATE": "100",
    }
    for name in ("PUBLIC_URL", "DEFAULT_FLOW", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL"):
        env.pop(name, None)
    return {**env, **extra}


@contextmanager
def ladder(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Run `ladder <args>`; on exit stop it with SIGTERM (as a process manager would)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


async def wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120  # only bounds a process that never becomes healthy
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} did not become healthy")


async def test_serve_sets_the_webhook_and_answers_updates(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    public = "https://bot.example.com"
    env = ladder_env(telegram_api, flows_dir, redis_url, PORT=str(port), PUBLIC_URL=public)
    ada = telegram_api.prospect(42)
    with ladder("serve", "--host", "127.0.0.1", env=env) as process:
        await wait_healthy(url, process)
        assert telegram_api.webhook == {
            "url": f"{public}/telegram/webhook",
            "secret_token": WEBHOOK_SECRET,
        }
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{url}/telegram/webhook",
                json=ada.text("/start"),
                headers={SECRET_HEADER: WEBHOOK_SECRET},
            )
        assert response.status_code == 200
        assert ada.last.text.endswith("Want our 2-minute checklist?")
        assert ada.last.buttons
    _, err = process.communicate()
    assert process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises it once shut down
    assert "Traceback" not in err


async def test_serve_keeps_serving_when_the_webhook_cannot_be_set(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    port = free_port()
    refused = "Bad Request: bad webhook: HTTPS url must be provided"
    telegram_api.fail_next("setWebhook", error_code=400, retry_after=None, description=refused)
    env = ladder_env(telegram_api, flows_dir, redis_url, PORT=str(port), PUBLIC_URL="http://x")
    with ladder("serve", "--host", "127.0.0.1", env=env) as process:
        await wait_healthy(f"http://127.0.0.1:{port}", process)
    _, err = process.communicate()
    assert "could not set the Telegram webhook" in err
    assert telegram_api.webhook == {}


async def test_run_polls_and_stops_on_sigterm(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    ada = telegram_api.prospect(42)
    telegram_api.push(ada.text("/start"))
    with ladder("run", env=ladder_env(telegram_api, flows_dir, redis_url)) as process:
        await telegram_api.wait_messages(42, 1)  # the process starts first
        telegram_api.push(ada.press("Yes please"))
        await telegram_api.wait_messages(42, 2)
    assert process.returncode == 0
    assert [c.method for c in telegram_api.calls()[:2]] == ["getMe", "deleteWebhook"]
    _, err = process.communicate()
    assert TOKEN not in err  # httpx would log every request url, token included
    assert ada.last.text == "What's your role?"


async def test_run_with_a_public_url_also_serves_tracked_links(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = ladder_env(telegram_api, flows_dir, redis_url, PORT=str(port), PUBLIC_URL=url)
    ada = telegram_api.prospect(42)
    with ladder("run", "--host", "127.0.0.1", env=env) as process:
        await wait_healthy(url, process)
        telegram_api.push(ada.text("/start"))
        await telegram_api.wait_messages(42, 1)
        telegram_api.push(ada.press("Yes please"))
        await telegram_api.wait_messages(42, 2)
        telegram_api.push(ada.press("Founder"))
        await telegram_api.wait_messages(42, 3)
        telegram_api.push(ada.text("ada@example.com"))
        await telegram_api.wait_messages(42, 5)
        link = ada.messages()[-2].button("Open the checklist")["url"]
        async with httpx.AsyncClient() as http:
            assert (await http.get(link)).status_code == 302
        await telegram_api.wait_for(lambda: "live demo" in ada.last.text, what="next step")
    assert process.returncode == 0


def test_run_without_a_token_says_so(flows_dir: Path, redis_url: str) -> None:
    with FakeTelegram() as api:
        env = ladder_env(api, flows_dir, redis_url)
    del env["TELEGRAM_TOKEN"]
    command = [sys.executable, "-m", "bot.cli", "run"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "TELEGRAM_TOKEN is not set" in done.stderr


def test_run_with_a_rejected_token_says_so(flows_dir: Path, redis_url: str) -> None:
    with FakeTelegram() as api:
        env = ladder_env(api, flows_dir, redis_url, TELEGRAM_TOKEN="999:wrong")
        command = [sys.executable, "-m", "bot.cli", "run"]
        done = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
    assert done.returncode == 1
    assert "TELEGRAM_TOKEN was rejected" in done.stderr
    assert "999:wrong" not in done.stderr
