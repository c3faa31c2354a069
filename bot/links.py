"""Tracked links, for any channel: a link button leads to PUBLIC_URL/r/<token>, which records the
opening (a LinkOpened engine event) and redirects to the link's url.

The token is issued by storage (opaque and random, reused when the same link is sent again);
without PUBLIC_URL links are not tracked and lead straight to their url."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot import refs
from bot.service import Conversations, Outcome
from domain.errors import StorageError
from domain.model import LinkButton, LinkOpened
from storage.base import Links, TrackedLink
from storage.connect import REDIS_ERRORS

log = logging.getLogger(__name__)

NOT_FOUND_PAGE = "<!doctype html><title>Link not found</title><h1>This link is not valid.</h1>"
UNAVAILABLE_PAGE = (
    "<!doctype html><title>Try again</title><h1>Something went wrong on our side.</h1>"
    "<p>Please try the link again in a minute.</p>"
)


async def button_url(
    button: LinkButton, conversation: str, *, secret: str, public_url: str | None, links: Links
) -> str:
    """Where a link button leads: its url with the signed conversation ref filled in, behind a
    tracked link when there is a public url."""
    url = refs.fill(button.url, secret, conversation)
    if public_url is None:
        return url
    token = await links.token(TrackedLink(conversation, button.step, url))
    return f"{public_url}/r/{token}"


class LinkRoute:
    """GET /r/<token>: record the opening, then redirect; `reply` delivers the step's answer
    after the redirect (the prospect need not wait for it)."""

    def __init__(
        self,
        conversations: Conversations,
        links: Links,
        reply: Callable[[Outcome], Awaitable[object]],
    ) -> None:
        self.conversations = conversations
        self.links = links
        self.reply = reply

    def route(self) -> Route:
        return Route("/r/{token}", self.open, methods=["GET"])

    async def open(self, request: Request) -> Response:
        try:
            link = await self.links.resolve(request.path_params["token"])
            if link is None:
                return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
            outcome = await self.conversations.handle(
                link.conversation, LinkOpened(link.step), deliver_now=True
            )
        except (StorageError, *REDIS_ERRORS) as exc:
            log.error("tracked link not recorded: %s", exc)
            return HTMLResponse(UNAVAILABLE_PAGE, status_code=503)
        after = BackgroundTask(self.reply, outcome)
        return RedirectResponse(link.url, status_code=302, background=after)
