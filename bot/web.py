"""The one ASGI app of the web process: channel webhooks, tracked links, dashboard, health,
metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import access, dashboard, metrics
from bot.app import Services
from bot.channels import product
from bot.channels.slack import events as slack_events
from bot.channels.telegram import webhook as telegram
from storage.connect import REDIS_ERRORS, ping


def create_app(services: Services) -> Starlette:
    async def healthz(_: Request) -> Response:
        try:
            await ping(services.redis)
        except (*REDIS_ERRORS, OSError) as exc:
            return JSONResponse({"ok": False, "redis": str(exc)}, status_code=503)
        return JSONResponse({"ok": True})

    routes: list[BaseRoute] = [Route("/healthz", healthz), metrics_route(services)]
    routes += dashboard.routes(services)
    routes += telegram.routes(services)
    routes += slack_events.routes(services.settings, services.slack_listeners())
    routes += product.routes(services)
    return Starlette(routes=routes)


def metrics_route(services: Services) -> Route:
    """GET /metrics, the Prometheus text format (bot.metrics), behind its bearer token; the
    web process serves it, and a worker with METRICS_PORT."""

    async def page(_: Request) -> Response:
        text = await metrics.exposition(services.redis, services.clock.now())
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    unset = "metrics disabled: set METRICS_TOKEN or DASHBOARD_TOKEN"
    return Route("/metrics", access.bearer_only(page, services.settings.metrics_bearer, unset))
