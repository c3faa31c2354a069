"""The one ASGI app of the web process: channel webhooks, tracked links, dashboard, health."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot import access, dashboard
from bot.app import Services
from bot.channels import product, telegram
from bot.channels.slack import events as slack_events
from storage import keys


def create_app(services: Services) -> Starlette:
    async def healthz(_: Request) -> Response:
        try:
            await services.redis.ping()
        except (RedisError, OSError) as exc:
            return JSONResponse({"ok": False, "redis": str(exc)}, status_code=503)
        return JSONResponse({"ok": True})

    async def metrics(_: Request) -> Response:
        """Prometheus text format: sizes of the queues that should not grow without bound, and
        the outbox items given up on (`ladder outbox list`)."""
        redis = services.redis
        lines = [
            f"ladder_events_total {await redis.xlen(keys.EVENTS)}",
            f"ladder_timers_pending {await redis.zcard(keys.TIMERS_DUE)}",
            f"ladder_outbox_length {await redis.xlen(keys.OUTBOX)}",
            f"ladder_outbox_dead {await redis.xlen(keys.OUTBOX_DEAD)}",
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
    routes += slack_events.routes(services.settings, services.slack_listeners())
    routes += product.routes(services)
    return Starlette(routes=routes)
