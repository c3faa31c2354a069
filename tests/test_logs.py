"""No secret in any log line: a whole ladder through `ladder serve` and `ladder worker` (real
processes, real Redis, the fake Telegram and Slack APIs), every logger at DEBUG, scanned for
each secret the processes hold."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot import cli
from bot.channels.slack.blocks import CLAIM
from bot.channels.telegram.webhook import SECRET_HEADER, webhook_secret
from bot.config import Settings
from bot.logs import HIDDEN, Json, Plain, Redact
from tests.channels.conftest import TG_FLOW, WEBHOOK_SECRET
from tests.channels.telegram.test_cli import ladder_env
from tests.fakes.slack_api import FakeSlack, button_press, sign
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_receiver import FakeReceiver
from tests.processes import LadderProcess
from tests.redis_server import free_port
from tests.test_webhooks import SECRET_ENV, hooks_file

SALES = "U0SALES"


class Walk:
    """Ada up the whole ladder through the webhook, the sales team's claim through Slack's
    signed request, and the operator pages (dashboard link, metrics)."""

    def __init__(
        self, http: httpx.AsyncClient, telegram: FakeTelegram, fake_slack: FakeSlack, hook: str
    ) -> None:
        self.http = http
        self.telegram = telegram
        self.fake_slack = fake_slack
        self.hook = hook
        self.ada = telegram.prospect(42)

    async def says(self, update: dict[str, Any], then: str) -> None:
        """Post `update` to the webhook; the bot's next messages include `then`."""
        before = len(self.ada.messages())
        answer = await self.http.post(
            "/telegram/webhook", json=update, headers={SECRET_HEADER: self.hook}
        )
        assert answer.status_code == 200
        await self.telegram.wait_for(
            lambda: any(then in m.text for m in self.ada.messages()[before:]), 60, what=then
        )

    async def ladder(self) -> None:
        ada = self.ada
        await self.says(ada.text("/start"), "Want our 2-minute checklist?")
        await self.says(ada.press("Yes please"), "What's your role?")
        self.telegram.fail_next("sendMessage", error_code=500, retry_after=None, description="x")
        await self.says(ada.press("Founder"), "Where should we send it?")  # sent on a retry
        await self.says(ada.text("ada@example.com"), "Here it is, Ada.")
        await self.says(ada.press("✓ Done"), "Join the 30-minute live demo?")
        await self.says(ada.press("No thanks"), "Thank you, Ada!")

    async def claim(self, signing_secret: str) -> None:
        """The worker's alert, claimed from Slack."""
        fake = self.fake_slack
        await fake.wait_for(lambda: fake.messages("#sales-leads"), 60, what="the alert")
        [alert] = fake.messages("#sales-leads")
        body = button_press(alert, CLAIM, SALES)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(body, secret=signing_secret),
        }
        claimed = await self.http.post("/slack/events", content=body, headers=headers)
        assert claimed.status_code == 200
        assert f"Claimed by <@{SALES}>" in fake.messages("#sales-leads")[0].mrkdwn()

    async def operator_pages(self, dashboard_token: str, metrics_token: str) -> None:
        http = self.http
        link = await http.get("/dashboard", params={"token": dashboard_token})
        assert link.status_code == 303
        assert (await http.get(link.headers["location"])).status_code == 200  # by the cookie
        guess = await http.get("/dashboard", params={"token": "a-wrong-guess"})
        assert guess.status_code == 401
        bearer = {"Authorization": f"Bearer {metrics_token}"}
        assert (await http.get("/metrics", headers=bearer)).status_code == 200


async def test_no_secret_appears_in_any_log_line_of_a_whole_ladder(
    tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    (tmp_path / "tg-ladder.yaml").write_text(TG_FLOW)
    (tmp_path / "checklist.txt").write_text("The 2-minute checklist\n")
    bot_token = f"987654:{secrets.token_urlsafe(24)}"
    given = {
        "LADDER_SECRET": secrets.token_urlsafe(32),
        "SLACK_BOT_TOKEN": f"xoxb-{secrets.token_urlsafe(16)}",
        "SLACK_SIGNING_SECRET": secrets.token_urlsafe(16),
        "DASHBOARD_TOKEN": secrets.token_urlsafe(16),
        "METRICS_TOKEN": secrets.token_urlsafe(16),
    }
    settings = replace(Settings.from_env(), secret=given["LADDER_SECRET"])
    hook = webhook_secret(replace(settings, telegram_webhook_secret=None))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        FakeTelegram(token=bot_token) as telegram,
        FakeSlack(token=given["SLACK_BOT_TOKEN"]) as fake_slack,
    ):
        env = ladder_env(
            telegram, tmp_path, redis_url, PORT=str(port), TELEGRAM_TOKEN=bot_token,
            SLACK_API_URL=fake_slack.url, SLACK_CHANNEL="#sales-leads", LOG_LEVEL="DEBUG",
            **given,
        )  # fmt: skip
        del env["TELEGRAM_WEBHOOK_SECRET"]  # derived from LADDER_SECRET: a secret too
        with (
            LadderProcess("serve", "--host", "127.0.0.1", env=env) as serve,
            LadderProcess("worker", env=env) as worker,
        ):
            await serve.wait_healthy(url)
            async with httpx.AsyncClient(base_url=url) as http:
                walk = Walk(http, telegram, fake_slack, hook)
                await walk.ladder()
                await walk.claim(given["SLACK_SIGNING_SECRET"])
                await walk.operator_pages(given["DASHBOARD_TOKEN"], given["METRICS_TOKEN"])
    logged = serve.output + worker.output
    held = {
        **given,
        "TELEGRAM_TOKEN": bot_token,
        "the bot token's secret part": bot_token.split(":", 1)[1],
        "the webhook secret": hook,
    }
    assert [name for name, value in held.items() if value in logged] == []
    assert "a-wrong-guess" not in logged  # no `token=` value is logged, right or wrong
    # the scan read every logger at every level, the chatty libraries included
    for shown in (
        "DEBUG transitions",
        "INFO uvicorn.access",
        f'GET /dashboard?token={HIDDEN} HTTP/1.1" 303',
        "DEBUG telegram.Bot: Set Bot API URL: http://",  # a url that holds the bot token
        "DEBUG telegram.Bot",
        "DEBUG slack_sdk",
        "INFO bot.service: update conversation=telegram:42 channel=telegram event=Start",
        "INFO bot.delivery: delivery conversation=telegram:42 kind=message:telegram",
    ):
        assert shown in logged, f"no {shown!r} in the logs:\n{logged}"


async def test_json_lines_tell_each_update_and_delivery_and_no_prospect_data(
    tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    """LOG_FORMAT=json: every line `ladder serve` and `ladder worker` write is one JSON object;
    each update and each delivery has its line (conversation, flow, step, result, ms); none
    holds the prospect's email address or name."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tg-ladder.yaml").write_text(TG_FLOW)
    (flows / "checklist.txt").write_text("The 2-minute checklist\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        FakeTelegram() as telegram,
        FakeSlack() as fake_slack,
        FakeReceiver() as receiver,
    ):
        hooks = hooks_file(tmp_path, receiver.url, "[committed, completed]")
        env = ladder_env(
            telegram, flows, redis_url, PORT=str(port), LOG_FORMAT="json", LOG_LEVEL="INFO",
            WEBHOOKS_FILE=str(hooks), **{SECRET_ENV: receiver.secret},
        )  # fmt: skip
        with (
            LadderProcess("serve", "--host", "127.0.0.1", env=env) as serve,
            LadderProcess("worker", env=env) as worker,
        ):
            await serve.wait_healthy(url)
            async with httpx.AsyncClient(base_url=url) as http:
                await Walk(http, telegram, fake_slack, WEBHOOK_SECRET).ladder()
            await receiver.wait_for(
                lambda: "completed" in {c.payload["type"] for c in receiver.delivered()},
                60,
                "the completed webhook",
            )
            await worker.wait_for('"kind": "webhook:crm", "key": "telegram:42:', 60)
    logged = [line for line in (serve.output + worker.output).splitlines() if line.strip()]
    lines = [json.loads(line) for line in logged]  # every line: one JSON object

    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert not [line for line in logged if "@example.com" in line or "Ada" in line]
    updates = [line for line in lines if line["message"] == "update"]
    assert {u["result"] for u in updates} == {"handled"}
    assert [u["step"] for u in updates][-1] == "done"
    assert all(u["conversation"] == "telegram:42" and u["flow"] == "tg-ladder" for u in updates)
    assert all(isinstance(u["ms"], float | int) for u in updates)
    deliveries = [line for line in lines if line["message"] == "delivery"]
    assert {(d["kind"], d["result"]) for d in deliveries} >= {
        ("message:telegram", "delivered"),
        ("webhook:crm", "delivered"),
    }
    assert all(d["conversation"] == "telegram:42" and d["ms"] >= 0 for d in deliveries)


def test_a_structured_lines_fields_are_redacted_too() -> None:
    secret = secrets.token_urlsafe(16)
    record = logging.LogRecord("bot.service", logging.INFO, __file__, 1, "update %s", (secret,),
                               None)  # fmt: skip
    record.fields = {"key": f"telegram:42:{secret}", "ms": 1.5}
    assert Redact([secret]).filter(record)
    line = json.loads(Json().format(record))
    assert line["message"] == f"update {HIDDEN}" and line["key"] == f"telegram:42:{HIDDEN}"
    assert line["ms"] == 1.5 and secret not in Plain().format(record)


def test_an_unknown_log_format_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    assert cli.main(["validate", str(Path(__file__).parent / "data" / "ladder.yaml")]) == 1
    assert "LOG_FORMAT is 'xml': use one of plain, json" in capsys.readouterr().err
