"""What the outbox delivers, by kind: messages for prospects to their channel's sender,
alerts and relayed messages to Slack.

Prospect messages reach the outbox when a step was taken by the worker (a follow-up, a
reminder): written in the same atomic step, they survive a worker that dies before sending and
are retried while the channel fails."""

from __future__ import annotations

import json
from collections.abc import Mapping

from bot.channels import Sender
from bot.model import Status, messages_from_json
from bot.service import MESSAGE_KIND
from storage.base import ConversationStore, OutboxItem
from storage.outbox import Handler, RetryLater, Undeliverable

WAIT_FOR_RECEIVER = 5.0  # seconds a kind is held back when this process cannot deliver it


class Deliveries:
    """The outbox handler of a process: `senders` by channel name, and Slack's (if configured)."""

    def __init__(
        self,
        store: ConversationStore,
        senders: Mapping[str, Sender],
        slack: Handler | None = None,
        wait: float = WAIT_FOR_RECEIVER,
    ) -> None:
        self.store = store
        self.senders = senders
        self.slack = slack
        self.wait = wait

    async def __call__(self, item: OutboxItem) -> None:
        kind, _, channel = item.kind.partition(":")
        if kind == MESSAGE_KIND:
            await self.message(item, channel)
        elif self.slack is not None:
            await self.slack(item)
        else:
            raise RetryLater("Slack is not configured in this process", self.wait)

    async def message(self, item: OutboxItem, channel: str) -> None:
        sender = self.senders.get(channel)
        if sender is None:  # another process (with that channel) will take it
            raise RetryLater(f"no {channel} sender in this process", self.wait)
        try:
            body = json.loads(item.body)
            messages = messages_from_json(body["messages"])
            conversation_id = str(body["conversation"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Undeliverable(f"message {item.key}: not a valid body: {exc!r}") from exc
        conv = await self.store.load(conversation_id)
        if conv is None or conv.status == Status.STOPPED:
            return  # forgotten or opted out since: nothing more goes to them
        await sender.deliver(conv, messages)
