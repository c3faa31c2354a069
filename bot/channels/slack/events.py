"""POST /slack/events: events, button presses and the `/ladder` command on one URL, on a
slack-bolt AsyncApp, which checks Slack's signature (wrong or older than 5 minutes: 401)
before any listener runs."""

from __future__ import annotations

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.slack.api import web_client
from bot.channels.slack.listeners import Listeners
from bot.channels.slack.mode import SlackMode, log_startup
from bot.config import Settings


def build_app(settings: Settings, listeners: Listeners) -> AsyncApp:
    """The slack-bolt app: verifies signatures, answers url_verification, runs the listeners
    before answering Slack (they are short), ignores the bot's own messages."""
    app = AsyncApp(
        name="ladderbot",
        signing_secret=settings.slack_signing_secret,
        client=web_client(settings),
        process_before_response=True,
    )
    listeners.register(app)
    return app


def routes(settings: Settings, listeners: Listeners) -> list[BaseRoute]:
    """POST /slack/events in mode "app"; nothing otherwise."""
    if log_startup(settings) != SlackMode.APP:
        return []
    if not settings.slack_signing_secret:

        async def unverifiable(_: Request) -> Response:
            return JSONResponse(
                {"error": "SLACK_SIGNING_SECRET is not set: Slack requests cannot be verified"},
                status_code=503,
            )

        return [Route("/slack/events", unverifiable, methods=["POST"])]
    handler = AsyncSlackRequestHandler(build_app(settings, listeners))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return [Route("/slack/events", events, methods=["POST"])]
