"""The storage contract: a handful of async methods; backends only implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from domain.model import Conversation, DomainEvent, Timer
from storage import keys


@dataclass(frozen=True)
class TrackedLink:
    """Opening the link of `step` in `conversation` leads to `url`."""

    conversation: str
    step: str
    url: str


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
class Retention:
    """How long Redis keeps the configurable records (seconds; 0: for ever): the event log's
    window (older entries are trimmed as new ones are written, `ladder events export` archives
    them first) and a finished conversation (completed, stopped, dropped) with its timers and
    its event index, counted from its last step. Every other key's retention is fixed in
    storage/keys.py."""

    events: int = keys.EVENTS_RETENTION
    finished: int = keys.FINISHED_RETENTION


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

    def all(self) -> AsyncIterator[Conversation]:
        """Every stored conversation, in no particular order, read a page at a time."""
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


@dataclass(frozen=True)
class Posted:
    """Notices written to the outbox (stream entry id, item), and whether the writer holds the
    conversation (none was waiting before them), so it may send them at once."""

    outbox: tuple[tuple[str, OutboxItem], ...]
    held: bool = False


class Notices(Protocol):
    async def post(
        self,
        conversation: str,
        items: Sequence[OutboxItem],
        *,
        seen: str | None = None,
        hold: str | None = None,
        hold_seconds: float = 10.0,
    ) -> Posted:
        """Write messages for the prospect that no step wrote to the outbox, in their prospect
        lane, atomically with the marker `seen` of the update that caused them; `hold` as in
        StepWrite. Raises DuplicateUpdate when `seen` was seen."""
        ...


class Keyboards(Protocol):
    """The message of a chat that shows the latest choice keyboard."""

    async def replace(self, conversation: str, message_id: int) -> int | None:
        """Remember `message_id`; returns the message remembered before, if any."""
        ...

    async def take(self, conversation: str) -> int | None:
        """Forget and return the message remembered, if any."""
        ...


class Links(Protocol):
    """Tracked links: `/r/<token>` stands for (conversation, step, url)."""

    async def token(self, link: TrackedLink) -> str:
        """The token of `link`: the one issued before for the same step and url, else a new one."""
        ...

    async def resolve(self, token: str) -> TrackedLink | None:
        """The link a token stands for; None for a malformed, unknown or expired token."""
        ...

    async def forget(self, conversation: str) -> int:
        """Erase every link issued to `conversation`; returns how many tokens went."""
        ...
