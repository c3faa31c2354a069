"""Every kind of record kept about one prospect, listed once: `/forget` erases each kind,
`ladder export --prospect ID` lists each (a data-access request).

A record kind reads and erases through storage methods; none scans the event log (a
conversation's events are indexed as they are written). Left behind, by design, are records
that name the prospect's conversation id but hold nothing of theirs, each expiring by itself
(KEPT): adding a kind of per-prospect record means adding it to RECORDS.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from domain.errors import LadderError
from storage import keys
from storage.links import LinkStore
from storage.outbox import Outbox
from storage.prospects import ProspectRecords
from storage.redis import RedisConversationStore
from storage.scheduler import RedisScheduler


class UnknownProspect(LadderError):
    """Nothing is stored about this conversation id."""


@dataclass(frozen=True)
class Stores:
    """The storage a record kind reads and erases through, on one Redis."""

    conversations: RedisConversationStore
    records: ProspectRecords
    outbox: Outbox
    links: LinkStore
    timers: RedisScheduler

    @classmethod
    def on(cls, redis: Redis) -> Stores:
        return cls(RedisConversationStore(redis), ProspectRecords(redis), Outbox(redis),
                   LinkStore(redis), RedisScheduler(redis))  # fmt: skip


Read = Callable[[Stores, str], Awaitable[Any]]  # JSON-ready data; empty ([], {}, None): none
Erase = Callable[[Stores, str], Awaitable[int]]  # how many records went


@dataclass(frozen=True)
class RecordKind:
    """One kind of record about a prospect: its name in the export, and how to read and
    erase it."""

    name: str
    read: Read
    erase: Erase


async def _conversation(stores: Stores, cid: str) -> dict[str, Any] | None:
    conv = await stores.conversations.load(cid)
    return {**json.loads(conv.to_json()), "revision": conv.revision} if conv else None


async def _timers(stores: Stores, cid: str) -> list[dict[str, Any]]:
    return [asdict(t) for t in await stores.timers.of(cid)]


async def _events(stores: Stores, cid: str) -> list[dict[str, Any]]:
    return [asdict(e) for e in await stores.records.events(cid)]


def _item(kind: str, key: str, body: str, conversation: str, lane: str | None) -> dict[str, Any]:
    return {"kind": kind, "key": key, "body": json.loads(body or "null"),
            "conversation": conversation, "lane": lane or ""}  # fmt: skip


async def _outbox(stores: Stores, cid: str) -> list[dict[str, Any]]:
    return [_item(**asdict(item)) for _, item in await stores.outbox.about(cid)]


async def _dead_letters(stores: Stores, cid: str) -> list[dict[str, Any]]:
    return [
        {**_item(**asdict(d.item)), "error": d.error, "attempts": d.attempts}
        for d in await stores.outbox.dead_about(cid)
    ]


async def _erase_dead_letters(stores: Stores, cid: str) -> int:
    return await stores.outbox.drop(d.id for d in await stores.outbox.dead_about(cid))


async def _links(stores: Stores, cid: str) -> list[dict[str, str]]:
    return [
        {"step": link.step, "url": link.url} for link in (await stores.links.issued(cid)).values()
    ]


# Erased in this order: first what could still leave the process (undelivered messages and
# alerts, due timers), then the rest.
RECORDS: tuple[RecordKind, ...] = (
    # messages, alerts and relays not delivered yet (their lanes and hold go with them)
    RecordKind("outbox", _outbox, lambda s, cid: s.outbox.forget(cid)),
    # messages and alerts given up on
    RecordKind("dead_letters", _dead_letters, _erase_dead_letters),
    # pending follow-ups and reminders
    RecordKind("timers", _timers, lambda s, cid: s.records.erase_timers(cid)),
    # answers, profile, step, score, bookings, the lead's state
    RecordKind("conversation", _conversation, lambda s, cid: s.records.erase_conversation(cid)),
    # the conversation's entries in the event log, through its index
    RecordKind("events", _events, lambda s, cid: s.records.erase_events(cid)),
    # tracked links issued to the prospect
    RecordKind("links", _links, lambda s, cid: s.links.forget(cid)),
    # the message id of the latest choice keyboard in their Telegram chat
    RecordKind("telegram_keyboard", lambda s, cid: s.records.keyboard(cid),
               lambda s, cid: s.records.erase_keyboard(cid)),
    # where their alert and a take-over's thread are in Slack
    RecordKind("slack_lead", lambda s, cid: s.records.slack_lead(cid),
               lambda s, cid: s.records.erase_slack_lead(cid)),
)  # fmt: skip

# Keys that name a conversation id but hold nothing about the prospect, left to expire.
KEPT: tuple[tuple[str, str], ...] = (
    (f"{keys.PREFIX}:{{s<shard>}}:outbox:done:<conversation>:<revision>:<n>",
     f"an outbox item was delivered (no content); expires in {keys.DELIVERED_RETENTION}s"),
    (keys.attempt_key("<conversation>:<revision>:<n>"),
     f"an item was posted to Slack once (no content); expires in {keys.ATTEMPT_RETENTION}s"),
    (keys.flood("<bot>", "<chat id>"),
     "when the next message to the chat may go (Telegram's flood limit); expires in seconds"),
)  # fmt: skip


@dataclass(frozen=True)
class ProspectData:
    """Everything stored about one prospect: each record kind's data, by its name."""

    records: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.records, indent=2, ensure_ascii=False)


async def export(redis: Redis, conversation_id: str) -> ProspectData:
    """Everything stored about one prospect, by record kind (UnknownProspect if nothing)."""
    stores = Stores.on(redis)
    data = {kind.name: await kind.read(stores, conversation_id) for kind in RECORDS}
    if not any(data.values()):
        raise UnknownProspect(f"nothing is stored about {conversation_id!r}")
    return ProspectData(data)


async def forget(redis: Redis, conversation_id: str) -> int:
    """Erase every record kind about one prospect; returns how many records went."""
    stores = Stores.on(redis)
    erased = 0
    for kind in RECORDS:
        erased += await kind.erase(stores, conversation_id)
    return erased
