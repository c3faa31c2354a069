"""The Telegram channel (python-telegram-bot 22): updates in, engine events out, and back.

Inbound: `/start <payload>`, `/restart`, `/stop`, `/help`, typed text and button presses become
engine events for `Ladder.handle`; `/forget` asks for confirmation and then erases the prospect.
Outbound (`TelegramSender.deliver`, also used by the follow-up worker): messages with inline
keyboards whose callback data is signed, tracked link buttons (`/r/<token>`), documents and
`.ics` invitations, sent within flood limits shared through Redis, retried on 429.
The same `TelegramChannel.process` serves the webhook (`routes`) and long polling (`poll`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
    User,
)
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot import refs
from bot.app import Services
from bot.channels.telegram_request import AiohttpRequest, mask_token_in_logs
from bot.config import Settings
from bot.delivery import Deliveries
from bot.errors import LadderError, StorageError
from bot.model import (
    Action,
    Button,
    Conversation,
    Event,
    Help,
    LinkButton,
    LinkOpened,
    Press,
    Profile,
    Restart,
    Say,
    SendCalendar,
    SendDocument,
    Start,
    Stop,
    Text,
)
from bot.service import Ladder, Outcome
from storage import keys
from storage.links import LinkStore, TrackedLink
from storage.ratelimit import FloodLimiter, Rate
from storage.redis import SEEN_TTL_SECONDS

log = logging.getLogger("ladderbot.telegram")

CHANNEL = "telegram"
SIGNATURE_CHARS = 10
FORGET = "!forget"  # pseudo-step of the /forget confirmation buttons; no flow step looks like it
OPENED = "!opened"  # pseudo-choice "I opened it", for link buttons when links cannot be tracked
OPENED_LABEL = "✓ Done"
SEND_ATTEMPTS = 5
CHAT_BURST = 3  # a step's few messages go out together; then the chat rate applies
KEYBOARD_TTL_SECONDS = 30 * 24 * 3600
ALLOWED_UPDATES = ["message", "callback_query"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MOVED_ON = frozenset({"step_reached", "completed", "opted_out", "restarted"})
PRESSED_PARTS = ("message_id", "date", "chat")  # what read_update parses of a pressed message

FORGED_PRESS = "Sorry, that button doesn't work any more."
STALE_PRESS = "That question has moved on."
FORGET_ASK = (
    "This erases everything I know about you: your answers and our whole history. Erase it?"
)
FORGET_YES = "Yes, erase everything"
FORGET_NO = "No, keep it"
FORGOTTEN = "Done: everything about you is erased. Send /start if you ever want to begin again."
KEPT = "Nothing was erased."
NOT_FOUND_PAGE = "<!doctype html><title>Link not found</title><h1>This link is not valid.</h1>"
UNAVAILABLE_PAGE = (
    "<!doctype html><title>Try again</title><h1>Something went wrong on our side.</h1>"
    "<p>Please try the link again in a minute.</p>"
)

T = TypeVar("T")


class TelegramNotConfigured(LadderError):
    """TELEGRAM_TOKEN is missing where Telegram is needed."""


class DeliveryFailed(LadderError):
    """Telegram stayed unreachable (or kept answering 429) for a message, after retries: the
    messages before it were sent, it and the ones after were not."""


# --- pure parts ------------------------------------------------------------------------------


def conversation_id(chat_id: int | str) -> str:
    return f"{CHANNEL}:{chat_id}"


def update_key(update_id: int) -> str:
    return f"{CHANNEL}:update:{update_id}"


def sign(secret: str, conversation: str, step: str, choice: str) -> str:
    """10 base64url characters of HMAC-SHA256 over the conversation, step and choice."""
    mac = hmac.new(secret.encode(), f"{conversation}|{step}|{choice}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode()[:SIGNATURE_CHARS]


def callback_data(secret: str, conversation: str, step: str, choice: str) -> str:
    """`step:choice:signature`; fits Telegram's 64 bytes because the flow validator keeps
    step and choice ids within 52 characters together."""
    return f"{step}:{choice}:{sign(secret, conversation, step, choice)}"


def verify_callback(secret: str, conversation: str, data: str) -> Press | None:
    """The press the callback data stands for, or None if it was not signed by us for this
    conversation (forged, mangled, or from another chat)."""
    step, _, rest = data.partition(":")
    choice, _, signature = rest.rpartition(":")
    if not step or not choice:
        return None
    expected = sign(secret, conversation, step, choice)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return Press(step, choice)


def webhook_secret(settings: Settings) -> str:
    """TELEGRAM_WEBHOOK_SECRET, or one derived from LADDER_SECRET, so the webhook is always
    checked (Telegram allows 1-256 characters of A-Z, a-z, 0-9, _ and -)."""
    if settings.telegram_webhook_secret:
        return settings.telegram_webhook_secret
    mac = hmac.new(settings.secret.encode(), b"telegram-webhook", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


@dataclass(frozen=True)
class ForgetRequest:
    """`/forget`: handled by the channel (confirm, then erase), never by the engine."""


def inbound(text: str | None) -> Event | ForgetRequest:
    """What a message means: a command, typed text, or (no text: a sticker, a photo) a call for
    help, so the prospect learns how to answer."""
    if text is None or not text.strip():
        return Help()
    if not text.startswith("/"):
        return Text(text)
    word, _, rest = text.partition(" ")
    command = word[1:].split("@", 1)[0].lower()
    if command == "start":
        return Start(rest.strip())
    if command == "forget":
        return ForgetRequest()
    commands: dict[str, Event] = {"restart": Restart(), "stop": Stop(), "help": Help()}
    return commands.get(command, Help())


_TEXT = (str, type(None))


def unreadable(update: Update) -> str | None:
    """Why an update cannot be read: the first field the ladder uses that is not of the type
    the Bot API documents (python-telegram-bot does not check), named by its path and type,
    never by its content. None when every such field is right."""
    for path, value, kind in _fields(update):
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{path} is {type(value).__name__}"
    return None


def _fields(update: Update) -> Iterator[tuple[str, object, type | tuple[type, ...]]]:
    """The fields the ladder reads, each after the field that holds it has passed."""
    if (message := update.message) is not None:
        yield "message.message_id", message.message_id, int
        yield "message.chat", message.chat, Chat
        yield "message.chat.id", message.chat.id, int
        yield "message.text", message.text, _TEXT
    if (query := update.callback_query) is not None:
        yield "callback_query.id", query.id, str
        yield "callback_query.data", query.data, _TEXT
        yield "callback_query.from", query.from_user, User
        if query.message is not None:
            yield "callback_query.message.message_id", query.message.message_id, int
            yield "callback_query.message.chat", query.message.chat, Chat
            yield "callback_query.message.chat.id", query.message.chat.id, int
    if (user := update.effective_user) is not None:
        yield "from.id", user.id, int
        yield "from.first_name", user.first_name, str
        yield "from.last_name", user.last_name, _TEXT
        yield "from.username", user.username, _TEXT
        yield "from.language_code", user.language_code, _TEXT


def read_update(data: dict[str, Any], bot: Bot) -> Update:
    """`Update.de_json`, except that of the message a button was pressed on only the id, date
    and chat are parsed, all the channel reads of it: Telegram sends the whole message back,
    keyboard included, and python-telegram-bot's Message is the costliest object to parse."""
    query = data.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        pressed = {
            name: query["message"][name] for name in PRESSED_PARTS if name in query["message"]
        }
        data = {**data, "callback_query": {**query, "message": pressed}}
    return Update.de_json(data, bot)


def profile_of(user: User | None) -> Profile | None:
    if user is None:
        return None
    return Profile(
        first_name=user.first_name,
        last_name=user.last_name or "",
        username=user.username or "",
        language=user.language_code or "",
    )


def _ics_text(value: str) -> str:
    """Escape TEXT for iCalendar (RFC 5545 3.3.11)."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n")


def _ics_fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character (RFC 5545 3.1)."""
    parts: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # continuation lines start with a space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_ics(
    title: str, start: datetime, minutes: int, *, description: str, uid: str, stamp: datetime
) -> str:
    """An RFC 5545 calendar with one event; `uid` is stable so a re-sent invite updates it."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ladderbot//webinar//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_ics_time(stamp)}",
        f"DTSTART:{_ics_time(start)}",
        f"DTEND:{_ics_time(start + timedelta(minutes=minutes))}",
        f"SUMMARY:{_ics_text(title)}",
        f"DESCRIPTION:{_ics_text(description)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_ics_fold(line) + "\r\n" for line in lines)


def _retry_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- sending -------------------------------------------------------------------------------------


def _keyboard_key(conversation: str) -> str:
    return keys.keyboard(conversation)


class TelegramSender:
    """Delivers actions to a prospect's chat (the Sender protocol of bot.channels)."""

    def __init__(
        self,
        bot: Bot,
        redis: Redis,
        *,
        secret: str,
        public_url: str | None,
        documents: Path,
        limiter: FloodLimiter,
        attempts: int = SEND_ATTEMPTS,
    ) -> None:
        self.bot = bot
        self.attempts = attempts
        self.redis = redis
        self.secret = secret
        self.public_url = public_url
        self.documents = documents
        self.limiter = limiter
        self.links = LinkStore(redis)
        if public_url is None:
            log.warning(
                "PUBLIC_URL is not set: links are not tracked (link buttons lead straight to "
                'their url); resource and trial steps show a "%s" button that records the '
                "opening when the prospect presses it",
                OPENED_LABEL,
            )

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        """Send the messages among `actions` in order (alerts and relays go via the outbox).

        Raises DeliveryFailed when Telegram stays unreachable, so a caller that can retry
        later (the worker's outbox) does. A message Telegram refuses is logged and skipped;
        a prospect who blocked the bot gets nothing more (logged)."""
        try:
            for action in actions:
                if isinstance(action, Say):
                    await self.say(conversation.id, action)
                elif isinstance(action, SendDocument):
                    await self._document(conversation, action)
                elif isinstance(action, SendCalendar):
                    await self._calendar(conversation, action)
        except Forbidden as exc:
            log.warning("cannot message %s (%s): skipping the rest", conversation.id, exc)

    async def say(self, conversation: str, say: Say, track: bool = True) -> int | None:
        """Send one message; with `track`, its choice keyboard replaces the previous one (whose
        buttons are removed). Returns the message id, None if it could not be sent."""
        chat = conversation.split(":", 1)[1]
        rows = [[await self._button(conversation, b)] for b in say.buttons]
        if self.public_url is None:  # untracked links: the prospect tells us they opened it
            rows += [
                [InlineKeyboardButton(OPENED_LABEL, callback_data=self._data(conversation, b))]
                for b in say.buttons
                if isinstance(b, LinkButton)
            ]
        markup = InlineKeyboardMarkup(rows) if rows else None
        message = await self._send(
            chat, lambda: self.bot.send_message(chat, say.text, reply_markup=markup)
        )
        if message is None:
            return None
        if track and any(isinstance(b, Button) for b in say.buttons):
            await self._track_keyboard(conversation, message.message_id)
        return message.message_id

    async def _track_keyboard(self, conversation: str, message_id: int) -> None:
        """Remember the latest choice keyboard and take the previous one off (cosmetic: a
        failure is only logged, the message is sent)."""
        try:
            previous = await self.redis.set(
                _keyboard_key(conversation), message_id, ex=KEYBOARD_TTL_SECONDS, get=True
            )
        except RedisError as exc:
            log.warning("could not remember the keyboard of %s: %s", conversation, exc)
            return
        if previous is not None:
            await self.remove_keyboard(conversation.split(":", 1)[1], int(previous))

    async def _button(self, conversation: str, button: Button | LinkButton) -> InlineKeyboardButton:
        if isinstance(button, Button):
            return InlineKeyboardButton(
                button.label, callback_data=self._data(conversation, button)
            )
        url = refs.fill(button.url, self.secret, conversation)
        if self.public_url is None:
            return InlineKeyboardButton(button.label, url=url)
        token = await self.links.token(TrackedLink(conversation, button.step, url))
        return InlineKeyboardButton(button.label, url=f"{self.public_url}/r/{token}")

    def _data(self, conversation: str, button: Button | LinkButton) -> str:
        choice = button.choice if isinstance(button, Button) else OPENED
        return callback_data(self.secret, conversation, button.step, choice)

    async def _document(self, conversation: Conversation, action: SendDocument) -> None:
        document: str | Path = action.path
        if not action.path.startswith(("https://", "http://")):
            document = self.documents / action.path
            if not document.is_file():
                log.error("document %s for %s does not exist: not sent", document, conversation.id)
                return
        caption = action.caption or None
        await self._send(
            conversation.chat,
            lambda: self.bot.send_document(conversation.chat, document, caption=caption),
        )

    async def _calendar(self, conversation: Conversation, action: SendCalendar) -> None:
        start = datetime.fromisoformat(action.start)
        uid = hashlib.sha256(f"{conversation.id}|{conversation.flow}".encode()).hexdigest()[:24]
        text = calendar_ics(
            action.title,
            start,
            action.minutes,
            description=action.description,
            uid=f"{uid}@ladderbot",
            stamp=datetime.now(UTC),
        )
        file = InputFile(text.encode(), filename="webinar.ics")
        await self._send(conversation.chat, lambda: self.bot.send_document(conversation.chat, file))

    async def _send(self, chat: str, send: Callable[[], Awaitable[T]]) -> T | None:
        """One message within the flood limits, resent after a 429 (honouring retry_after) or a
        network error (DeliveryFailed when attempts run out); None if Telegram refused it for
        good (logged)."""
        for attempt in range(1, self.attempts + 1):
            await self._throttle(chat)
            try:
                return await send()
            except RetryAfter as exc:
                delay = _retry_seconds(exc)
                log.warning("Telegram flood control for chat %s: retrying in %.1fs", chat, delay)
            except BadRequest as exc:
                log.error("Telegram refused a message to chat %s: %s", chat, exc)
                return None
            except NetworkError as exc:
                delay = min(0.2 * 2**attempt, 5.0)
                log.warning("sending to chat %s failed (%s): retrying in %.1fs", chat, exc, delay)
            except Forbidden:
                raise  # the prospect blocked the bot: deliver() skips the rest
            except TelegramError as exc:  # e.g. a group that became a supergroup
                log.error("Telegram refused a message to chat %s: %s", chat, exc)
                return None
            if attempt < self.attempts:
                await asyncio.sleep(delay)
        raise DeliveryFailed(f"gave up sending to chat {chat} after {self.attempts} attempts")

    async def _throttle(self, chat: str) -> None:
        """Wait for the shared flood limits; if Redis is unreachable, send unthrottled rather
        than not at all."""
        try:
            await self.limiter.acquire(chat)
        except RedisError as exc:
            log.warning("flood limiter unavailable (%s): sending without it", exc)

    async def remove_keyboard(self, chat: str, message_id: int) -> None:
        """Take the buttons off an earlier message (cosmetic: failures are only logged)."""
        try:
            await self.bot.edit_message_reply_markup(chat, message_id, reply_markup=None)
        except TelegramError as exc:
            log.debug("could not remove the keyboard of %s/%s: %s", chat, message_id, exc)

    async def clear_keyboard(self, conversation: str, pressed: int | None = None) -> None:
        """The prospect moved on: remove the last choice keyboard (and that of the pressed
        message), so stale presses become rarer. Cosmetic: a failure is only logged."""
        try:
            tracked = await self.redis.getdel(_keyboard_key(conversation))
        except RedisError as exc:
            log.warning("could not look up the keyboard of %s: %s", conversation, exc)
            tracked = None
        stale = {int(tracked)} if tracked is not None else set()
        if pressed is not None:
            stale.add(pressed)
        for message_id in stale:
            await self.remove_keyboard(conversation.split(":", 1)[1], message_id)

    async def answer(self, query_id: str, text: str | None = None) -> None:
        """Answer a button press (stops the client's spinner); a failure is only logged."""
        try:
            await self.bot.answer_callback_query(query_id, text=text)
        except TelegramError as exc:
            log.debug("could not answer callback query %s: %s", query_id, exc)

    async def forget(self, conversation: str) -> int:
        """Erase what the channel itself keeps about the conversation (links, keyboard)."""
        erased = await self.links.forget(conversation)
        return erased + int(await self.redis.delete(_keyboard_key(conversation)))

    async def check(self) -> None:
        """Ask the Bot API who we are (getMe), so a wrong token stops a process at start."""
        try:
            await self.bot.initialize()
        except InvalidToken as exc:
            raise TelegramNotConfigured(
                "TELEGRAM_TOKEN was rejected by the Bot API at TELEGRAM_API_URL"
            ) from exc

    async def aclose(self) -> None:
        await self.bot.shutdown()
        await self.bot.request.shutdown()  # Bot.shutdown skips a bot never initialized (getMe)


# --- receiving -----------------------------------------------------------------------------------


class TelegramChannel:
    """Turns Telegram updates into `Ladder.handle` calls and delivers what comes back."""

    def __init__(
        self, ladder: Ladder, sender: TelegramSender, webhook_secret: str, deliveries: Deliveries
    ) -> None:
        self.ladder = ladder
        self.sender = sender
        self.deliveries = deliveries
        self.secret = sender.secret
        self.webhook_secret = webhook_secret

    @classmethod
    def from_services(cls, services: Services) -> TelegramChannel:
        """The channel of a process; its sender is registered in `services.senders` (for the
        worker) and shared by every channel built from the same services."""
        settings = services.settings
        sender = services.senders.get(CHANNEL)
        if not isinstance(sender, TelegramSender):
            bot = make_bot(settings)
            chat_rate, bot_rate = settings.telegram_chat_rate, settings.telegram_bot_rate
            limiter = FloodLimiter(
                services.redis,
                bot.token.split(":", 1)[0],
                per_chat=Rate(chat_rate, burst=CHAT_BURST),
                per_bot=Rate(bot_rate, burst=max(1, int(bot_rate))),
            )
            sender = TelegramSender(
                bot,
                services.redis,
                secret=settings.secret,
                public_url=settings.public_url,
                documents=settings.flows_dir,
                limiter=limiter,
            )
            services.senders[CHANNEL] = sender
        deliveries = Deliveries(services.ladder, services.senders)
        return cls(services.ladder, sender, webhook_secret(settings), deliveries)

    async def process(self, update: Update) -> None:
        """Handle one update. Raises StorageError or RedisError when Redis is unavailable before
        the step was stored, so the update is retried (webhook: non-2xx; polling: not
        confirmed); once it is stored, its replies are in the outbox and nothing is raised. A
        malformed update is logged and changes nothing."""
        if (reason := unreadable(update)) is not None:
            log.warning("ignored update %s: %s", update.update_id, reason)
            return
        if update.callback_query is not None:
            await self._on_press(update, update.callback_query)
            return
        message = update.message
        if message is None:
            return  # edits, channel posts, membership changes: nothing for the ladder
        conv = conversation_id(message.chat.id)
        what = inbound(message.text)
        if isinstance(what, ForgetRequest):
            if await self._first_time(conv, update.update_id):
                buttons = (Button(FORGET_YES, FORGET, "yes"), Button(FORGET_NO, FORGET, "no"))
                await self.sender.say(conv, Say(FORGET_ASK, buttons), track=False)
            return
        outcome = await self._handle(conv, what, update)
        if not outcome.duplicate:
            await self._reply(outcome)

    async def _handle(self, conv: str, event: Event, update: Update) -> Outcome:
        return await self.ladder.handle(
            conv,
            event,
            profile=profile_of(update.effective_user),
            update_key=update_key(update.update_id),
            deliver_now=True,
        )

    async def _on_press(self, update: Update, query: CallbackQuery) -> None:
        message = query.message
        chat = message.chat.id if message is not None else query.from_user.id
        conv = conversation_id(chat)
        press = verify_callback(self.secret, conv, query.data or "")
        if press is None:
            log.warning("ignored a button press with bad callback data in %s", conv)
            await self.sender.answer(query.id, FORGED_PRESS)
            return
        pressed = message.message_id if message is not None else None
        if press.step == FORGET:
            await self._confirm_forget(update, conv, press.choice == "yes", pressed)
            return
        event = LinkOpened(press.step) if press.choice == OPENED else press
        outcome = await self._handle(conv, event, update)
        if outcome.duplicate:
            return
        stale = any(e.name == "stale_press" for e in outcome.events)
        await self.sender.answer(query.id, STALE_PRESS if stale else None)
        await self._reply(outcome, pressed)

    async def _reply(self, outcome: Outcome, pressed: int | None = None) -> None:
        """Deliver the answer to an update. The step and its replies are stored already (the
        outbox), so whatever does not go now the worker sends later."""
        if pressed is not None or any(e.name in MOVED_ON for e in outcome.events):
            await self.sender.clear_keyboard(outcome.conversation.id, pressed)
        await self.deliveries.now(outcome)

    async def _confirm_forget(
        self, update: Update, conv: str, erase: bool, pressed: int | None
    ) -> None:
        if not await self._first_time(conv, update.update_id):
            return
        assert update.callback_query is not None
        await self.sender.answer(update.callback_query.id)
        if pressed is not None:
            await self.sender.remove_keyboard(conv.split(":", 1)[1], pressed)
        if not erase:
            await self.sender.say(conv, Say(KEPT), track=False)
            return
        await self.sender.clear_keyboard(conv)
        erased = await self.ladder.forget(conv) + await self.sender.forget(conv)
        log.info("forgot %s at their request (%d records)", conv, erased)
        await self.sender.say(conv, Say(FORGOTTEN), track=False)

    async def _first_time(self, conv: str, update_id: int) -> bool:
        """Mark an update the channel handles itself (not via Ladder.handle) as processed."""
        key = keys.seen(conv, update_key(update_id))
        return bool(await self.ladder.redis.set(key, "1", nx=True, ex=SEEN_TTL_SECONDS))

    # --- the web process ---

    async def webhook(self, request: Request) -> Response:
        """POST /telegram/webhook: 403 without the secret, 400 for a body that is not an update
        (no JSON object with a whole-number update_id), 503 when the update could not be
        stored (Redis down: Telegram retries), 200 once it is (its replies are in the outbox,
        sent now or by the worker). An update with fields of the wrong shape gets 200 too,
        logged and changing nothing: Telegram would only send it again and again."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            return PlainTextResponse("wrong secret token", status_code=403)
        try:
            data = await request.json()
        except ValueError:
            return PlainTextResponse("malformed update: not JSON", status_code=400)
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return PlainTextResponse("malformed update: no update_id", status_code=400)
        try:
            update = read_update(data, self.sender.bot)
        except Exception as exc:  # any shape python-telegram-bot cannot read: logged, answered
            log.warning("ignored update %s: unreadable (%s)", update_id, type(exc).__name__)
            return Response(status_code=200)
        try:
            await self.process(update)
        except (StorageError, RedisError) as exc:
            log.error("update %s not processed, Telegram will retry: %s", update.update_id, exc)
            return PlainTextResponse("storage unavailable", status_code=503)
        return Response(status_code=200)

    async def open_link(self, request: Request) -> Response:
        """GET /r/<token>: record the opening, then redirect to the link's url."""
        try:
            link = await self.sender.links.resolve(request.path_params["token"])
            if link is None:
                return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
            outcome = await self.ladder.handle(
                link.conversation, LinkOpened(link.step), deliver_now=True
            )
        except (StorageError, RedisError) as exc:
            log.error("tracked link not recorded: %s", exc)
            return HTMLResponse(UNAVAILABLE_PAGE, status_code=503)
        after = BackgroundTask(self._reply, outcome)  # the prospect need not wait for it
        return RedirectResponse(link.url, status_code=302, background=after)

    # --- long polling (ladder run) ---

    async def poll(self, stop: asyncio.Event, wait_seconds: int = 25) -> None:
        """Fetch updates until `stop` is set. Chats are processed concurrently, each chat's
        updates in order; a batch is confirmed (offset) only once it is fully processed, so
        Redis being down means a retry (duplicates are no-ops), never a lost update."""
        bot = self.sender.bot
        await bot.delete_webhook()  # getUpdates is refused while a webhook is set
        offset: int | None = None
        backoff = 0.5
        while not stop.is_set():
            fetch = asyncio.ensure_future(
                bot.get_updates(
                    offset=offset, timeout=wait_seconds, allowed_updates=ALLOWED_UPDATES
                )
            )
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
                break
            try:
                updates = fetch.result()
                chats = _by_chat(updates)
                done = await asyncio.gather(*map(self._process_chat, chats), return_exceptions=True)
                for failure in (r for r in done if isinstance(r, BaseException)):
                    raise failure
            except RetryAfter as exc:
                await _pause(stop, _retry_seconds(exc))
                continue
            except Conflict as exc:  # a webhook was set meanwhile, or another process polls
                log.error("polling refused (%s); retrying in %.1fs", exc, backoff)
                await _pause(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except (StorageError, RedisError, NetworkError) as exc:
                log.warning("polling: %s; retrying in %.1fs", exc, backoff)
                await _pause(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            if updates:
                offset = updates[-1].update_id + 1

    async def _process_chat(self, updates: list[Update]) -> None:
        for update in updates:
            try:
                await self.process(update)
            except (StorageError, RedisError):
                raise
            except Exception:  # a bug must not stall everyone's updates: log it and move on
                log.exception("update %s failed and is skipped", update.update_id)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but no longer than until `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _chat_of(update: Update) -> int:
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else 0


def _by_chat(updates: Sequence[Update]) -> list[list[Update]]:
    """Updates grouped by chat, each group in update order."""
    ordered = sorted(updates, key=lambda u: (_chat_of(u), u.update_id))
    return [list(group) for _, group in groupby(ordered, key=_chat_of)]


# --- wiring ----------------------------------------------------------------------------------


def make_bot(settings: Settings) -> Bot:
    """A Bot for TELEGRAM_TOKEN talking to TELEGRAM_API_URL (Telegram, or any Bot API server)."""
    if not settings.telegram_token:
        raise TelegramNotConfigured("TELEGRAM_TOKEN is not set")
    mask_token_in_logs()
    api = settings.telegram_api_url
    transport = AiohttpRequest(connection_pool_size=64, pool_timeout=10.0)  # long polls too
    return Bot(
        settings.telegram_token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=transport,
        get_updates_request=transport,
    )


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
    """The web process's Telegram routes (none without TELEGRAM_TOKEN)."""
    if not services.settings.telegram_token:
        log.info("TELEGRAM_TOKEN is not set: no Telegram webhook or tracked links")
        return []
    channel = TelegramChannel.from_services(services)
    return [
        Route("/telegram/webhook", channel.webhook, methods=["POST"]),
        Route("/r/{token}", channel.open_link, methods=["GET"]),
    ]
