"""The Telegram channel: an update in, an engine event (or a /forget answer) out, the reply sent.

Messages and button presses become engine events for `Conversations.handle` (commands parsed by
bot.commands); `/forget` and its buttons go to bot.forget. The step's replies are in the outbox
already: this process sends them at once (`Deliveries.now`), the worker whatever is left. The
same `process` serves the webhook (bot.channels.telegram.webhook) and long polling
(bot.channels.telegram.polling)."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Update

from bot.app import Services
from bot.channels.telegram.buttons import OPENED, verify_callback
from bot.channels.telegram.sender import TelegramNotConfigured, TelegramSender
from bot.channels.telegram.updates import (
    CHANNEL,
    conversation_id,
    profile_of,
    shared_contact,
    unreadable,
    update_key,
)
from bot.commands import ForgetRequest, parse
from bot.delivery import Deliveries
from bot.forget import FORGET, ForgetConfirmation
from bot.links import LinkRoute
from bot.service import Conversations, Outcome
from domain.model import Event, LinkOpened
from storage.notices import RedisNotices

log = logging.getLogger(__name__)

MOVED_ON = frozenset({"step_reached", "completed", "opted_out", "restarted"})
FORGED_PRESS = "Sorry, that button doesn't work any more."
STALE_PRESS = "That question has moved on."


class TelegramChannel:
    """Turns Telegram updates into `Conversations.handle` calls and delivers what comes back."""

    def __init__(
        self,
        conversations: Conversations,
        sender: TelegramSender,
        deliveries: Deliveries,
        confirmation: ForgetConfirmation,
    ) -> None:
        self.conversations = conversations
        self.sender = sender
        self.deliveries = deliveries
        self.confirmation = confirmation
        self.secret = sender.secret
        self.link_route = LinkRoute(conversations, sender.links, self._reply)

    @classmethod
    def from_services(cls, services: Services) -> TelegramChannel:
        """The channel of a process, with the sender bot.app registered (TELEGRAM_TOKEN)."""
        sender = services.senders.get(CHANNEL)
        if not isinstance(sender, TelegramSender):
            raise TelegramNotConfigured("TELEGRAM_TOKEN is not set")
        conversations = services.conversations
        deliveries = Deliveries(conversations, services.senders)
        notices = RedisNotices(services.redis)
        confirmation = ForgetConfirmation(conversations, notices, deliveries.now)
        return cls(conversations, sender, deliveries, confirmation)

    async def process(self, update: Update) -> None:
        """Handle one update. Raises StorageError or a Redis error when Redis is unavailable before
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
        what = shared_contact(message) or parse(message.text)
        if isinstance(what, ForgetRequest):
            await self.confirmation.ask(conv, update_key(update.update_id))
            return
        outcome = await self._handle(conv, what, update)
        if not outcome.duplicate:
            await self._reply(outcome)

    async def _handle(self, conv: str, event: Event, update: Update) -> Outcome:
        return await self.conversations.handle(
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
            await self._confirm_forget(update, query, conv, press.choice == "yes", pressed)
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
        self, update: Update, query: CallbackQuery, conv: str, erase: bool, pressed: int | None
    ) -> None:
        key = update_key(update.update_id)
        if await self.confirmation.answered(conv, key):
            return  # a redelivered press: answered before
        await self.sender.answer(query.id)
        if erase:  # no keyboard of theirs stays pressable
            await self.sender.clear_keyboard(conv, pressed)
        elif pressed is not None:  # the question they were answering keeps its buttons
            await self.sender.remove_keyboard(conv.split(":", 1)[1], pressed)
        await self.confirmation.answer(conv, key, erase)
