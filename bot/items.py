"""What the outbox carries, typed: a message for a prospect, an alert for the sales team, a
prospect's message relayed to the salesperson who took the chat over.

Each item is a frozen dataclass with a JSON round trip (`outbox(key)` -> the stored
`OutboxItem`, `read(item)` -> the typed item back); the wire format is the one items already
in an outbox were written in."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from domain.model import Conversation, Message, messages_from_json, messages_to_json
from storage.base import Lane, OutboxItem


class ItemKind(StrEnum):
    MESSAGE = "message"  # stored as "message:<channel>": the prospect's channel delivers it
    NOTICE = "notice"  # "notice:<channel>": as a message, even to a prospect just erased
    ALERT = "alert"
    RELAY = "relay"


@dataclass(frozen=True)
class MessageItem:
    """Messages for the prospect, sent by their channel's sender in the prospect lane."""

    KIND: ClassVar[ItemKind] = ItemKind.MESSAGE

    conversation: str
    channel: str
    messages: tuple[Message, ...]

    def outbox(self, key: str) -> OutboxItem:
        body = {"conversation": self.conversation, "messages": messages_to_json(self.messages)}
        kind = f"{self.KIND}:{self.channel}"
        return OutboxItem(kind, key, json.dumps(body), self.conversation, Lane.PROSPECT)

    @classmethod
    def from_body(cls, channel: str, body: dict[str, Any]) -> MessageItem:
        return cls(str(body["conversation"]), channel, messages_from_json(body["messages"]))


@dataclass(frozen=True)
class NoticeItem(MessageItem):
    """/forget's question and answers (bot.forget): sent like a message, but whatever became of
    the conversation, since the last one goes to a prospect who was just erased."""

    KIND: ClassVar[ItemKind] = ItemKind.NOTICE


@dataclass(frozen=True)
class AlertItem:
    """A lead alert: the conversation as it was at the step, and why (the reasons of one step
    make one Slack message)."""

    conversation: Conversation
    reasons: tuple[str, ...]
    slack_channel: str | None = None  # the flow's alerts.slack_channel; None: the default

    def outbox(self, key: str) -> OutboxItem:
        body = {
            "reasons": list(self.reasons),
            "slack_channel": self.slack_channel,
            "conversation": json.loads(self.conversation.to_json()),
        }
        return OutboxItem(ItemKind.ALERT, key, json.dumps(body), self.conversation.id, Lane.SLACK)

    @classmethod
    def from_body(cls, _: str, body: dict[str, Any]) -> AlertItem:
        # an item queued before the alerts of a step were one carries a single "reason"
        reasons = body["reasons"] if "reasons" in body else [body["reason"]]
        channel = body.get("slack_channel")
        return cls(
            Conversation.from_json(json.dumps(body["conversation"])),
            tuple(str(r) for r in reasons),
            str(channel) if channel else None,
        )


@dataclass(frozen=True)
class RelayItem:
    """What the prospect wrote while a salesperson has the chat: for the take-over's thread."""

    conversation: str
    text: str

    def outbox(self, key: str) -> OutboxItem:
        body = {"text": self.text, "conversation": self.conversation}
        return OutboxItem(ItemKind.RELAY, key, json.dumps(body), self.conversation, Lane.SLACK)

    @classmethod
    def from_body(cls, _: str, body: dict[str, Any]) -> RelayItem:
        return cls(str(body["conversation"]), str(body["text"]))


Item = MessageItem | NoticeItem | AlertItem | RelayItem
_KINDS: dict[str, Callable[[str, dict[str, Any]], Item]] = {
    ItemKind.MESSAGE: MessageItem.from_body,
    ItemKind.NOTICE: NoticeItem.from_body,
    ItemKind.ALERT: AlertItem.from_body,
    ItemKind.RELAY: RelayItem.from_body,
}


def read(item: OutboxItem) -> Item:
    """The typed item an outbox entry holds; ValueError when it holds none (no retry can fix
    its body: the outbox gives up on it)."""
    kind, _, channel = item.kind.partition(":")
    parse = _KINDS.get(kind)
    if parse is None:
        raise ValueError(f"{item.key}: no outbox item of kind {item.kind!r}")
    try:
        body = json.loads(item.body)
    except ValueError as exc:
        raise ValueError(f"{kind} {item.key}: body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError(f"{kind} {item.key}: body is not a JSON object")
    try:
        return parse(channel, body)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{kind} {item.key}: not a valid {kind} body: {exc!r}") from exc
