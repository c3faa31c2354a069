"""What the outbox delivers, by kind: messages for prospects to their channel's sender,
alerts and relayed messages to Slack, webhooks to their endpoints (bot.webhooks). Each
delivery is counted (bot.metrics) and logged as one line.

Every message for a prospect reaches the outbox in the atomic write of the step that produced
it, one item per message. The process that took the step sends them at once (`now`) and
records each as delivered; whatever it could not send (it died, Redis or the channel failed)
the worker sends later, in order, and records it the same way."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping

from bot import logs, metrics
from bot.channels import Sender
from bot.items import ItemKind, MessageItem, NoticeItem, read
from bot.service import Conversations, Outcome
from bot.webhooks import KIND as WEBHOOK_KIND
from domain.model import Conversation, Status
from storage.base import OutboxItem
from storage.outbox import Handler, RetryLater, Undeliverable

log = logging.getLogger(__name__)

WAIT_FOR_RECEIVER = 5.0  # seconds a kind is held back when this process cannot deliver it


class Deliveries:
    """The outbox handler of a process: `senders` by channel name, and Slack's (if configured)."""

    def __init__(
        self,
        conversations: Conversations,
        senders: Mapping[str, Sender],
        slack: Handler | None = None,
        wait: float = WAIT_FOR_RECEIVER,
    ) -> None:
        self.conversations = conversations
        self.senders = senders
        self.slack = slack
        self.wait = wait

    async def __call__(self, item: OutboxItem) -> None:
        await _observed(item, self._deliver(item))

    async def _deliver(self, item: OutboxItem) -> None:
        message = _message(item)
        if isinstance(message, NoticeItem):  # /forget's answers: whatever became of them
            await self._send(Conversation(id=message.conversation, flow="", version=0), message)
        elif message is not None:
            await self.message(message)
        elif item.kind.partition(":")[0] == WEBHOOK_KIND:
            await self.conversations.webhooks(item)
        elif self.slack is not None:
            await self.slack(item)
        else:
            raise RetryLater("Slack is not configured in this process", self.wait)

    async def now(self, outcome: Outcome) -> int:
        """Send the prospect's messages of a step this process just stored (with
        `deliver_now`), each recorded as delivered; returns how many went. Never raises for a
        channel or Redis failure: what did not go waits in the outbox for the worker."""
        conv = outcome.conversation

        async def send(item: OutboxItem) -> None:
            message = _message(item)
            assert message is not None, "Outcome.messages holds the prospect's messages only"
            await _observed(item, self._send(conv, message))

        return await self.conversations.outbox.deliver_now(outcome.messages, send)

    async def message(self, message: MessageItem) -> None:
        conv = await self.conversations.store.load(message.conversation)
        if conv is None or conv.status == Status.STOPPED:
            return  # forgotten or opted out since: nothing more goes to them
        await self._send(conv, message)

    async def _send(self, conv: Conversation, message: MessageItem) -> None:
        sender = self.senders.get(message.channel)
        if sender is None:  # another process (with that channel) will take it
            raise RetryLater(f"no {message.channel} sender in this process", self.wait)
        await sender.deliver(conv, message.messages)


async def _observed(item: OutboxItem, delivery: Awaitable[None]) -> None:
    """Await one delivery, counting and logging its result; exceptions go on to the outbox."""
    started = time.perf_counter()
    kind, result = item.kind.partition(":")[0], "failed"
    try:
        await delivery
        result = "delivered"
    except RetryLater:
        result = "waiting"
        raise
    except Undeliverable:
        result = "undeliverable"
        raise
    finally:
        metrics.DELIVERIES.labels(kind, result).inc()
        logs.record(
            log, "delivery", conversation=item.conversation, kind=item.kind, key=item.key,
            result=result, ms=round((time.perf_counter() - started) * 1000, 2),
        )  # fmt: skip


def _message(item: OutboxItem) -> MessageItem | None:
    """The prospect's messages (or notices) an item carries; None for other items."""
    if item.kind.partition(":")[0] not in (ItemKind.MESSAGE, ItemKind.NOTICE):
        return None
    try:
        found = read(item)
    except ValueError as exc:
        raise Undeliverable(str(exc)) from exc
    assert isinstance(found, MessageItem)
    return found
