"""Every Redis key ladderbot uses, in one place.

A conversation's keys share the hash tag `{conv:<id>}`."""

from __future__ import annotations

PREFIX = "lb"
EVENTS = f"{PREFIX}:events"  # Stream: the domain event log
TIMERS_DUE = f"{PREFIX}:timers:due"  # sorted set: timer id -> due time (epoch seconds)
TIMERS_BODY = f"{PREFIX}:timers:body"  # hash: timer id -> Timer JSON
TIMERS_PROCESSING = f"{PREFIX}:timers:processing"  # sorted set: claimed id -> lease deadline
OUTBOX = f"{PREFIX}:outbox"  # Stream: alerts and webhooks to deliver


def conversation(conversation_id: str) -> str:
    return f"{PREFIX}:{{conv:{conversation_id}}}"


def conversation_timers(conversation_id: str) -> str:
    return f"{PREFIX}:{{conv:{conversation_id}}}:timers"


def seen(update_key: str) -> str:
    return f"{PREFIX}:seen:{update_key}"


def flow(name: str) -> str:
    return f"{PREFIX}:flow:{name}"


FLOWS = f"{PREFIX}:flows"  # set of published flow names


# --- Slack: what the sales team did with each prospect -----------------------------------------

SLACK = f"{PREFIX}:slack"


def lead_key(conversation_id: str) -> str:
    """Hash: where a prospect's latest alert is in Slack, and the thread of a take-over."""
    return f"{SLACK}:lead:{conversation_id}"


def thread_key(channel: str, ts: str) -> str:
    """An alert message's conversation id (replies in its thread go to that prospect)."""
    return f"{SLACK}:thread:{channel}:{ts}"


def event_key(event_id: str) -> str:
    """Set for a Slack event id already handled (Slack retries events)."""
    return f"{SLACK}:event:{event_id}"


def attempt_key(item_key: str) -> str:
    """Set when an outbox item is first posted: later attempts check Slack before posting."""
    return f"{SLACK}:attempt:{item_key}"


def channel_key(name: str) -> str:
    """A channel name's id, learnt from Slack."""
    return f"{SLACK}:channel:{name}"
