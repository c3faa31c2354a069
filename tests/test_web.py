"""The web process's own endpoints: health and metrics, on real Redis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot.app import build
from bot.config import Settings
from bot.web import create_app
from domain.model import Start
from storage.connect import connect
from tests.redis_server import RedisServer

FLOW = Path(__file__).parent / "data" / "ladder.yaml"
METRICS_TOKEN = "metrics-s3cret"
DASHBOARD_TOKEN = "dash-s3cret"
REDIS_GAUGES = ("ladder_events_total", "ladder_timers_pending", "ladder_outbox_length",
                "ladder_outbox_dead")  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gauges(text: str) -> dict[str, float]:
    """The gauges of a /metrics page, read with prometheus_client's own parser."""
    return {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(text)
        if family.type == "gauge" and len(family.samples) == 1
    }


async def test_health_and_metrics_follow_redis(own_redis: RedisServer) -> None:
    redis = connect(own_redis.url)
    settings = replace(Settings.from_env(), metrics_token=METRICS_TOKEN)
    services = await build(settings, redis=redis, paths=[FLOW])
    await services.conversations.handle("telegram:1", Start())
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ladder") as http:
        assert (await http.get("/healthz")).json() == {"ok": True}
        page = await http.get("/metrics", headers=bearer(METRICS_TOKEN))
        assert page.headers["content-type"].startswith("text/plain; version=")
        found = gauges(page.text)
        assert {name: found[name] for name in REDIS_GAUGES} == {
            "ladder_events_total": 2,
            "ladder_timers_pending": 1,
            "ladder_outbox_length": 1,  # the welcome message: no channel here delivers it
            "ladder_outbox_dead": 0,
        }
        own_redis.stop()
        down = await http.get("/healthz")
        assert down.status_code == 503 and down.json()["ok"] is False
    await redis.aclose()


@pytest.mark.parametrize(
    ("metrics_token", "dashboard_token", "accepted"),
    [
        (METRICS_TOKEN, None, METRICS_TOKEN),
        (METRICS_TOKEN, DASHBOARD_TOKEN, METRICS_TOKEN),  # its own token wins
        (None, DASHBOARD_TOKEN, DASHBOARD_TOKEN),  # else the dashboard's
    ],
)
async def test_metrics_want_their_bearer_token(
    redis: Redis, metrics_token: str | None, dashboard_token: str | None, accepted: str
) -> None:
    settings = replace(
        Settings.from_env(), metrics_token=metrics_token, dashboard_token=dashboard_token
    )
    services = await build(settings, redis=redis, paths=[FLOW])
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ladder") as http:
        refused = [
            await http.get("/metrics"),
            await http.get("/metrics", headers=bearer("wrong")),
            await http.get("/metrics", headers=bearer(accepted[:-1])),
            await http.get("/metrics", headers={"Authorization": accepted}),  # no "Bearer"
            await http.get("/metrics", params={"token": accepted}),  # not in a url
            *[
                await http.get("/metrics", headers=bearer(t))
                for t in (metrics_token, dashboard_token)
                if t and t != accepted
            ],
        ]
        ok = await http.get("/metrics", headers=bearer(accepted))
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert all(accepted not in r.text and "ladder_" not in r.text for r in refused)
    assert refused[0].headers["www-authenticate"] == "Bearer"
    assert ok.status_code == 200 and gauges(ok.text)["ladder_events_total"] == 0


async def test_metrics_are_closed_without_a_token(redis: Redis) -> None:
    settings = replace(Settings.from_env(), metrics_token=None, dashboard_token=None)
    services = await build(settings, redis=redis, paths=[FLOW])
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ladder") as http:
        answer = await http.get("/metrics", headers=bearer(""))
    assert answer.status_code == 401
    assert answer.text == "metrics disabled: set METRICS_TOKEN or DASHBOARD_TOKEN"
