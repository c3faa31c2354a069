"""The application core wired to storage: what every channel adapter calls.

load -> engine.step -> one atomic commit, retried on a concurrent change. No platform code here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import engine
from bot.clock import Clock, SystemClock
from bot.errors import ConflictError, DuplicateUpdate, StorageError
from bot.model import (
    MESSAGE_TYPES,
    Action,
    Alert,
    Conversation,
    DomainEvent,
    Event,
    Help,
    Lead,
    Press,
    Profile,
    Relay,
    Restart,
    Start,
    Status,
    Stop,
    Text,
    iso,
    messages_to_json,
)
from bot.registry import FlowRegistry
from storage.base import OutboxItem, StepWrite
from storage.outbox import Outbox
from storage.redis import RedisConversationStore

log = logging.getLogger("ladderbot")

MESSAGE_KIND = "message"  # outbox items "message:<channel>": what a prospect is sent later
MAX_ATTEMPTS = 32  # optimistic retries when another process changed the conversation first
CONFLICT_BACKOFF = 0.002  # seconds, times the attempt number, jittered
PROSPECT_EVENTS = (Start, Text, Press, Help, Restart, Stop)


@dataclass(frozen=True)
class Outcome:
    """What one inbound event did: the messages for the prospect, and what happened."""

    conversation: Conversation
    actions: tuple[Action, ...] = ()
    events: tuple[DomainEvent, ...] = ()
    duplicate: bool = False


class Ladder:
    """Prospects' conversations: apply inbound events, persist each step atomically."""

    def __init__(self, redis: Redis, flows: FlowRegistry, clock: Clock | None = None) -> None:
        self.redis = redis
        self.flows = flows
        self.clock = clock or SystemClock()
        self.store = RedisConversationStore(redis)

    async def handle(
        self,
        conversation_id: str,
        event: Event,
        *,
        profile: Profile | None = None,
        update_key: str | None = None,
        deliver_later: bool = False,
    ) -> Outcome:
        """Apply `event` to the prospect's conversation and store the result.

        `update_key` (e.g. "telegram:update:123") makes a redelivered update a no-op
        (Outcome.duplicate). With `deliver_later` the messages for the prospect are not
        returned but written to the outbox in the same atomic write (kind "message:<channel>"),
        so a process that dies before sending them loses nothing: the worker does this for
        follow-ups. Raises StorageError when Redis stays unreachable, so a webhook can answer
        non-2xx and be retried."""
        try:
            if update_key and await self.store.was_seen(update_key):
                return Outcome(Conversation(id=conversation_id, flow="", version=0), duplicate=True)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                conv = await self._conversation(conversation_id, event, profile)
                if conv is None:  # a timer or a link of a forgotten prospect: nothing to do
                    return Outcome(Conversation(id=conversation_id, flow="", version=0))
                flow = await self.flows.compiled(conv.flow, conv.version)
                result = engine.step(flow, conv, event, self.clock.now())
                unchanged = not result.changed and result.conversation == conv
                if unchanged and update_key is None and not (deliver_later and result.actions):
                    return Outcome(conv, result.actions)  # nothing to store
                write = StepWrite(
                    conversation=result.conversation,
                    events=result.events,
                    schedule=result.schedule,
                    cancel=result.cancel,
                    cancel_all=result.cancel_all,
                    outbox=tuple(self._outbox(result.conversation, result.actions, deliver_later)),
                    seen=update_key,
                )
                try:
                    stored = await self.store.commit(write)
                except ConflictError:
                    await asyncio.sleep(random.uniform(0, CONFLICT_BACKOFF * attempt))
                    continue
                except DuplicateUpdate:
                    return Outcome(conv, duplicate=True)
                actions = result.actions
                if deliver_later:
                    actions = tuple(a for a in actions if not isinstance(a, MESSAGE_TYPES))
                return Outcome(stored, actions, result.events)
        except RedisError as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc
        raise StorageError(f"conversation {conversation_id} kept changing; gave up")

    async def _conversation(
        self, conversation_id: str, event: Event, profile: Profile | None
    ) -> Conversation | None:
        """The stored conversation, or a fresh one on the latest flow version when the
        prospect starts (over), switches flow, or restarts; None when there is none and the
        event is not the prospect's own (a timer, a salesperson's action)."""
        conv = await self.store.load(conversation_id)
        if conv is None and not isinstance(event, PROSPECT_EVENTS):
            return None
        flow_name = conv.flow if conv else None
        source = conv.source if conv else ""
        if isinstance(event, Start):
            wanted, payload_source = await self.flows.parse_start_payload(event.payload)
            source = payload_source or source
            fresh = conv is None or conv.status != Status.ACTIVE or conv.step is None
            if wanted and wanted != flow_name:
                flow_name, fresh = wanted, True
        else:
            fresh = conv is None or isinstance(event, Restart)
        if fresh:
            name = flow_name or self.flows.default_name
            kept = conv if conv is not None and isinstance(event, Start) else None
            conv = Conversation(
                id=conversation_id,
                flow=name,
                version=await self.flows.latest_version(name),
                profile=conv.profile if conv else Profile(),
                lead=conv.lead.on_a_new_run() if conv else Lead(),
                source=source,
                revision=conv.revision if conv else 0,
                started_at=iso(self.clock.now()),
                # a new walk of the ladder: the prospect keeps their score and bookings (whose
                # reminders /stop cancelled)
                score=kept.score if kept else 0,
                bookings=kept.bookings if kept and kept.status != Status.STOPPED else (),
            )
        assert conv is not None
        if profile and profile != conv.profile:
            conv = conv.with_(profile=profile)
        return conv

    async def forget(self, conversation_id: str) -> int:
        """/forget: erase everything stored about the prospect, including undelivered alerts
        and messages in the outbox; returns how many records went."""
        erased = await self.store.forget(conversation_id)
        return erased + await Outbox(self.redis).forget(conversation_id)

    async def send_later(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        """Hand messages a channel could not deliver now to the outbox (the worker retries them).
        `conversation` is the stored one the messages came from."""
        item = _message_item(conversation, actions, f"{conversation.id}:{conversation.revision}")
        if item is not None:
            await self.store.enqueue(item)

    def _outbox(
        self, conv: Conversation, actions: tuple[Action, ...], messages: bool
    ) -> list[OutboxItem]:
        """Alerts and relayed messages (and with `messages`, what the prospect is sent) leave
        through the outbox, in the same atomic write as the step. Every alert of one step is
        one item (one Slack message naming all its reasons)."""
        items = []
        key = f"{conv.id}:{conv.revision + 1}"
        said = _message_item(conv, actions, key) if messages else None
        if said is not None:
            items.append(said)
        alerts = [a for a in actions if isinstance(a, Alert)]
        if alerts:
            body: dict[str, Any] = {
                "reasons": [a.reason for a in alerts],
                "slack_channel": alerts[0].channel,
                "conversation": json.loads(conv.to_json()),
            }
            items.append(OutboxItem(kind="alert", key=f"{key}:a", body=json.dumps(body)))
        for n, action in enumerate(actions):
            if isinstance(action, Relay):
                body = {"text": action.text, "conversation": conv.id}
                items.append(OutboxItem(kind="relay", key=f"{key}:{n}", body=json.dumps(body)))
        return items


def _message_item(conv: Conversation, actions: Sequence[Action], key: str) -> OutboxItem | None:
    """The prospect's messages among `actions` as one outbox item of kind message:<channel>."""
    said = [a for a in actions if isinstance(a, MESSAGE_TYPES)]
    if not said:
        return None
    body = json.dumps({"conversation": conv.id, "messages": messages_to_json(said)})
    return OutboxItem(kind=f"{MESSAGE_KIND}:{conv.channel}", key=f"{key}:m", body=body)
