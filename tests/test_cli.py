"""What the long-running commands (serve, run, worker) check and say when they start, as real
processes against real Redis and the fake Telegram and Slack APIs on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.channels.telegram.webhook import SECRET_HEADER, webhook_secret
from bot.config import MAKE_A_SECRET, MIN_SECRET_BYTES, Settings
from domain.errors import ConfigError
from tests.channels.conftest import TG_FLOW
from tests.channels.telegram.test_cli import ladder_env
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.processes import ROOT, LadderProcess
from tests.redis_server import free_port

PUBLIC_DEFAULT = "dev-secret-change-me"  # what LADDER_SECRET fell back to before


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    (tmp_path / "tg-ladder.yaml").write_text(TG_FLOW)  # alerts without a channel
    routed = TG_FLOW.replace("flow: tg-ladder\n", 'flow: routed\nalerts: {slack_channel: "#x"}\n')
    (tmp_path / "routed.yaml").write_text(routed)
    (tmp_path / "checklist.txt").write_text("The 2-minute checklist\n")
    return tmp_path


# --- LADDER_SECRET -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("serve", None, "is not set"),
        ("run", None, "is not set"),
        ("worker", None, "is not set"),
        ("serve", "", "is not set"),
        ("worker", "x" * (MIN_SECRET_BYTES - 1), f"is only {MIN_SECRET_BYTES - 1} bytes"),
        ("run", "é" * (MIN_SECRET_BYTES // 2 - 1), f"is only {MIN_SECRET_BYTES - 2} bytes"),
    ],
)
async def test_a_real_redis_needs_a_strong_ladder_secret(
    case: tuple[str, str | None, str],
    telegram_api: FakeTelegram,
    flows_dir: Path,
    redis_url: str,
    redis: Redis,
) -> None:
    command, secret, problem = case
    env = ladder_env(telegram_api, flows_dir, redis_url, PORT=str(free_port()))
    del env["LADDER_SECRET"]
    if secret is not None:
        env["LADDER_SECRET"] = secret
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.cli", command],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"ladder: LADDER_SECRET {problem}" in done.stderr
    assert f"at least {MIN_SECRET_BYTES} random bytes" in done.stderr
    assert MAKE_A_SECRET in done.stderr  # how to make one
    assert await redis.dbsize() == 0  # refused before publishing a flow or reading anything
    assert telegram_api.calls() == []


def test_a_secret_of_32_bytes_is_enough() -> None:
    real = replace(Settings.from_env(), redis_url="redis://127.0.0.1:1")
    replace(real, secret="x" * MIN_SECRET_BYTES).require_secret()
    with pytest.raises(ConfigError):
        replace(real, secret="x" * (MIN_SECRET_BYTES - 1)).require_secret()


def test_the_demo_signs_with_a_random_secret_of_its_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("LADDER_SECRET", raising=False)
    demo = Settings.from_env()
    assert len(demo.secret.encode()) >= MIN_SECRET_BYTES and demo.secret != PUBLIC_DEFAULT
    assert Settings.from_env().secret == demo.secret  # the same all through one process
    demo.require_secret()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1")
    assert Settings.from_env().secret == ""  # a real Redis never gets the demo's secret


async def test_a_forged_webhook_call_to_the_demo_is_refused(
    telegram_api: FakeTelegram, flows_dir: Path
) -> None:
    """The demo's webhook secret derives from its own random secret, not a public value."""
    port = free_port()
    env = ladder_env(telegram_api, flows_dir, "", PORT=str(port))
    for name in ("REDIS_URL", "LADDER_SECRET", "TELEGRAM_WEBHOOK_SECRET"):
        del env[name]
    public = replace(Settings.from_env(), secret=PUBLIC_DEFAULT, telegram_webhook_secret=None)
    ada = telegram_api.prospect(42)
    url = f"http://127.0.0.1:{port}"
    with LadderProcess("serve", "--host", "127.0.0.1", env=env) as serve:
        await serve.wait_healthy(url)
        async with httpx.AsyncClient() as http:
            for guess in (webhook_secret(public), webhook_secret(replace(public, secret=""))):
                forged = await http.post(
                    f"{url}/telegram/webhook",
                    json=ada.text("/forget"),
                    headers={SECRET_HEADER: guess},
                )
                assert forged.status_code == 403
    assert "embedded" in serve.output  # it did run as the demo
    assert ada.messages() == []


# --- start-up messages ---------------------------------------------------------------------------


async def test_serve_and_worker_name_the_flows_that_alert_nowhere(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    port = free_port()
    with FakeSlack() as slack:
        env = ladder_env(
            telegram_api, flows_dir, redis_url, PORT=str(port), SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.url,
        )  # fmt: skip
        env.pop("SLACK_CHANNEL", None)
        with LadderProcess("serve", "--host", "127.0.0.1", env=env) as serve:
            await serve.wait_healthy(f"http://127.0.0.1:{port}")
        with LadderProcess("worker", env=env) as worker:
            await worker.wait_for("worker started")
    for output in (serve.output, worker.output):
        assert (
            "WARNING bot.channels.slack.mode: flow 'tg-ladder' alerts nowhere: it has no "
            "alerts.slack_channel and SLACK_CHANNEL is not set" in output
        ), output
        assert "'routed' alerts nowhere" not in output


async def test_serve_logs_no_state_change_or_request_by_default(
    telegram_api: FakeTelegram, flows_dir: Path, redis_url: str, redis: Redis
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = ladder_env(telegram_api, flows_dir, redis_url, PORT=str(port))
    env.pop("LOG_LEVEL", None)
    ada = telegram_api.prospect(42)
    with LadderProcess("serve", "--host", "127.0.0.1", env=env) as serve:
        await serve.wait_healthy(url)
        async with httpx.AsyncClient() as http:
            for update in (lambda: ada.text("/start"), lambda: ada.press("Yes please")):
                hook = await http.post(
                    f"{url}/telegram/webhook",
                    json=update(),
                    headers={SECRET_HEADER: env["TELEGRAM_WEBHOOK_SECRET"]},
                )
                assert hook.status_code == 200
    assert ada.last.text == "What's your role?"  # two state changes, two requests
    lines = serve.output.splitlines()
    assert not [line for line in lines if " transitions" in line], lines
    assert not [line for line in lines if "POST /telegram/webhook" in line], lines
    assert not [line for line in lines if "GET /healthz" in line], lines
    [public_url] = [line for line in lines if "PUBLIC_URL is not set" in line]
    assert "links are not tracked" in public_url
    assert 'show a "✓ Done" button that records the opening' in public_url
    assert "cannot advance" not in public_url


def test_a_bad_log_level_is_refused(flows_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "validate", str(flows_dir)],
        env={**os.environ, "LOG_LEVEL": "loud"},
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "ladder: LOG_LEVEL is 'loud': use one of DEBUG, INFO, WARNING, ERROR" in done.stderr
