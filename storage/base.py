"""The storage contract: a handful of async methods; backends only implement them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.model import Conversation, DomainEvent, Timer


class Lane(StrEnum):
    """A conversation's items of one lane are delivered one after another, in the order their
    steps wrote them: what the prospect is sent, and what the sales team's Slack gets."""

    PROSPECT = "prospect"
    SLACK = "slack"


@dataclass(frozen=True)
class OutboxItem:
    """Something to deliver outside (a message, a Slack alert, a relay), retried until it is.

    `key` is unique per item so a consumer can tell a redelivery from a new item. An item about
    a conversation in a `lane` waits for the earlier items of that lane."""

    kind: str
    key: str
    body: str  # JSON
    conversation: str = ""
    lane: Lane | None = None


@dataclass(frozen=True)
class Committed:
    """A stored step: the conversation with its new revision, and the outbox entries written
    with it (stream entry id, item). `held`: the writer holds the conversation (it asked to,
    and no earlier message for the prospect is still waiting), so it may send them at once."""

    conversation: Conversation
    outbox: tuple[tuple[str, OutboxItem], ...] = ()
    held: bool = False


@dataclass(frozen=True)
class StepWrite:
    """Everything one step changes, written atomically or not at all.

    `conversation.revision` is the revision that was read; the write fails with ConflictError
    if the stored one moved on meanwhile. `seen` marks an inbound update as processed in the
    same write, so a retried update after a crash is neither lost nor applied twice. `hold`
    names the process that delivers the outbox items itself right after the commit: for
    `hold_seconds` no other consumer sends that conversation's items."""

    conversation: Conversation
    events: tuple[DomainEvent, ...] = ()
    schedule: tuple[Timer, ...] = ()
    cancel: tuple[str, ...] = ()
    cancel_all: bool = False  # drop every pending timer of this conversation first
    outbox: tuple[OutboxItem, ...] = ()
    seen: str | None = None
    hold: str | None = None  # the process that delivers the step's items itself, for a while
    hold_seconds: float = 10.0


class ConversationStore(Protocol):
    async def load(self, conversation_id: str) -> Conversation | None:
        """The stored conversation with its revision, or None."""
        ...

    async def commit(self, write: StepWrite) -> Committed:
        """Apply the write atomically; returns the conversation with its new revision and the
        outbox entries written.

        Raises ConflictError when the revision moved on, DuplicateUpdate when `seen` was seen."""
        ...

    async def was_seen(self, conversation_id: str, key: str) -> bool:
        """Has the inbound update with this key, about this conversation, been processed?"""
        ...

    async def forget(self, conversation_id: str) -> int:
        """Erase the conversation, its timers and its events; returns how many records went."""
        ...


class FlowCatalog(Protocol):
    async def publish(self, name: str, source: str, *, only_if_new: bool = False) -> int:
        """Store the YAML text as a new version of flow `name` unless it is already the latest
        version's text (with `only_if_new`: any version's text, and then the latest version
        stays as it is); returns the version that holds it."""
        ...

    async def source(self, name: str, version: int) -> str:
        """The YAML text of a published version (UnknownFlow if none)."""
        ...

    async def latest(self, name: str) -> int | None:
        """The newest published version, None if never published."""
        ...

    async def versions(self, name: str) -> list[int]: ...

    async def published(self, name: str) -> dict[int, str]:
        """When each version was published (ISO 8601), by version."""
        ...

    async def names(self) -> list[str]: ...
