"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that records every call.

The real python-telegram-bot client talks to it (base_url = `api.url + "/bot"`). It runs in a
thread with its own event loop, like an external service. It implements what ladderbot uses:
getMe, getUpdates (long polling with offset/timeout), setWebhook, deleteWebhook,
getWebhookInfo, sendMessage, sendDocument (multipart), answerCallbackQuery and
editMessageReplyMarkup; `fail_next` makes the next calls of a method fail (e.g. 429 with
retry_after), `hold` stalls them until `release` (so a test can kill the caller while its
request is in flight). `Prospect` builds the updates a person in a chat would cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.http import HeldCalls, Hold, ServerThread, listening_socket, wait_until

TOKEN = "123456:TEST-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Ladder", "username": "ladder_test_bot"}


@dataclass(frozen=True)
class Call:
    """One request the bot made: the method, its parameters (as sent) and uploaded files."""

    method: str
    params: dict[str, str]
    files: dict[str, tuple[str, bytes]]
    at: float  # time.monotonic() when it arrived

    def json(self, name: str) -> Any:
        """A parameter the client sent JSON-encoded (reply_markup, chat_id...)."""
        return json.loads(self.params[name])


@dataclass
class Sent:
    """A message the bot sent to a chat (its keyboard can change later)."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    document: tuple[str, bytes] | None = None  # the file (name, bytes), URL or file_id sent
    media: str = "document"  # what it was sent as: document, photo or video

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def button(self, label: str) -> dict[str, Any]:
        for button in self.buttons:
            if button["text"] == label:
                return button
        raise LookupError(f"no button {label!r} in message {self.text!r}: {self.buttons}")


@dataclass
class _Failure:
    error_code: int
    description: str
    parameters: dict[str, Any]
    times: int


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    chats: dict[int, list[Sent]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, str] = field(default_factory=dict)
    failures: dict[str, _Failure] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)  # file ids given to uploads


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


class FakeTelegram(HeldCalls):
    """The fake Bot API server; use as a context manager or call start()/stop()."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self._state = _State()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_update: asyncio.Event | None = None
        self._server: ServerThread | None = None
        self._closing = False
        self.port = 0

    @property
    def url(self) -> str:
        """What TELEGRAM_API_URL should be."""
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        sock, _ = listening_socket()
        self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])]
        )
        self._server = ServerThread(app, sock, "the fake Telegram API")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._closing = True
            if self._loop and self._new_update:
                self._loop.call_soon_threadsafe(self._new_update.set)  # end pending long polls
            self._server.stop()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what the tests drive -------------------------------------------------------------------

    def prospect(self, chat_id: int, first_name: str = "Ada", **user: Any) -> Prospect:
        return Prospect(self, chat_id, {"first_name": first_name, **user})

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def push(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates, waking a waiting long poll."""
        with self._lock:
            self._state.updates.append(update)
        if self._loop and self._new_update:
            self._loop.call_soon_threadsafe(self._new_update.set)

    def fail_next(
        self,
        method: str,
        times: int = 1,
        error_code: int = 429,
        retry_after: int | None = 1,
        description: str = "Too Many Requests: retry after 1",
        **parameters: Any,
    ) -> None:
        """Make the next `times` calls of `method` fail with this error; `retry_after` and
        any other keyword (e.g. migrate_to_chat_id) go into the response's parameters."""
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        with self._lock:
            self._state.failures[method] = _Failure(error_code, description, parameters, times)

    def messages(self, chat_id: int) -> list[Sent]:
        """Every message sent to the chat, oldest first."""
        with self._lock:
            return list(self._state.chats.get(chat_id, []))

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._state.updates)

    @property
    def webhook(self) -> dict[str, str]:
        with self._lock:
            return dict(self._state.webhook)

    async def wait_for(
        self, condition: Callable[[], bool], seconds: float = 120.0, what: str = "condition"
    ) -> None:
        """Poll `condition` (from the test's event loop) until it holds."""
        await wait_until(condition, seconds, what, self.calls)

    async def wait_messages(self, chat_id: int, count: int, seconds: float = 120.0) -> list[Sent]:
        await self.wait_for(
            lambda: len(self.messages(chat_id)) >= count, seconds, f"{count} messages to {chat_id}"
        )
        return self.messages(chat_id)

    # --- the HTTP side ----------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._new_update = asyncio.Event()
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params, files = await _parameters(request)
        if await self.dropped_after_hold(method):
            return _error(500, "Internal Server Error: the fake dropped this call")
        with self._lock:
            self._state.calls.append(Call(method, params, files, time.monotonic()))
            failure = self._state.failures.get(method)
            if failure:
                failure.times -= 1
                if failure.times <= 0:
                    del self._state.failures[method]
        if failure:
            return _error(failure.error_code, failure.description, failure.parameters)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        response: JSONResponse = await handler(params, files)
        return response

    async def _m_getMe(self, *_: Any) -> JSONResponse:
        return _ok(BOT_USER)

    async def _m_getUpdates(self, params: dict[str, str], _: Any) -> JSONResponse:
        if self.webhook.get("url"):
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        assert self._new_update is not None
        while True:
            self._new_update.clear()
            with self._lock:
                if offset:
                    self._state.updates = [
                        u for u in self._state.updates if u["update_id"] >= offset
                    ]
                batch = self._state.updates[:limit]
            left = deadline - time.monotonic()
            if batch or left <= 0 or self._closing:
                return _ok(batch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=left)

    async def _m_setWebhook(self, params: dict[str, str], _: Any) -> JSONResponse:
        with self._lock:
            self._state.webhook = {k: params[k] for k in ("url", "secret_token") if k in params}
        return _ok(True)

    async def _m_deleteWebhook(self, params: dict[str, str], _: Any) -> JSONResponse:
        with self._lock:
            self._state.webhook = {}
            if params.get("drop_pending_updates") in ("true", "True"):
                self._state.updates = []
        return _ok(True)

    async def _m_getWebhookInfo(self, *_: Any) -> JSONResponse:
        with self._lock:
            url = self._state.webhook.get("url", "")
            pending = len(self._state.updates)
        return _ok({"url": url, "has_custom_certificate": False, "pending_update_count": pending})

    async def _m_sendMessage(self, params: dict[str, str], _: Any) -> JSONResponse:
        if not params.get("text"):
            return _error(400, "Bad Request: message text is empty")
        return self._record(params, params["text"], None)

    async def _m_sendDocument(
        self, params: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> JSONResponse:
        return self._attachment("document", params, files)

    async def _m_sendPhoto(
        self, params: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> JSONResponse:
        return self._attachment("photo", params, files)

    async def _m_sendVideo(
        self, params: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> JSONResponse:
        return self._attachment("video", params, files)

    def _attachment(
        self, media: str, params: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> JSONResponse:
        """A file uploaded (multipart), or a URL or the file_id of an earlier upload (a
        parameter); an unknown file_id is refused, as Telegram does."""
        attached = files.get(media)
        if attached is None and params.get(media):
            given = params[media]
            with self._lock:
                known = given in self._state.files
            if not known and not given.startswith(("http://", "https://")):
                return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            attached = (given, b"")
        if attached is None:
            return _error(400, f"Bad Request: there is no {media} in the request")
        return self._record(params, params.get("caption", ""), attached, media)

    async def _m_answerCallbackQuery(self, params: dict[str, str], _: Any) -> JSONResponse:
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query is too old or query ID is invalid")
        return _ok(True)

    async def _m_editMessageReplyMarkup(self, params: dict[str, str], _: Any) -> JSONResponse:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        markup = json.loads(params["reply_markup"]) if params.get("reply_markup") else None
        with self._lock:
            sent = next(
                (m for m in self._state.chats.get(chat_id, []) if m.message_id == message_id), None
            )
            if sent is None:
                return _error(400, "Bad Request: message to edit not found")
            if (sent.reply_markup or None) == (markup or None):
                return _error(400, "Bad Request: message is not modified")
            sent.reply_markup = markup
            return _ok(_message_json(sent))

    def _record(
        self,
        params: dict[str, str],
        text: str,
        document: tuple[str, bytes] | None,
        media: str = "document",
    ) -> JSONResponse:
        chat_id = int(params["chat_id"])
        markup = json.loads(params["reply_markup"]) if params.get("reply_markup") else None
        with self._lock:
            sent = Sent(next(self._ids), chat_id, text, markup, document, media)
            self._state.chats.setdefault(chat_id, []).append(sent)
            if document is not None and document[1]:  # an upload: its id may be sent later
                self._state.files.add(_file_id(sent))
        return _ok(_message_json(sent))


def _file_id(sent: Sent) -> str:
    """The id Telegram gives a sent file: the same id again when it was sent by its id."""
    assert sent.document is not None
    name, data = sent.document
    if not data and not name.startswith(("http://", "https://")):
        return name
    return f"{sent.media[0]}{sent.message_id}"


def _message_json(sent: Sent) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": sent.message_id,
        "date": int(time.time()),
        "chat": {"id": sent.chat_id, "type": "private"},
        "from": BOT_USER,
    }
    if sent.document:
        name = sent.document[0]
        attached = {"file_id": _file_id(sent), "file_unique_id": name}
        if sent.media == "photo":
            message["photo"] = [{**attached, "width": 90, "height": 90}]
        elif sent.media == "video":
            message["video"] = {**attached, "width": 90, "height": 90, "duration": 1}
        else:
            message["document"] = {**attached, "file_name": name}
        if sent.text:
            message["caption"] = sent.text
    else:
        message["text"] = sent.text
    if sent.reply_markup and "inline_keyboard" in sent.reply_markup:  # as Telegram: a reply
        message["reply_markup"] = sent.reply_markup  # keyboard is not part of the message
    return message


async def _parameters(request: Request) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Parameters from the query string and the body (urlencoded, multipart or JSON)."""
    params: dict[str, str] = dict(request.query_params)
    files: dict[str, tuple[str, bytes]] = {}
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = await request.json()
        params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    elif kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[name] = (value.filename or name, await value.read())
                else:
                    params[name] = value
    return params, files


class Prospect:
    """A person chatting with the bot in a private chat: builds their updates."""

    def __init__(self, api: FakeTelegram, chat_id: int, user: dict[str, Any]) -> None:
        self.api = api
        self.chat_id = chat_id
        self.user = {"id": chat_id, "is_bot": False, **user}

    def text(self, text: str) -> dict[str, Any]:
        """The update for a typed message (commands too: "/start src")."""
        message: dict[str, Any] = {
            "message_id": next(self.api._ids),
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private"},
            "from": self.user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": self.api.next_update_id(), "message": message}

    def contact(self, phone: str, user_id: int | None = None) -> dict[str, Any]:
        """The update for a shared contact card: the prospect's own (one tap on a
        request_contact button) unless `user_id` names someone else (a forwarded card)."""
        card = {"phone_number": phone, "first_name": self.user["first_name"]}
        owner = self.chat_id if user_id is None else user_id
        if owner:  # a card typed into the phone book has no user id
            card["user_id"] = owner
        message: dict[str, Any] = {
            "message_id": next(self.api._ids),
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private"},
            "from": self.user,
            "contact": card,
        }
        return {"update_id": self.api.next_update_id(), "message": message}

    def press_data(self, data: str, message_id: int) -> dict[str, Any]:
        """The update for pressing a button with this callback data on that message."""
        sent = next((m for m in self.messages() if m.message_id == message_id), None)
        chat = {"id": self.chat_id, "type": "private"}
        message = (
            _message_json(sent) if sent else {"message_id": message_id, "date": 0, "chat": chat}
        )
        query = {
            "id": f"cq{self.api.next_update_id()}",
            "from": self.user,
            "chat_instance": f"ci{self.chat_id}",
            "message": message,
            "data": data,
        }
        return {"update_id": self.api.next_update_id(), "callback_query": query}

    def press(self, label: str, message: Sent | None = None) -> dict[str, Any]:
        """Press the button `label` on `message` (default: the newest message that has it)."""
        if message is None:
            message = next(
                (
                    m
                    for m in reversed(self.messages())
                    if any(b["text"] == label for b in m.buttons)
                ),
                None,
            )
            if message is None:
                raise LookupError(f"no message to {self.chat_id} has a button {label!r}")
        return self.press_data(message.button(label)["callback_data"], message.message_id)

    def messages(self) -> list[Sent]:
        return self.api.messages(self.chat_id)

    @property
    def last(self) -> Sent:
        return self.messages()[-1]
