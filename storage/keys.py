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
