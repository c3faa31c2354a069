"""Every Redis key ladderbot uses, in one place, each with its retention.

A conversation's keys share the hash tag `{conv:<id>}`. Retentions in seconds; "kept" means
until erased (/forget, or its own consumer deletes it when done). Two are configurable
(`storage.base.Retention`, from LADDER_EVENT_DAYS and LADDER_FINISHED_DAYS): the event log's
window and how long a finished conversation stays."""

from __future__ import annotations

PREFIX = "lb"
DAY = 24 * 3600
EVENTS = f"{PREFIX}:events"  # Stream: the domain event log; trimmed to Retention.events
EVENTS_RETENTION = 90 * DAY  # the log's default window (LADDER_EVENT_DAYS)
FINISHED_RETENTION = 90 * DAY  # a finished conversation's default (LADDER_FINISHED_DAYS)
TIMERS_DUE = f"{PREFIX}:timers:due"  # sorted set: timer id -> due time (epoch seconds)
TIMERS_BODY = f"{PREFIX}:timers:body"  # hash: timer id -> Timer JSON; a field until it fires
TIMERS_PROCESSING = f"{PREFIX}:timers:processing"  # sorted set: claimed id -> lease deadline
OUTBOX = f"{PREFIX}:outbox"  # Stream: messages, alerts and relays to deliver
OUTBOX_DEAD = f"{OUTBOX}:dead"  # Stream: items given up on, with the last error (until replayed)
DEAD_RETENTION = 30 * DAY  # dead letters older than this are trimmed as new ones come
OUTBOX_RETRIES = f"{OUTBOX}:retries"  # hash: entry id -> JSON retry record (failures, due...)


def conversation(conversation_id: str) -> str:
    """Hash {v, doc}: kept while the conversation goes on; once finished (completed, stopped,
    dropped) it expires Retention.finished after its last step, with its timers and events."""
    return f"{PREFIX}:{{conv:{conversation_id}}}"


def conversation_timers(conversation_id: str) -> str:
    """Set: the ids of the conversation's pending timers; expires with the conversation."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:timers"


def conversation_events(conversation_id: str) -> str:
    """List: the ids of the conversation's entries in the event log, written with them, so that
    erasing a prospect deletes exactly those (never a scan of the log); expires with the
    conversation."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:events"


def links(conversation_id: str) -> str:
    """Hash: "<step>|<url>" -> token of each tracked link issued to the conversation; kept
    LINK_RETENTION after the last link was issued."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:links"


def link(token: str) -> str:
    """A tracked link's (conversation, step, url) JSON; kept LINK_RETENTION after issued."""
    return f"{PREFIX}:link:{token}"


LINK_RETENTION = 180 * DAY


def keyboard(conversation_id: str) -> str:
    """The message id of the latest Telegram choice keyboard; kept KEYBOARD_RETENTION."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:telegram:keyboard"


KEYBOARD_RETENTION = 30 * DAY


def lane(conversation_id: str, name: str) -> str:
    """List: a conversation's undelivered outbox entry ids of one lane, oldest first (their
    delivery order); kept while entries wait, emptied as they are delivered."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:lane:{name}"


def hold(conversation_id: str) -> str:
    """Set (to the process's name, with a short TTL) while the process that committed a step
    delivers its messages itself; other consumers leave that conversation's items alone."""
    return f"{PREFIX}:{{conv:{conversation_id}}}:hold"


def delivered(item_key: str) -> str:
    """Set once an outbox item was delivered (kept `OutboxPolicy.delivered_ttl`, DELIVERED_RETENTION
    by default): a redelivered copy is only acknowledged."""
    return f"{OUTBOX}:done:{item_key}"


def paused(kind: str) -> str:
    """Exists while the receiver of `kind` items asked us to wait (its TTL is the wait)."""
    return f"{OUTBOX}:pause:{kind}"


DELIVERED_RETENTION = 2 * DAY  # longer than an item is retried (a day) before it is given up


def seen(update_key: str) -> str:
    """An inbound update (Telegram update, product event) already applied; kept SEEN_RETENTION."""
    return f"{PREFIX}:seen:{update_key}"


SEEN_RETENTION = DAY  # Telegram and product senders retry an update for less than a day


def flow(name: str) -> str:
    """Hash: a flow's published versions; kept (conversations are pinned to versions)."""
    return f"{PREFIX}:flow:{name}"


FLOWS = f"{PREFIX}:flows"  # set of published flow names; kept


# --- Slack: what the sales team did with each prospect -----------------------------------------

SLACK = f"{PREFIX}:slack"


def lead_key(conversation_id: str) -> str:
    """Hash: where a prospect's latest alert is in Slack, and the thread of a take-over; kept
    SLACK_RETENTION after it was last written."""
    return f"{SLACK}:lead:{conversation_id}"


def thread_key(channel: str, ts: str) -> str:
    """An alert message's conversation id (replies in its thread go to that prospect); kept
    SLACK_RETENTION."""
    return f"{SLACK}:thread:{channel}:{ts}"


SLACK_RETENTION = 90 * DAY


def attempt_key(item_key: str) -> str:
    """Set when an outbox item is first posted: later attempts check Slack before posting; kept
    ATTEMPT_RETENTION."""
    return f"{SLACK}:attempt:{item_key}"


ATTEMPT_RETENTION = 2 * DAY  # longer than an item is retried (a day) before it is given up


def channel_key(name: str) -> str:
    """A channel name's id, learnt from Slack; kept (one per channel)."""
    return f"{SLACK}:channel:{name}"
