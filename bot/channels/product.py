"""The product's events: `POST /api/events` turns a signed report into an engine event.

The product (trial sign-up, billing, the webinar tool) reports a commitment the prospect made
there. A request carries `X-Ladder-Source` (a source of PRODUCT_EVENT_SECRETS),
`X-Ladder-Timestamp` (Unix seconds, within 5 minutes of our clock) and `X-Ladder-Signature`
(`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under that source's secret); the body is
`{"id": ..., "event": ..., "ref": ...}` where `ref` is the `{conversation_ref}` the link carried.
The event id makes a retried request a no-op, inside the step's atomic write.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import refs
from bot.app import Services
from bot.delivery import Deliveries
from bot.service import Conversations
from domain.errors import StorageError
from domain.model import ProductEvent, Reported

log = logging.getLogger(__name__)

SOURCE_HEADER = "X-Ladder-Source"
TIMESTAMP_HEADER = "X-Ladder-Timestamp"
SIGNATURE_HEADER = "X-Ladder-Signature"
WINDOW_SECONDS = 300
MAX_BODY = 4096
MAX_ID = 128


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What X-Ladder-Signature must say for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def update_key(source: str, event_id: str) -> str:
    return f"product:{source}:{event_id}"


def _error(status: int, message: str) -> Response:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


class ProductEvents:
    """The endpoint; `secrets` maps each source to its signing secret."""

    def __init__(
        self,
        conversations: Conversations,
        deliveries: Deliveries,
        secrets: Mapping[str, str],
        ref_secret: str,
    ) -> None:
        self.conversations = conversations
        self.deliveries = deliveries
        self.secrets = secrets
        self.ref_secret = ref_secret

    async def receive(self, request: Request) -> Response:
        """401: unknown source, bad signature or stale timestamp; 400: not an event; 422: an
        event we do not know; 404: a ref that names nobody; 503: Redis is down (retry).
        A replay of an event id already applied answers 200 and changes nothing."""
        body = await request.body()
        source = request.headers.get(SOURCE_HEADER, "")
        secret = self.secrets.get(source)
        if secret is None:
            return _error(401, f"unknown source: set {SOURCE_HEADER} to a configured source")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode(), signature(secret, timestamp, body).encode()):
            return _error(401, "bad signature")
        now = self.conversations.clock.now().timestamp()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > WINDOW_SECONDS:
            return _error(401, f"stale timestamp: more than {WINDOW_SECONDS} s from our clock")
        if len(body) > MAX_BODY:
            return _error(400, "body too large")
        try:
            data = json.loads(body)
            event_id, name, ref = data["id"], data["event"], data["ref"]
        except (ValueError, TypeError, KeyError):
            return _error(400, 'the body should be JSON: {"id": ..., "event": ..., "ref": ...}')
        if not all(isinstance(v, str) and v for v in (event_id, name, ref)):
            return _error(400, "id, event and ref should be non-empty strings")
        if len(event_id) > MAX_ID:
            return _error(400, f"id should be at most {MAX_ID} characters")
        if name not in ProductEvent.__members__.values():
            known = ", ".join(ProductEvent)
            return _error(422, f"unknown event {name!r}: use one of {known}")
        conversation = refs.verify(self.ref_secret, ref)
        if conversation is None:
            return _error(404, "unknown prospect: the ref is not one we signed")
        try:
            outcome = await self.conversations.handle(
                conversation,
                Reported(ProductEvent(name), source),
                update_key=update_key(source, event_id),
                deliver_now=True,
            )
        except StorageError as exc:
            log.warning("product event %s from %s not applied: %s", event_id, source, exc)
            return _error(503, "storage unavailable: retry later")
        if outcome.duplicate:
            return JSONResponse({"ok": True, "duplicate": True})
        if not outcome.conversation.flow:
            return _error(404, "unknown prospect: no conversation (erased?)")
        await self.deliveries.now(outcome)  # what the bot says next: now, or by the worker
        return JSONResponse({"ok": True, "duplicate": False})


def routes(services: Services) -> list[BaseRoute]:
    """POST /api/events, when PRODUCT_EVENT_SECRETS names at least one source."""
    settings = services.settings
    if not settings.product_event_secrets:
        return []
    deliveries = Deliveries(services.conversations, services.senders)
    endpoint = ProductEvents(
        services.conversations, deliveries, settings.product_event_secrets, settings.secret
    )
    return [Route("/api/events", endpoint.receive, methods=["POST"])]
