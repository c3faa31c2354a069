"""What the outbox delivers, by kind: messages for prospects to their channel's sender,
alerts and relayed messages to Slack.

Every message for a prospect reaches the outbox in the atomic write of the step that produced
it, one item per message. The process that took the step sends them at once (`now`) and
records each as delivered; whatever it could not send (it died, Redis or the channel failed)
the worker sends later, in order, and records it the same way."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels import Sender
from bot.items import ItemKind, MessageItem, read
from bot.model import Conversation, Status
from bot.service import Ladder, Outcome
from storage.base import OutboxItem
from storage.outbox import Handler, RetryLater, Undeliverable

WAIT_FOR_RECEIVER = 5.0  # seconds a kind is held back when this process cannot deliver it


class Deliveries:
    """The outbox handler of a process: `senders` by channel name, and Slack's (if configured)."""

    def __init__(
        self,
        ladder: Ladder,
        senders: Mapping[str, Sender],
        slack: Handler | None = None,
        wait: float = WAIT_FOR_RECEIVER,
    ) -> None:
        self.ladder = ladder
        self.senders = senders
        self.slack = slack
        self.wait = wait

    async def __call__(self, item: OutboxItem) -> None:
        message = _message(item)
        if message is not None:
            await self.message(message)
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
            await self._send(conv, message)

        return await self.ladder.outbox.deliver_now(outcome.messages, send)

    async def message(self, message: MessageItem) -> None:
        conv = await self.ladder.store.load(message.conversation)
        if conv is None or conv.status == Status.STOPPED:
            return  # forgotten or opted out since: nothing more goes to them
        await self._send(conv, message)

    async def _send(self, conv: Conversation, message: MessageItem) -> None:
        sender = self.senders.get(message.channel)
        if sender is None:  # another process (with that channel) will take it
            raise RetryLater(f"no {message.channel} sender in this process", self.wait)
        await sender.deliver(conv, message.messages)


def _message(item: OutboxItem) -> MessageItem | None:
    """The prospect's messages an item carries; None for the sales team's items."""
    if item.kind.partition(":")[0] != ItemKind.MESSAGE:
        return None
    try:
        found = read(item)
    except ValueError as exc:
        raise Undeliverable(str(exc)) from exc
    assert isinstance(found, MessageItem)
    return found
