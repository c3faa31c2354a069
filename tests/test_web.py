"""The web process's own endpoints: health and metrics, on real Redis."""

from __future__ import annotations

from pathlib import Path

import httpx

from bot.app import build
from bot.config import Settings
from bot.model import Start
from bot.web import create_app
from storage.connect import connect
from tests.redis_server import RedisServer

FLOW = Path(__file__).parent / "data" / "ladder.yaml"


async def test_health_and_metrics_follow_redis(own_redis: RedisServer) -> None:
    redis = connect(own_redis.url)
    services = await build(Settings.from_env(), redis=redis, paths=[FLOW])
    await services.ladder.handle("telegram:1", Start())
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://ladder") as http:
        assert (await http.get("/healthz")).json() == {"ok": True}
        metrics = (await http.get("/metrics")).text.splitlines()
        assert metrics == [
            "ladder_events_total 2",
            "ladder_timers_pending 1",
            "ladder_outbox_length 1",  # the welcome message: no channel here delivers it
            "ladder_outbox_dead 0",
        ]
        own_redis.stop()
        down = await http.get("/healthz")
        assert down.status_code == 503 and down.json()["ok"] is False
    await redis.aclose()
