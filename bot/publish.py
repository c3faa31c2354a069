"""Flow tooling for marketers: publish a new version (moving in-flight prospects when the flow
says `migrate:`), list versions with how many conversations each holds, and export everything
stored about one prospect for a data-access request.

Conversations stay pinned to the version they started on; only an explicit `migrate:` entry
moves them, each with one atomic commit through the conversation store (so a step that a
channel applies at the same moment is never lost: the loser of the race recomputes).
A moved prospect is then asked the new step as if they had just reached it (its A/B variant
drawn, its follow-up set): the messages go to the outbox, which the worker delivers.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.analytics import align
from bot.clock import ManualClock
from bot.errors import ConflictError, LadderError, UnknownFlow
from bot.flow.model import Flow
from bot.model import Arrive, Conversation, DomainEvent, Status, Timer, iso
from bot.registry import FlowRegistry
from bot.service import Ladder
from storage.base import StepWrite
from storage.events import RedisEventLog
from storage.outbox import Outbox
from storage.redis import RedisConversationStore, RedisFlowCatalog
from storage.scheduler import RedisScheduler


class UnknownProspect(LadderError):
    """Nothing is stored about this conversation id."""


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


@dataclass(frozen=True)
class ProspectData:
    """Everything stored about one prospect."""

    conversation: Conversation | None
    events: tuple[DomainEvent, ...]
    timers: tuple[Timer, ...]
    outbox: tuple[dict[str, Any], ...]  # alerts and relays about them not yet trimmed

    def to_json(self) -> str:
        conv = self.conversation
        return json.dumps(
            {
                "conversation": (
                    {**json.loads(conv.to_json()), "revision": conv.revision} if conv else None
                ),
                "events": [asdict(e) for e in self.events],
                "timers": [asdict(t) for t in self.timers],
                "outbox": list(self.outbox),
            },
            indent=2,
            ensure_ascii=False,
        )


async def pending_timers(redis: Redis, conversation_id: str) -> list[Timer]:
    """The conversation's scheduled timers (follow-ups, reminders), soonest first."""
    return await RedisScheduler(redis).of(conversation_id)


async def publish(redis: Redis, flow: Flow, now: datetime) -> PublishReport:
    """Store `flow` (already validated by the loader) as a new version unless its text is the
    latest one, then apply its `migrate:` map to in-flight conversations on older versions."""
    catalog = RedisFlowCatalog(redis)
    before = await catalog.latest(flow.name)
    version = await catalog.publish(flow.name, flow.source)
    moved: list[Moved] = []
    if flow.migrate:
        store = RedisConversationStore(redis)
        ladder = Ladder(redis, FlowRegistry(catalog, flow.name), ManualClock(now))
        async for conv in store.all():
            done = await _migrate(store, conv, flow, version, now)
            if done:
                await ladder.handle(done.conversation, Arrive(done.to_step))
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
    store: RedisConversationStore,
    conv: Conversation | None,
    flow: Flow,
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
        stale = tuple(t.id for t in await pending_timers(store.redis, conv.id) if t.step == here)
        event = DomainEvent(
            "migrated",
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


async def export(redis: Redis, conversation_id: str) -> ProspectData:
    """Everything stored about one prospect: the conversation, its events in the log, its
    pending timers and undelivered outbox items (UnknownProspect if there is nothing)."""
    store = RedisConversationStore(redis)
    conv = await store.load(conversation_id)
    events = tuple(await RedisEventLog(redis).of(conversation_id))
    timers = tuple(await pending_timers(redis, conversation_id))
    outbox = tuple(
        {**asdict(item), "lane": item.lane or "", "body": json.loads(item.body or "null")}
        for item in await Outbox(redis).waiting(conversation_id)
    )
    if conv is None and not events and not timers and not outbox:
        raise UnknownProspect(f"nothing is stored about {conversation_id!r}")
    return ProspectData(conv, events, timers, outbox)
