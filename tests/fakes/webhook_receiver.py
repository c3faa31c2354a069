"""A CRM's webhook receiver on 127.0.0.1: verifies every request's signature with the
standardwebhooks library itself, and answers as the test scripts it (500 a few times, 400,
429, ...), or holds a request until the test releases it."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.http import HeldCalls, Hold, ServerThread, listening_socket, wait_until

PATH = "/hooks/ladder"


def make_secret() -> str:
    """A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Call:
    """One request as received: its webhook-id, its body parsed (None if the signature did
    not verify), the answer given."""

    method: str
    webhook_id: str
    payload: Any
    status: int
    headers: dict[str, str]


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)


class FakeReceiver(HeldCalls):
    """`url` receives webhooks signed with `secret`; `fail_next(status, times)` scripts the
    answers before 200; `hold("webhook")` holds requests (tests.fakes.http.HeldCalls)."""

    METHOD = "webhook"

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or make_secret()
        self._verifier = Webhook(self.secret)
        self._lock = threading.Lock()
        self._state = _State()
        sock, base = listening_socket()
        self.url = base + PATH
        app = Starlette(routes=[Route(PATH, self._receive, methods=["POST"])])
        self._server = ServerThread(app, sock, "the fake webhook receiver")

    def __enter__(self) -> FakeReceiver:
        self._server.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.stop()

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """The next `times` verified requests are answered `status` (with `headers`)."""
        with self._lock:
            self._state.failures.setdefault(self.METHOD, []).extend(
                [(status, headers or {})] * times
            )

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        if await self.dropped_after_hold(self.METHOD):
            return PlainTextResponse("dropped", status_code=503)
        try:
            payload = self._verifier.verify(body, headers)
        except WebhookVerificationError:
            payload, status, extra = None, 401, {}
        else:
            with self._lock:
                queued = self._state.failures.get(self.METHOD) or []
                status, extra = queued.pop(0) if queued else (200, {})
        call = Call(self.METHOD, headers.get("webhook-id", ""), payload, status, headers)
        with self._lock:
            self._state.calls.append(call)
        answer = "ok" if status == 200 else f"scripted answer {status}"
        return PlainTextResponse(answer, status_code=status, headers=extra)

    def delivered(self) -> list[Call]:
        """The verified requests answered 200, in order."""
        return [c for c in self.calls() if c.status == 200]

    def unverified(self) -> list[Call]:
        return [c for c in self.calls() if c.payload is None]

    async def wait_for(self, condition: Any, seconds: float = 60, what: str = "") -> None:
        await wait_until(condition, seconds, what or "the receiver", self.calls)


def body_of(call: Call) -> dict[str, Any]:
    """The verified payload of a call, as the CRM reads it."""
    assert call.payload is not None, f"unverified request: {json.dumps(call.headers)}"
    return dict(call.payload)
