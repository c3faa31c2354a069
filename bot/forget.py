"""/forget, for any channel: ask first, then erase everything about the prospect (or not), and
say which.

Each answer goes through the outbox like a step's messages: written atomically with the marker
of the update that caused it (a redelivered update says nothing twice; a crash loses nothing),
sent at once by the process that handled the update, by the worker otherwise. They are notices
(outbox kind `notice:<channel>`): delivered whatever became of the conversation, since the last
one goes to a prospect who was just erased."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from bot.items import ItemKind, NoticeItem
from bot.service import Conversations, Outcome
from bot.texts import DEFAULT_LANGUAGE, Builtin, language_code, text
from domain.errors import DuplicateUpdate, StorageError
from domain.model import Button, Conversation, Say
from storage.base import Notices
from storage.connect import REDIS_ERRORS

log = logging.getLogger(__name__)

FORGET = "!forget"  # pseudo-step of the confirmation buttons; no flow step looks like it


class ForgetConfirmation:
    """Asks, erases (every record bot.privacy lists), and says so; `deliver` sends a step's
    messages this process holds (bot.delivery.Deliveries.now)."""

    def __init__(
        self,
        conversations: Conversations,
        notices: Notices,
        deliver: Callable[[Outcome], Awaitable[int]],
    ) -> None:
        self.conversations = conversations
        self.notices = notices
        self.deliver = deliver

    async def ask(self, conversation: str, update_key: str | None) -> None:
        """`/forget`: ask whether to erase, with a yes and a no button (step FORGET)."""
        language = await self.language(conversation)
        buttons = (
            Button(text(Builtin.FORGET_YES, language), FORGET, "yes"),
            Button(text(Builtin.FORGET_NO, language), FORGET, "no"),
        )
        await self._say(conversation, update_key, Say(text(Builtin.FORGET_ASK, language), buttons))

    async def answered(self, conversation: str, update_key: str) -> bool:
        """Was the press with this update key answered before (a redelivery)?"""
        return await self.conversations.store.was_seen(conversation, update_key)

    async def answer(self, conversation: str, update_key: str | None, erase: bool) -> None:
        """A press of yes (`erase`) or no. Erasing again on a redelivered press is harmless;
        the answer is said once."""
        language = await self.language(conversation)  # before it is erased
        if erase:
            try:
                erased = await self.conversations.forget(conversation)
            except REDIS_ERRORS as exc:
                raise StorageError(f"Redis is unavailable: {exc}") from exc
            log.info("forgot %s at their request (%d records)", conversation, erased)
        said = text(Builtin.FORGOTTEN if erase else Builtin.KEPT, language)
        await self._say(conversation, update_key, Say(said))

    async def language(self, conversation: str) -> str:
        """The prospect's language for built-in texts: a saved `language` answer, else their
        channel's; English for a conversation that is not stored (or no longer)."""
        try:
            conv = await self.conversations.store.load(conversation)
        except REDIS_ERRORS as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc
        if conv is None:
            return DEFAULT_LANGUAGE
        return language_code(conv.answers.get("language") or conv.profile.language or "en")

    async def _say(self, conversation: str, update_key: str | None, say: Say) -> None:
        channel = conversation.split(":", 1)[0]
        key = f"{conversation}:{ItemKind.NOTICE}:{secrets.token_hex(8)}"
        item = NoticeItem(conversation, channel, (say,)).outbox(key)
        outbox = self.conversations.outbox
        try:
            posted = await self.notices.post(
                conversation,
                [item],
                seen=update_key,
                hold=outbox.consumer,
                hold_seconds=outbox.policy.hold,
            )
        except DuplicateUpdate:
            return  # said before
        except REDIS_ERRORS as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc
        if posted.held:
            unsaved = Conversation(id=conversation, flow="", version=0)
            await self.deliver(Outcome(unsaved, messages=posted.outbox))
