"""A fake Slack: the Web API and an incoming webhook, as a real HTTP server on 127.0.0.1.

The real slack-sdk clients talk to it (SLACK_API_URL = `slack.url`, SLACK_WEBHOOK_URL =
`slack.webhook_url`). It runs in a thread with its own event loop, like an external service,
and records every call. It implements what ladderbot uses: auth.test, chat.postMessage (with
message metadata), chat.update, chat.postEphemeral, conversations.replies,
conversations.history, conversations.list and the webhook; `fail_next` makes the
next calls of a method fail (429 with Retry-After, 500), `hold` keeps calls of a method
waiting until the test lets them go. `user_reply` builds the Events API payload of a person
answering in a thread; `sign` signs a request body the way Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.http import HeldCalls, Hold, ServerThread, listening_socket, wait_until

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0001"
WEBHOOK_PATH = "/services/T0001/B0001/webhooksecret"


def sign(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """The headers Slack sends with a request: X-Slack-Request-Timestamp and X-Slack-Signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class Call:
    """One request: the API method (or "webhook"), its arguments, the auth header, when."""

    method: str
    args: dict[str, Any]
    token: str
    at: float


@dataclass
class Message:
    """A message in a channel (thread replies have thread_ts)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str = BOT_USER
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None

    def buttons(self) -> list[dict[str, Any]]:
        return [e for b in self.blocks if b.get("type") == "actions" for e in b["elements"]]

    def button(self, action_id: str) -> dict[str, Any]:
        for button in self.buttons():
            if button["action_id"] == action_id:
                return button
        raise LookupError(f"no button {action_id!r} in message {self.text!r}")

    def mrkdwn(self) -> str:
        """Every piece of text in the blocks, joined: for asserting what a reader sees."""
        parts: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in ("mrkdwn", "plain_text"):
                    parts.append(str(node["text"]))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.blocks)
        return "\n".join(parts)

    def json(self, metadata: bool = False) -> dict[str, Any]:
        """As Slack shows it; metadata only when asked for (include_all_metadata)."""
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text,
                                "blocks": self.blocks, "user": self.user}  # fmt: skip
        if metadata and self.metadata:
            data["metadata"] = self.metadata
        if self.user == BOT_USER:
            data["bot_id"] = BOT_ID
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        return data


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None
    times: int
    processed: bool


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    webhook: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)


class FakeSlack(HeldCalls):
    """The fake Slack server; use as a context manager or call start()/stop()."""

    def __init__(
        self, token: str = BOT_TOKEN, channels: tuple[str, ...] = ("#sales-leads",)
    ) -> None:
        """`channels` exist from the start; others appear when first posted to."""
        self.token = token
        self._state = _State()
        for name in channels:
            self._channel(name)
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ServerThread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """What SLACK_API_URL should be."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        """What SLACK_WEBHOOK_URL should be."""
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        sock, _ = listening_socket()
        self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route(WEBHOOK_PATH, self._webhook, methods=["POST"]),
            ]
        )
        self._server = ServerThread(app, sock, "the fake Slack API")
        self._server.start()
        return self

    def stop(self) -> None:
        for hold in list(self._state.holds.values()):
            hold.gate.set()
        if self._server:
            self._server.stop()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what the tests drive -------------------------------------------------------------------

    def fail_next(
        self, method: str, status: int = 500, *, times: int = 1, retry_after: int | None = None,
        error: str = "internal_error", processed: bool = False,
    ) -> None:  # fmt: skip
        """The next `times` calls of `method` ("webhook" for the webhook) fail with `status`;
        with processed=True they do their work first (the answer is lost, the post is made)."""
        with self._lock:
            self._state.failures.setdefault(method, []).append(
                _Failure(status, error, retry_after, times, processed)
            )

    def messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[Message]:
        """Messages in a channel (by name or id), top-level ones or one thread's replies."""
        with self._lock:
            cid = self._state.channels.get(channel or "", channel)
            return [
                m for m in self._state.messages
                if (channel is None or m.channel == cid) and m.thread_ts == thread_ts
            ]  # fmt: skip

    def ephemeral(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.ephemeral)

    def webhook_posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.webhook)

    def user_reply(self, parent: Message, user: str, text: str, event_id: str) -> dict[str, Any]:
        """A person replies in the thread of `parent`: stored, and returned as the Events API
        payload Slack would send."""
        with self._lock:
            reply = Message(parent.channel, self._next_ts(), text, [], user, parent.ts)
            self._state.messages.append(reply)
        event = {**reply.json(), "channel": parent.channel, "channel_type": "channel"}
        return {
            "token": "legacy", "team_id": TEAM, "api_app_id": "A0001", "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }  # fmt: skip

    async def wait_for(
        self, condition: Callable[[], Any], within: float = 120.0, what: str = "condition"
    ) -> None:
        """Poll `condition` (from the test's event loop) until it holds."""
        await wait_until(condition, within, what, self.calls)

    # --- the HTTP side ----------------------------------------------------------------------------

    def _channel(self, name: str) -> str:
        if name.startswith("C") and name in self._state.channels.values():
            return name
        return self._state.channels.setdefault(name, f"C0{len(self._state.channels) + 1:07d}")

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1764000000 + n}.{n:06d}"

    async def _gate(self, method: str) -> tuple[Response | None, bool]:
        """Hold or fail this call as the test asked: the failure to answer (None: none), and
        whether the call's work is done anyway."""
        if await self.dropped_after_hold(method):
            return JSONResponse({"ok": False, "error": "fake_dropped"}, status_code=500), False
        with self._lock:
            queue = self._state.failures.get(method) or []
            if not queue:
                return None, True
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
        if method == "webhook":
            answer: Response = PlainTextResponse(
                failure.error, status_code=failure.status, headers=headers
            )
        else:
            answer = JSONResponse(
                {"ok": False, "error": failure.error}, status_code=failure.status, headers=headers
            )
        return answer, failure.processed

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await _arguments(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            self._state.calls.append(Call(method, args, token, time.monotonic()))
        refused, work = await self._gate(method)
        if refused is not None and not work:
            return refused
        if token != self.token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)
        with self._lock:
            result: dict[str, Any] = handler(args)
        return refused or JSONResponse(result)

    async def _webhook(self, request: Request) -> Response:
        body = json.loads(await request.body())
        with self._lock:
            self._state.calls.append(Call("webhook", body, "", time.monotonic()))
        refused, work = await self._gate("webhook")
        if work:
            with self._lock:
                self._state.webhook.append(body)
        return refused or PlainTextResponse("ok")

    def _m_auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "ladderbot",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}  # fmt: skip

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        channel = self._channel(str(args["channel"]))
        thread = args.get("thread_ts")
        if thread and not self._find(channel, str(thread)):
            return {"ok": False, "error": "thread_not_found"}
        metadata = args.get("metadata")
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
        message = Message(channel, self._next_ts(), str(args.get("text", "")), _blocks(args),
                          BOT_USER, thread, metadata)  # fmt: skip
        self._state.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.json()}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        found = self._find(str(args.get("channel")), str(args.get("ts")))
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        found.text = str(args.get("text", found.text))
        found.blocks = _blocks(args)
        return {"ok": True, "channel": found.channel, "ts": found.ts, "text": found.text}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._state.ephemeral.append(args)
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel")), str(args.get("ts"))
        parent = self._find(channel, ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        replies = [m for m in self._state.messages if m.channel == channel and m.thread_ts == ts]
        meta = _flag(args.get("include_all_metadata"))
        return {"ok": True, "messages": [m.json(meta) for m in [parent, *replies]]}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        if channel not in self._state.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        top = [m for m in self._state.messages if m.channel == channel and m.thread_ts is None]
        newest = top[::-1][: int(args.get("limit", 100))]
        meta = _flag(args.get("include_all_metadata"))
        return {"ok": True, "messages": [m.json(meta) for m in newest], "has_more": False}

    def _m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": cid, "name": name.removeprefix("#"), "is_channel": True}
                    for name, cid in self._state.channels.items()]  # fmt: skip
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _find(self, channel: str, ts: str) -> Message | None:
        for message in self._state.messages:
            if message.channel == channel and message.ts == ts:
                return message
        return None


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


async def _arguments(request: Request) -> dict[str, Any]:
    """Arguments as slack-sdk sends them: query string, form body or JSON body."""
    args: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return args
    if request.headers.get("content-type", "").startswith("application/json"):
        args.update(json.loads(raw))
    else:
        args.update(parse_qsl(raw.decode()))
    return args


def button_press(message: Message, action_id: str, user: str) -> bytes:
    """The form body Slack posts to the app when `user` presses a button of `message`."""
    button = message.button(action_id)
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0001",
        "token": "legacy",
        "trigger_id": f"{time.time():.0f}.{TEAM}",
        "container": {"type": "message", "message_ts": message.ts,
                      "channel_id": message.channel, "is_ephemeral": False},
        "channel": {"id": message.channel, "name": "sales-leads"},
        "message": message.json(),
        "actions": [{"type": "button", "action_id": action_id, "block_id": "lb_actions",
                     "value": button["value"], "text": button["text"],
                     "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


def slash_command(text: str, user: str = "U0SALES") -> bytes:
    """The form body Slack posts for `/ladder <text>`."""
    return urlencode({
        "token": "legacy", "team_id": TEAM, "team_domain": "fake", "channel_id": "C0001",
        "channel_name": "sales-leads", "user_id": user, "user_name": user.lower(),
        "command": "/ladder", "text": text, "api_app_id": "A0001",
        "response_url": "http://127.0.0.1:9/never-called", "trigger_id": "1.2.3",
    }).encode()  # fmt: skip
