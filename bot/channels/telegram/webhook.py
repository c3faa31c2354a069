"""The web process's Telegram side: POST /telegram/webhook (and the tracked links of
bot.links), and pointing Telegram at it.

Like bolt-python's starlette adapter: the request is checked and read into an Update, handed
to the channel, and the outcome turned into a status Telegram understands."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import Services
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.sender import TelegramNotConfigured, TelegramSender
from bot.channels.telegram.updates import ALLOWED_UPDATES, read_update
from bot.config import Settings
from domain.errors import StorageError
from storage.connect import REDIS_ERRORS

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_secret(settings: Settings) -> str:
    """TELEGRAM_WEBHOOK_SECRET, or one derived from LADDER_SECRET, so the webhook is always
    checked (Telegram allows 1-256 characters of A-Z, a-z, 0-9, _ and -)."""
    if settings.telegram_webhook_secret:
        return settings.telegram_webhook_secret
    mac = hmac.new(settings.secret.encode(), b"telegram-webhook", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class Webhook:
    """POST /telegram/webhook: 403 without the secret, 400 for a body that is not an update
    (no JSON object with a whole-number update_id), 503 when the update could not be stored
    (Redis down: Telegram retries), 200 once it is (its replies are in the outbox, sent now or
    by the worker). An update with fields of the wrong shape gets 200 too, logged and changing
    nothing: Telegram would only send it again and again."""

    def __init__(self, channel: TelegramChannel, secret: str) -> None:
        self.channel = channel
        self.secret = secret

    async def handle(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return PlainTextResponse("wrong secret token", status_code=403)
        try:
            data = await request.json()
        except ValueError:
            return PlainTextResponse("malformed update: not JSON", status_code=400)
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return PlainTextResponse("malformed update: no update_id", status_code=400)
        try:
            update = read_update(data, self.channel.sender.bot)
        except Exception as exc:  # any shape python-telegram-bot cannot read: logged, answered
            log.warning("ignored update %s: unreadable (%s)", update_id, type(exc).__name__)
            return Response(status_code=200)
        try:
            await self.channel.process(update)
        except (StorageError, *REDIS_ERRORS) as exc:
            log.error("update %s not processed, Telegram will retry: %s", update_id, exc)
            return PlainTextResponse("storage unavailable", status_code=503)
        return Response(status_code=200)


async def set_webhook(sender: TelegramSender, settings: Settings) -> str:
    """Point Telegram at PUBLIC_URL/telegram/webhook with the secret token; returns the url."""
    if not settings.public_url:
        raise TelegramNotConfigured("PUBLIC_URL is not set: Telegram cannot reach a webhook")
    url = f"{settings.public_url}/telegram/webhook"
    await sender.bot.set_webhook(
        url, secret_token=webhook_secret(settings), allowed_updates=ALLOWED_UPDATES
    )
    return url


def routes(services: Services) -> list[BaseRoute]:
    """The web process's Telegram routes and tracked links (none without TELEGRAM_TOKEN)."""
    if not services.settings.telegram_token:
        log.info("TELEGRAM_TOKEN is not set: no Telegram webhook or tracked links")
        return []
    channel = TelegramChannel.from_services(services)
    hook = Webhook(channel, webhook_secret(services.settings))
    return [Route("/telegram/webhook", hook.handle, methods=["POST"]), channel.link_route.route()]
