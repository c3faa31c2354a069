"""Every Redis key ladderbot uses, in one place.

A conversation's keys share the hash tag `{conv:<id>}`."""

from __future__ import annotations

PREFIX = "lb"
EVENTS = f"{PREFIX}:events"  # Stream: the domain event log
TIMERS_DUE = f"{PREFIX}:timers:due"  # sorted set: timer id -> due time (epoch seconds)
TIMERS_BODY = f"{PREFIX}:timers:body"  # hash: timer id -> Timer JSON
TIMERS_PROCESSING = f"{PREFIX}:timers:processing"  # sorted set: claimed id -> lease deadline
OUTBOX = f"{PREFIX}:outbox"  # Stream: messages, alerts and relays to deliver
OUTBOX_DEAD = f"{OUTBOX}:dead"  # Stream: items given up on, with the last error (until replayed)
OUTBOX_RETRIES = f"{OUTBOX}:retries"  # hash: entry id -> JSON retry record (failures, due...)


def conversation(conversation_id: str) -> str:
    return f"{PREFIX}:{{conv:{conversation_id}}}"


def conversation_timers(conversation_id: str) -> str:
    return f"{PREFIX}:{{conv:{conversation_id}}}:timers"


def lane(conversation_id: str, name: str) -> str:
    """List: a conversation's undelivered outbox entry ids of one lane, oldest first (their
    delivery order); kept while entries wait, emptied as they are delivered."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:lane:{name}"


def hold(conversation_id: str) -> str:
    """Set (to the process's name, with a short TTL) while the process that committed a step
    delivers its messages itself; other consumers leave that conversation's items alone."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:hold"


def delivered(item_key: str) -> str:
    """Set once an outbox item was delivered (kept `delivered_ttl`): a redelivered copy is only
    acknowledged."""
    return f"{OUTBOX}:done:{item_key}"


def paused(kind: str) -> str:
    """Exists while the receiver of `kind` items asked us to wait (its TTL is the wait)."""
    return f"{OUTBOX}:pause:{kind}"


def seen(update_key: str) -> str:
    return f"{PREFIX}:seen:{update_key}"


def keyboard(conversation_id: str) -> str:
    """The message id of the last choice keyboard a prospect's chat shows (Telegram), so the
    next one takes it off."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:telegram:keyboard"


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


def attempt_key(item_key: str) -> str:
    """Set when an outbox item is first posted: later attempts check Slack before posting."""
    return f"{SLACK}:attempt:{item_key}"


def channel_key(name: str) -> str:
    """A channel name's id, learnt from Slack."""
    return f"{SLACK}:channel:{name}"


# --- Telegram: uploaded media, sent again by file_id --------------------------------------------


def media_file(bot: str, digest: str) -> str:
    """A file's Telegram file_id for one bot (file ids belong to the bot that uploaded them),
    by the SHA-256 of the file's bytes: a changed file is uploaded again."""
    return f"{PREFIX}:telegram:media:{bot}:{digest}"
