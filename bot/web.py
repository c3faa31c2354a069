"""The one ASGI app of the web process: channel webhooks, tracked links, dashboard, health."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot import access, dashboard
from bot.app import Services
from bot.channels import product, slack, telegram
from storage.connect import REDIS_ERRORS, ping
from storage.events import RedisEventLog
from storage.outbox import Outbox
from storage.scheduler import RedisScheduler


def create_app(services: Services) -> Starlette:
    async def healthz(_: Request) -> Response:
        try:
            await ping(services.redis)
        except (*REDIS_ERRORS, OSError) as exc:
            return JSONResponse({"ok": False, "redis": str(exc)}, status_code=503)
        return JSONResponse({"ok": True})

    async def metrics(_: Request) -> Response:
        """Prometheus text format: sizes of the queues that should not grow without bound, and
        the outbox items given up on (`ladder outbox list`)."""
        redis = services.redis
        outbox = Outbox(redis)
        lines = [
            f"ladder_events_total {await RedisEventLog(redis).count()}",
            f"ladder_timers_pending {await RedisScheduler(redis).pending()}",
            f"ladder_outbox_length {await outbox.backlog()}",
            f"ladder_outbox_dead {await outbox.dead_count()}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route(
            "/metrics",
            access.bearer_only(
                metrics,
                services.settings.metrics_bearer,
                "metrics disabled: set METRICS_TOKEN or DASHBOARD_TOKEN",
            ),
        ),
    ]
    routes += dashboard.routes(services)
    routes += telegram.routes(services)
    routes += slack.routes(services)
    routes += product.routes(services)
    return Starlette(routes=routes)
