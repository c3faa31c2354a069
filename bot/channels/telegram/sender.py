"""Delivering to a prospect's Telegram chat (the Sender protocol of bot.channels).

Messages with inline keyboards (bot.channels.telegram.buttons), documents and `.ics`
invitations, sent within flood limits shared through Redis, retried on 429 and network errors.
The latest choice keyboard of each chat is remembered, so the next one (or the prospect moving
on) takes it off: stale presses become rarer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from telegram import Bot, InputFile, Message
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot import calendar, metrics
from bot.channels.telegram.buttons import OPENED_LABEL, InlineKeyboards
from bot.forget import FORGET
from domain.errors import LadderError, StorageError
from domain.model import (
    Action,
    Button,
    Conversation,
    Say,
    SendCalendar,
    SendDocument,
    SendMedia,
)
from storage.base import Keyboards, Links
from storage.connect import REDIS_ERRORS
from storage.media import RedisMediaFiles
from storage.ratelimit import FloodLimiter

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 5
CHAT_BURST = 3  # a step's few messages go out together; then the chat rate applies

T = TypeVar("T")


class TelegramNotConfigured(LadderError):
    """TELEGRAM_TOKEN is missing where Telegram is needed."""


class DeliveryFailed(LadderError):
    """Telegram stayed unreachable (or kept answering 429) for a message, after retries: the
    messages before it were sent, it and the ones after were not."""


class TelegramSender:
    """Delivers actions to a prospect's chat."""

    def __init__(
        self,
        bot: Bot,
        *,
        keyboards: Keyboards,
        links: Links,
        secret: str,
        public_url: str | None,
        documents: Path,
        limiter: FloodLimiter,
        media_files: RedisMediaFiles,
        attempts: int = SEND_ATTEMPTS,
    ) -> None:
        self.bot = bot
        self.attempts = attempts
        self.keyboards = keyboards
        self.links = links
        self.secret = secret
        self.documents = documents
        self.limiter = limiter
        self.media_files = media_files
        self.markup = InlineKeyboards(secret, public_url, links)
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
                elif isinstance(action, SendMedia):
                    await self._media(conversation, action)
                elif isinstance(action, SendCalendar):
                    await self._calendar(conversation, action)
        except Forbidden as exc:
            log.warning("cannot message %s (%s): skipping the rest", conversation.id, exc)

    async def say(self, conversation: str, say: Say) -> int | None:
        """Send one message; a flow step's choice keyboard replaces the previous one (whose
        buttons are removed), the /forget question's does not. Returns the message id, None if
        it could not be sent."""
        chat = conversation.split(":", 1)[1]
        markup = await self.markup.markup(conversation, say)
        message = await self._send(
            chat, lambda: self.bot.send_message(chat, say.text, reply_markup=markup)
        )
        if message is None:
            return None
        inline = not say.share_contact  # a reply keyboard cannot be taken off a message
        if inline and any(isinstance(b, Button) and b.step != FORGET for b in say.buttons):
            await self._track_keyboard(conversation, message.message_id)
        return message.message_id

    async def _track_keyboard(self, conversation: str, message_id: int) -> None:
        """Remember the latest choice keyboard and take the previous one off (cosmetic: a
        failure is only logged, the message is sent)."""
        try:
            previous = await self.keyboards.replace(conversation, message_id)
        except StorageError as exc:
            log.warning("could not remember the keyboard of %s: %s", conversation, exc)
            return
        if previous is not None:
            await self.remove_keyboard(conversation.split(":", 1)[1], previous)

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

    async def _media(self, conversation: Conversation, action: SendMedia) -> None:
        """An image, video or document: by URL, by the file_id of an earlier upload of the same
        bytes, else uploaded (and its file_id remembered). A file outside the flows folder or
        missing is logged and not sent."""
        chat, caption = conversation.chat, action.caption or None
        senders: dict[str, Callable[..., Awaitable[Message]]] = {
            "image": self.bot.send_photo,
            "video": self.bot.send_video,
            "document": self.bot.send_document,
        }
        send = senders[action.kind]
        if action.source.startswith("https://"):
            await self._send(chat, lambda: send(chat, action.source, caption=caption))
            return
        path = (self.documents / action.source).resolve()
        if not path.is_relative_to(self.documents.resolve()) or not path.is_file():
            log.error("media %s for %s is not a file in the flows folder: not sent", path, chat)
            return
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        known = await self._known_file(digest)
        if known is not None:
            if await self._send(chat, lambda: send(chat, known, caption=caption)) is not None:
                return
            await self._forget_file(digest)  # Telegram refused the id: upload the file
        upload = InputFile(data, filename=path.name)
        sent = await self._send(chat, lambda: send(chat, upload, caption=caption))
        file_id = uploaded_file_id(sent) if sent is not None else None
        if file_id is not None:
            try:
                await self.media_files.remember(digest, file_id)
            except StorageError as exc:  # the next send uploads again
                log.warning("could not remember the file id of %s: %s", path.name, exc)

    async def _known_file(self, digest: str) -> str | None:
        try:
            return await self.media_files.file_id(digest)
        except StorageError as exc:
            log.warning("media file ids unavailable (%s): uploading", exc)
            return None

    async def _forget_file(self, digest: str) -> None:
        try:
            await self.media_files.forget(digest)
        except StorageError as exc:
            log.warning("could not forget a refused file id: %s", exc)

    async def _calendar(self, conversation: Conversation, action: SendCalendar) -> None:
        ics = calendar.invitation(conversation, action, stamp=datetime.now(UTC))
        file = InputFile(ics, filename=calendar.FILENAME)
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
                delay = retry_seconds(exc)
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
            metrics.flood_waited(await self.limiter.acquire(chat))
        except REDIS_ERRORS as exc:
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
            tracked = await self.keyboards.take(conversation)
        except StorageError as exc:
            log.warning("could not look up the keyboard of %s: %s", conversation, exc)
            tracked = None
        stale = {tracked} if tracked is not None else set()
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


def retry_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def uploaded_file_id(message: Message) -> str | None:
    """The file_id Telegram gave an uploaded photo (its largest size), video or document."""
    if message.photo:
        return message.photo[-1].file_id
    found = message.video or message.document
    return found.file_id if found is not None else None
