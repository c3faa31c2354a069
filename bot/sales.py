"""The sales team's actions on a lead, for any channel (Slack buttons today): claim, take over,
hand back, not a fit, won, lost; and the replies of the salesperson who took the chat over.

Each action is one engine event applied to the prospect's conversation by `Conversations` (one
atomic step, logged as a domain event), so two salespeople acting at once in different
processes get one winner. A reply during a take-over is an engine step too: it reaches the
outbox in that step's atomic write, in order with the bot's messages, is sent at once and, if
the prospect's channel fails, retried by the worker. This module only tells the caller what
came of it, in terms a channel can word for its users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.channels import Sender
from bot.delivery import Deliveries
from bot.service import Conversations
from domain.model import (
    Claim,
    Conversation,
    HandBack,
    Lead,
    Lost,
    NotAFit,
    Reply,
    SalesEvent,
    Status,
    TakeOver,
    Won,
)


class Action(StrEnum):
    CLAIM = "claim"
    TAKE_OVER = "take_over"
    HAND_BACK = "hand_back"
    NOT_A_FIT = "not_a_fit"
    WON = "won"
    LOST = "lost"


_EVENTS: dict[Action, type[SalesEvent]] = {
    Action.CLAIM: Claim,
    Action.TAKE_OVER: TakeOver,
    Action.HAND_BACK: HandBack,
    Action.NOT_A_FIT: NotAFit,
    Action.WON: Won,
    Action.LOST: Lost,
}


class Refusal(StrEnum):
    """Why an action changed nothing."""

    ERASED = "erased"  # the prospect's data is gone (/forget)
    CLAIMED = "claimed"  # someone else claimed the lead first (`who`)
    TAKEN = "taken"  # someone else is chatting with the prospect (`who`)
    NOT_TAKEN = "not_taken"  # hand back, but nobody took over
    CLOSED = "closed"  # take over, but the conversation is stopped (`status`)
    DECIDED = "decided"  # a verdict was given already (`who`, the outcome)
    NOT_YOURS = "not_yours"  # a reply by someone who has not taken the chat over (`who` has)


@dataclass(frozen=True)
class Result:
    """What an action did: the conversation after it (None: erased), whether it changed
    anything, and if not, why."""

    conversation: Conversation | None
    changed: bool
    refusal: Refusal | None = None
    who: str = ""  # for CLAIMED, TAKEN, DECIDED and NOT_YOURS: the salesperson who was first
    waiting: bool = False  # what goes to the prospect could not be sent now: the worker sends it

    @property
    def status(self) -> Status | None:
        return self.conversation.status if self.conversation else None


class Sales:
    """Apply the sales team's actions through `Conversations`."""

    def __init__(self, conversations: Conversations, senders: Mapping[str, Sender]) -> None:
        self.conversations = conversations
        self.deliveries = Deliveries(conversations, senders)

    async def act(self, action: Action, conversation_id: str, by: str) -> Result:
        """Apply `action` by salesperson `by` (e.g. "slack:U123") to the conversation, and
        send the prospect what the bot says on a take-over or hand-back."""
        event = _EVENTS[action](by)
        outcome = await self.conversations.handle(conversation_id, event, deliver_now=True)
        conv = outcome.conversation
        if not conv.flow:  # nothing stored: erased, or never there
            return Result(None, False, Refusal.ERASED)
        await self.deliveries.now(outcome)  # what the bot says: now, or by the worker
        if outcome.events:
            return Result(conv, True)
        return Result(conv, False, *_why_not(action, conv, by))

    async def reply(
        self, conversation_id: str, by: str, text: str, *, update_key: str | None = None
    ) -> Result:
        """Send the prospect `text` from salesperson `by`, if they have taken the chat over
        (else NOT_YOURS, and nothing is stored). `update_key` (the channel's event id) makes a
        redelivered reply a no-op. The reply goes through the outbox: `waiting` when it could
        not be sent now (the channel failed, or an earlier message of theirs still waits)."""
        stored = await self.conversations.store.load(conversation_id)
        if stored is None or stored.lead.taken_by != by:  # nothing to store
            return _not_sent(stored, by)
        outcome = await self.conversations.handle(
            conversation_id, Reply(by, text), update_key=update_key, deliver_now=True
        )
        if outcome.duplicate:
            return Result(stored, False)
        conv = outcome.conversation
        if not outcome.events:  # the engine's word: erased, or no longer theirs meanwhile
            return _not_sent(conv if conv.flow else None, by)
        sent = await self.deliveries.now(outcome)
        return Result(conv, True, waiting=sent == 0)


def open_actions(lead: Lead) -> tuple[Action, ...]:
    """What the sales team can still do with a lead, in the order a channel offers them: a
    verdict closes it; a claim is made once; a taken-over chat can only be handed back."""
    decided = bool(lead.verdict_by)
    actions = []
    if not lead.claimed_by and not decided:
        actions.append(Action.CLAIM)
    if lead.taken_by:
        actions.append(Action.HAND_BACK)
    elif not decided:
        actions.append(Action.TAKE_OVER)
    if not decided:
        actions += [Action.WON, Action.LOST, Action.NOT_A_FIT]
    return tuple(actions)


def _not_sent(conv: Conversation | None, by: str) -> Result:
    """Why a reply by `by` does not go to the prospect."""
    if conv is None:
        return Result(None, False, Refusal.ERASED)
    if conv.lead.taken_by != by:
        return Result(conv, False, Refusal.NOT_YOURS, conv.lead.taken_by)
    return Result(conv, False, Refusal.CLOSED)  # e.g. the prospect opted out (/stop)


def _why_not(action: Action, conv: Conversation, by: str) -> tuple[Refusal | None, str]:
    """Why the engine changed nothing; (None, "") when the action was already done by `by`."""
    lead = conv.lead
    if action == Action.CLAIM and lead.claimed_by != by:
        return Refusal.CLAIMED, lead.claimed_by
    if action == Action.TAKE_OVER and lead.taken_by != by:
        if conv.status == Status.PAUSED:
            return Refusal.TAKEN, lead.taken_by
        return Refusal.CLOSED, ""
    if action == Action.HAND_BACK:
        return Refusal.NOT_TAKEN, ""
    if action in (Action.NOT_A_FIT, Action.WON, Action.LOST):
        return Refusal.DECIDED, lead.verdict_by
    return None, ""
