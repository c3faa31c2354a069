"""Slack's clients, and their answers in the outbox's terms: a 429 waits as Slack asks, an
error no retry can fix is a dead letter, anything else is retried."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.config import Settings
from domain.errors import LadderError
from storage.outbox import RetryLater, Undeliverable

log = logging.getLogger(__name__)

# Slack errors that no retry can fix: the item goes to the outbox's dead letters.
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "msg_too_long",
     "no_text", "invalid_arguments", "too_many_attachments"}
)  # fmt: skip
PERMANENT_WEBHOOK_STATUS = frozenset({400, 403, 404, 410})
GONE_ERRORS = frozenset({"message_not_found", "cant_update_message"})  # a lead card deleted


class SlackError(LadderError):
    """Slack answered in a way that may pass (a 5xx from an incoming webhook): retry later."""


def web_client(settings: Settings) -> AsyncWebClient:
    base = settings.slack_api_url
    return AsyncWebClient(
        token=settings.slack_bot_token, base_url=base if base.endswith("/") else base + "/"
    )


def _retry_after(headers: Mapping[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except ValueError:
                break
    return 1.0


async def call(request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """Await a Web API call, turning Slack's answers into the outbox's terms: 429 -> wait as
    Slack asks; a permanent error -> dead letter; anything else is raised for a retry."""
    try:
        return await request
    except SlackApiError as exc:
        if exc.response.status_code == 429:
            raise RetryLater(
                f"Slack rate limit: {exc}", _retry_after(exc.response.headers)
            ) from exc
        if exc.response.get("error") in PERMANENT_ERRORS:
            raise Undeliverable(f"Slack refused: {exc.response.get('error')}") from exc
        raise


async def lookup(request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse | None:
    """A read made to avoid posting twice. 429: wait as Slack asks; 5xx: retry later; Slack
    refusing it (a missing scope such as channels:read or channels:history): None, and the
    caller posts again rather than lose the message."""
    try:
        return await request
    except SlackApiError as exc:
        status = exc.response.status_code
        if status == 429:
            raise RetryLater(
                f"Slack rate limit: {exc}", _retry_after(exc.response.headers)
            ) from exc
        if status >= 500:
            raise
        log.warning("slack: cannot check for an earlier post (%s); posting again may repeat it",
                    exc.response.get("error"))  # fmt: skip
        return None


async def send_webhook(webhook: AsyncWebhookClient, text: str, blocks: Any = None) -> None:
    """Post through an incoming webhook: 429 waits, a revoked or refused webhook is a dead
    letter, anything else (a 5xx) is retried."""
    response = await webhook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
    if response.status_code == 200:
        return
    detail = f"incoming webhook answered {response.status_code}: {response.body}"
    if response.status_code == 429:
        raise RetryLater(detail, _retry_after(response.headers))
    if response.status_code in PERMANENT_WEBHOOK_STATUS:
        raise Undeliverable(detail)
    raise SlackError(detail)
