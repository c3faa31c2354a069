"""Who may read the operator pages (/dashboard, /metrics): a token, compared in constant time.

The token comes as `Authorization: Bearer <token>` (scripts, Prometheus) or, for the dashboard
in a browser, as the cookie a `?token=` link sets once (bot.dashboard): a token never has to
stay in a url, where access logs and browser histories keep it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

Endpoint = Callable[[Request], Awaitable[Response]]


def bearer(request: Request) -> str:
    """The token of an `Authorization: Bearer` header ("" without one)."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def disabled(what: str) -> Response:
    """401 for a page whose token is not configured: closed, never open by default."""
    return PlainTextResponse(what, status_code=401)


def refused(how: str) -> Response:
    """401 saying how to pass the token (never echoing what was given)."""
    return PlainTextResponse(
        f"unauthorized: {how}", status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


def bearer_only(endpoint: Endpoint, token: str | None, unset: str) -> Endpoint:
    """`endpoint` behind `Authorization: Bearer <token>`; `unset` says what to set when no
    token is configured."""

    async def guarded(request: Request) -> Response:
        if not token:
            return disabled(unset)
        if not matches(bearer(request), token):
            return refused("pass Authorization: Bearer <token>")
        return await endpoint(request)

    return guarded
