"""Which Slack integration a process has, and the start-up lines that say so."""

from __future__ import annotations

import logging
from enum import StrEnum

from bot.config import Settings
from bot.flow.validate import alerts_nowhere
from bot.registry import FlowRegistry

log = logging.getLogger(__name__)


class SlackMode(StrEnum):
    APP = "app"
    WEBHOOK = "webhook"
    NONE = "none"


def slack_mode(settings: Settings) -> SlackMode:
    """Which Slack integration the settings allow: the app wins over a bare webhook."""
    if settings.slack_bot_token:
        return SlackMode.APP
    if settings.slack_webhook_url:
        return SlackMode.WEBHOOK
    return SlackMode.NONE


def startup_message(settings: Settings) -> str:
    """The one log line saying what Slack will do in this process."""
    mode = slack_mode(settings)
    if mode == SlackMode.APP:
        events = (
            "buttons and thread replies at POST /slack/events"
            if settings.slack_signing_secret
            else "POST /slack/events answers 503: SLACK_SIGNING_SECRET is not set"
        )
        channel = settings.slack_channel or "the flow's alerts.slack_channel"
        return f"Slack mode: app (alerts with buttons to {channel}; {events})"
    if mode == SlackMode.WEBHOOK:
        return "Slack mode: webhook (alerts without buttons via SLACK_WEBHOOK_URL; no take-over)"
    return (
        "Slack mode: none (set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL; "
        "alerts wait in the outbox until then)"
    )


def log_startup(settings: Settings) -> SlackMode:
    """Log the startup message: a warning when something is missing, else info."""
    mode = slack_mode(settings)
    missing = mode == SlackMode.NONE or (
        mode == SlackMode.APP and not settings.slack_signing_secret
    )
    log.log(logging.WARNING if missing else logging.INFO, startup_message(settings))
    return mode


async def log_alerts_nowhere(settings: Settings, flows: FlowRegistry) -> None:
    """With the Slack app: a warning per published flow whose alerts have no channel (from
    its alerts.slack_channel or SLACK_CHANNEL), so each would become a dead letter."""
    if slack_mode(settings) != SlackMode.APP:
        return
    for name in await flows.catalog.names():
        if warning := alerts_nowhere((await flows.latest(name)).flow, settings.slack_channel):
            log.warning(warning)
