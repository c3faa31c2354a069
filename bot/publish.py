"""Flow tooling for marketers: publish a new version (moving in-flight prospects when the flow
says `migrate:`) and list versions with how many conversations each holds.

Conversations stay pinned to the version they started on; only an explicit `migrate:` entry
moves them, each with one atomic commit through the conversation store (so a step that a
channel applies at the same moment is never lost: the loser of the race recomputes).
A moved prospect is then asked the new step as if they had just reached it (its A/B variant
drawn, its follow-up set): the messages go to the outbox, which the worker delivers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from bot.analytics import align
from bot.flow.model import Flow
from bot.registry import FlowRegistry
from bot.service import Conversations
from domain.clock import ManualClock
from domain.errors import ConflictError, UnknownFlow
from domain.model import Arrive, Conversation, DomainEvent, EventName, Status, iso
from storage.base import ConversationStore, Retention, StepWrite
from storage.redis import RedisConversationStore, RedisFlowCatalog
from storage.scheduler import RedisScheduler


@dataclass(frozen=True)
class Moved:
    """One in-flight prospect moved to the new version by `migrate:`."""

    conversation: str
    from_version: int
    from_step: str
    to_step: str


@dataclass(frozen=True)
class PublishReport:
    flow: str
    version: int
    new: bool  # False: the text was already the latest version
    moved: tuple[Moved, ...] = ()

    def text(self) -> str:
        head = (
            f"published {self.flow} v{self.version}"
            if self.new
            else f"{self.flow} v{self.version} is already the latest version"
        )
        lines = [head, f"moved {len(self.moved)} in-flight conversation(s)"]
        lines.extend(
            f"  {m.conversation}: v{m.from_version} {m.from_step} -> v{self.version} {m.to_step}"
            for m in self.moved
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class VersionInfo:
    """A published version and the conversations pinned to it."""

    version: int
    published_at: str  # ISO 8601; "" for versions published before times were recorded
    active: int
    completed: int
    other: int  # stopped, dropped or paused


async def publish(
    redis: Redis, flow: Flow, now: datetime, retention: Retention | None = None
) -> PublishReport:
    """Store `flow` (already validated by the loader) as a new version unless its text is the
    latest one, then apply its `migrate:` map to in-flight conversations on older versions
    (their steps written with the deployment's `retention`)."""
    catalog = RedisFlowCatalog(redis)
    before = await catalog.latest(flow.name)
    version = await catalog.publish(flow.name, flow.source)
    moved: list[Moved] = []
    if flow.migrate:
        conversations = Conversations(
            redis, FlowRegistry(catalog, flow.name), ManualClock(now), retention
        )
        async for conv in conversations.store.all():
            done = await _migrate(
                conversations.store, RedisScheduler(redis), conv, flow, version=version, now=now
            )
            if done:
                await conversations.handle(done.conversation, Arrive(done.to_step))
                moved.append(done)
    moved.sort(key=lambda m: m.conversation)
    return PublishReport(flow.name, version, new=version != before, moved=tuple(moved))


def _should_move(conv: Conversation, flow: Flow, version: int) -> bool:
    return (
        conv.flow == flow.name
        and conv.version < version
        and conv.status == Status.ACTIVE
        and conv.step in flow.migrate
    )


async def _migrate(
    store: ConversationStore,
    timers: RedisScheduler,
    conv: Conversation | None,
    flow: Flow,
    *,
    version: int,
    now: datetime,
) -> Moved | None:
    """Move one conversation if `migrate:` covers its step: the new version and step, its
    follow-ups at the old step cancelled, and a `migrated` event, in one atomic commit.
    On a concurrent change it reloads and decides again."""
    at = iso(now)
    while conv is not None and _should_move(conv, flow, version):
        here = str(conv.step)
        to = flow.migrate[here]
        stale = tuple(t.id for t in await timers.of(conv.id) if t.step == here)
        event = DomainEvent(
            EventName.MIGRATED,
            conv.id,
            flow.name,
            version,
            to,
            at,
            {"source": conv.source, "from_version": str(conv.version), "from_step": here},
        )
        moved = conv.with_(version=version, step=to, step_at=at, updated_at=at, invalid=0, nudges=0)
        try:
            await store.commit(StepWrite(moved, events=(event,), cancel=stale))
        except ConflictError:
            conv = await store.load(conv.id)
            continue
        return Moved(conv.id, conv.version, here, to)
    return None


async def versions(redis: Redis, name: str) -> list[VersionInfo]:
    """Every published version of flow `name`, oldest first, with its conversations counted
    by status (a scan of all conversations)."""
    catalog = RedisFlowCatalog(redis)
    numbers = await catalog.versions(name)
    if not numbers:
        raise UnknownFlow(f"flow {name!r} is not published")
    published = await catalog.published(name)
    counts: Counter[tuple[int, str]] = Counter()
    async for conv in RedisConversationStore(redis).all():
        if conv.flow == name:
            kind = conv.status if conv.status in (Status.ACTIVE, Status.COMPLETED) else "other"
            counts[conv.version, kind] += 1
    return [
        VersionInfo(
            n,
            published.get(n, ""),
            active=counts[n, Status.ACTIVE],
            completed=counts[n, Status.COMPLETED],
            other=counts[n, "other"],
        )
        for n in numbers
    ]


def versions_table(rows: list[VersionInfo]) -> str:
    """`ladder versions` output: aligned columns."""
    cells = [("version", "published", "active", "completed", "other")] + [
        (f"v{r.version}", r.published_at or "-", str(r.active), str(r.completed), str(r.other))
        for r in rows
    ]
    return "\n".join(align(cells, left=2))
