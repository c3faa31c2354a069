"""The storage contract: a handful of async methods; backends only implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.model import Conversation, DomainEvent, Timer


@dataclass(frozen=True)
class OutboxItem:
    """Something to deliver outside (a Slack alert, a webhook), retried until it is.

    `key` is unique per item so a consumer can tell a redelivery from a new item."""

    kind: str
    key: str
    body: str  # JSON


@dataclass(frozen=True)
class StepWrite:
    """Everything one step changes, written atomically or not at all.

    `conversation.revision` is the revision that was read; the write fails with ConflictError
    if the stored one moved on meanwhile. `seen` marks an inbound update as processed in the
    same write, so a retried update after a crash is neither lost nor applied twice."""

    conversation: Conversation
    events: tuple[DomainEvent, ...] = ()
    schedule: tuple[Timer, ...] = ()
    cancel: tuple[str, ...] = ()
    cancel_all: bool = False  # drop every pending timer of this conversation first
    outbox: tuple[OutboxItem, ...] = ()
    seen: str | None = None


class ConversationStore(Protocol):
    async def load(self, conversation_id: str) -> Conversation | None:
        """The stored conversation with its revision, or None."""
        ...

    async def commit(self, write: StepWrite) -> Conversation:
        """Apply the write atomically; returns the conversation with its new revision.

        Raises ConflictError when the revision moved on, DuplicateUpdate when `seen` was seen."""
        ...

    async def enqueue(self, item: OutboxItem) -> None:
        """Add one item to the outbox on its own (not part of a step)."""
        ...

    async def was_seen(self, key: str) -> bool:
        """Has the inbound update with this key been processed already?"""
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
