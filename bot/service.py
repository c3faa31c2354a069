"""The application core wired to storage: what every channel adapter calls.

load -> engine.step -> one atomic commit, retried on a concurrent change. No platform code here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from bot import engine, logs, metrics, privacy
from bot.items import AlertItem, MessageItem, RelayItem
from bot.registry import FlowRegistry
from bot.webhooks import Webhooks
from domain.clock import Clock, SystemClock
from domain.errors import ConflictError, DuplicateUpdate, StorageError
from domain.model import (
    MESSAGE_TYPES,
    Action,
    Alert,
    Conversation,
    DomainEvent,
    Due,
    Event,
    Help,
    Lead,
    Press,
    Profile,
    Relay,
    Reported,
    Restart,
    SalesEvent,
    Start,
    Status,
    Stop,
    Text,
    iso,
)
from storage.base import ConversationStore, Lane, OutboxItem, Retention, StepWrite
from storage.connect import REDIS_ERRORS
from storage.outbox import Outbox
from storage.redis import RedisConversationStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 32  # optimistic retries when another process changed the conversation first
CONFLICT_BACKOFF = 0.002  # seconds, times the attempt number, jittered
PROSPECT_EVENTS = (Start, Text, Press, Help, Restart, Stop)


@dataclass(frozen=True)
class Outcome:
    """What one inbound event did: the actions (the prospect's messages only when they were
    not written to the outbox), what happened, and, when this process may send them now (it
    asked to, and none was waiting before them), the prospect's messages as written to the
    outbox (entry id, item), in order."""

    conversation: Conversation
    actions: tuple[Action, ...] = ()
    events: tuple[DomainEvent, ...] = ()
    duplicate: bool = False
    messages: tuple[tuple[str, OutboxItem], ...] = ()


class Conversations:
    """Prospects' conversations: apply inbound events, persist each step atomically."""

    def __init__(
        self,
        redis: Redis,
        flows: FlowRegistry,
        clock: Clock | None = None,
        retention: Retention | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.redis = redis
        self.flows = flows
        self.clock = clock or SystemClock()
        self.webhooks = webhooks or Webhooks()
        self.store: ConversationStore = RedisConversationStore(redis, retention)
        self.outbox = Outbox(redis, clock=self.clock)

    async def handle(
        self,
        conversation_id: str,
        event: Event,
        *,
        profile: Profile | None = None,
        update_key: str | None = None,
        deliver_now: bool = False,
        durable: bool = True,
    ) -> Outcome:
        """Apply `event` to the prospect's conversation and store the result.

        `update_key` (e.g. "telegram:update:123") makes a redelivered update a no-op
        (Outcome.duplicate). The messages for the prospect are written to the outbox in the
        same atomic write, one item each (kind "message:<channel>", in the conversation's
        prospect lane), so a process that dies before sending them loses nothing; with
        `deliver_now` this process holds them for a few seconds to send them itself
        (`Outcome.messages`, then `bot.delivery.Deliveries.now`), after which the worker
        sends whatever is left. Only without `durable` (the terminal chat, one process) are
        they returned as actions instead. Raises StorageError when Redis stays unreachable, so
        a webhook can answer non-2xx and be retried: once this returns, the step is stored.
        Each update is counted (bot.metrics) and logged as one line."""
        started = time.perf_counter()
        channel = metrics.channel_of(conversation_id, _source(event))
        outcome, result = None, "error"
        try:
            outcome = await self._handle(
                conversation_id,
                event,
                profile=profile,
                update_key=update_key,
                deliver_now=deliver_now,
                durable=durable,
            )
            found = outcome.conversation.flow  # "": no conversation (forgotten): nothing to do
            result = "duplicate" if outcome.duplicate else "handled" if found else "ignored"
            return outcome
        finally:
            seconds = time.perf_counter() - started
            metrics.UPDATES.labels(channel, result).inc()
            metrics.STEP_SECONDS.labels(channel).observe(seconds)
            conv = outcome.conversation if outcome else None
            logs.record(
                log, "update", conversation=conversation_id, channel=channel,
                event=type(event).__name__, flow=conv.flow if conv else "",
                step=conv.step if conv else "", result=result, ms=round(seconds * 1000, 2),
            )  # fmt: skip

    async def _handle(
        self,
        conversation_id: str,
        event: Event,
        *,
        profile: Profile | None,
        update_key: str | None,
        deliver_now: bool,
        durable: bool,
    ) -> Outcome:
        try:
            if update_key and await self.store.was_seen(conversation_id, update_key):
                return Outcome(Conversation(id=conversation_id, flow="", version=0), duplicate=True)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                conv = await self._conversation(conversation_id, event, profile)
                if conv is None:  # a timer or a link of a forgotten prospect: nothing to do
                    return Outcome(Conversation(id=conversation_id, flow="", version=0))
                flow = await self.flows.compiled(conv.flow, conv.version)
                result = engine.step(flow, conv, event, self.clock.now())
                unchanged = not result.changed and result.conversation == conv
                if unchanged and update_key is None and not (durable and result.actions):
                    return Outcome(conv, result.actions)  # nothing to store
                write = StepWrite(
                    conversation=result.conversation,
                    events=result.events,
                    schedule=result.schedule,
                    cancel=result.cancel,
                    cancel_all=result.cancel_all,
                    outbox=(
                        *self._outbox(result.conversation, result.actions, durable),
                        *self.webhooks.items(result.conversation, result.events),
                    ),
                    seen=update_key,
                    hold=self.outbox.consumer if deliver_now else None,
                    hold_seconds=self.outbox.policy.hold,
                )
                try:
                    stored = await self.store.commit(write)
                except ConflictError:
                    await asyncio.sleep(random.uniform(0, CONFLICT_BACKOFF * attempt))
                    continue
                except DuplicateUpdate:
                    return Outcome(conv, duplicate=True)
                actions = result.actions
                if durable:
                    actions = tuple(a for a in actions if not isinstance(a, MESSAGE_TYPES))
                messages = tuple(
                    e for e in stored.outbox if stored.held and e[1].lane == Lane.PROSPECT
                )
                return Outcome(stored.conversation, actions, result.events, messages=messages)
        except REDIS_ERRORS as exc:
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
        """/forget: erase everything stored about the prospect (every kind bot.privacy lists),
        undelivered alerts and messages in the outbox included; returns how many records went."""
        return await privacy.forget(self.redis, conversation_id)

    def _outbox(
        self, conv: Conversation, actions: tuple[Action, ...], messages: bool
    ) -> list[OutboxItem]:
        """What the prospect is sent (with `messages`: one item per message, in order), the
        step's alerts (one item naming all its reasons: one Slack message) and relayed messages
        leave through the outbox, in the same atomic write as the step."""
        items = []
        key = f"{conv.id}:{conv.revision + 1}"
        alerts = [a for a in actions if isinstance(a, Alert)]
        if alerts:
            reasons = tuple(a.reason for a in alerts)
            items.append(AlertItem(conv, reasons, alerts[0].channel).outbox(f"{key}:a"))
        for n, action in enumerate(actions):
            if isinstance(action, MESSAGE_TYPES) and messages:
                items.append(MessageItem(conv.id, conv.channel, (action,)).outbox(f"{key}:{n}"))
            elif isinstance(action, Relay):
                items.append(RelayItem(conv.id, action.text).outbox(f"{key}:{n}"))
        return items


def _source(event: Event) -> str | None:
    """Where an event came from when it is not the prospect: the clock, the sales team, the
    product."""
    if isinstance(event, Due):
        return "timer"
    if isinstance(event, SalesEvent):
        return "sales"
    if isinstance(event, Reported):
        return "product"
    return None
