"""Every Redis key ladderbot uses, in one place, each with its retention.

The keyspace is split into SHARDS shards, fixed per deployment. A shard's keys share the hash
tag `{s<n>}`, so on a Redis Cluster they live in one hash slot. A conversation belongs to the
shard `shard_of(conversation id)`: its own keys, and its shard's event log, timers and outbox,
carry that tag, so a step's commit is one script on one slot. Workers and analytics read every
shard. Keys outside the shards (flows, Slack records, flood limits) share a tag of their own
wherever one script or transaction touches several of them.

Retentions are in seconds; "kept" means until erased (/forget, or its own consumer deletes it
when done). Two are configurable (`storage.base.Retention`, from LADDER_EVENT_DAYS and
LADDER_FINISHED_DAYS): the event log's window and how long a finished conversation stays.
"""

from __future__ import annotations

import zlib

PREFIX = "lb"
DAY = 24 * 3600

# How many shards the keyspace has. Fixed per deployment: changing it moves every conversation
# to another shard, so it takes a migration (README: "Moving to a Redis Cluster").
SHARDS = 16


def shard_of(name: str) -> int:
    """The shard of a conversation id (or a link token): stable across processes and hosts."""
    return zlib.crc32(name.encode()) % SHARDS


def shards() -> range:
    return range(SHARDS)


def _shard(shard: int) -> str:
    return f"{PREFIX}:{{s{shard}}}"


def _of(conversation_id: str) -> str:
    return _shard(shard_of(conversation_id))


# --- per shard --------------------------------------------------------------------------------


def events(shard: int) -> str:
    """Stream: the shard's domain event log; trimmed to Retention.events as entries are added."""
    return f"{_shard(shard)}:events"


EVENTS_RETENTION = 90 * DAY  # the log's default window (LADDER_EVENT_DAYS)
FINISHED_RETENTION = 90 * DAY  # a finished conversation's default (LADDER_FINISHED_DAYS)


def timers_due(shard: int) -> str:
    """Sorted set: timer id -> due time (epoch seconds); a member until it fires."""
    return f"{_shard(shard)}:timers:due"


def timers_body(shard: int) -> str:
    """Hash: timer id -> Timer JSON; a field until it fires."""
    return f"{_shard(shard)}:timers:body"


def timers_processing(shard: int) -> str:
    """Sorted set: claimed timer id -> lease deadline; until acked or taken back."""
    return f"{_shard(shard)}:timers:processing"


def outbox(shard: int) -> str:
    """Stream: messages, alerts, relays and webhooks to deliver; entries go once delivered."""
    return f"{_shard(shard)}:outbox"


def outbox_dead(shard: int) -> str:
    """Stream: items given up on, with the last error (until replayed or dropped); trimmed to
    DEAD_RETENTION as new ones come."""
    return f"{outbox(shard)}:dead"


DEAD_RETENTION = 30 * DAY


def outbox_retries(shard: int) -> str:
    """Hash: entry id -> JSON retry record (failures, due...); a field while the entry waits."""
    return f"{outbox(shard)}:retries"


def delivered(shard: int, item_key: str) -> str:
    """Set once an outbox item was delivered (kept `OutboxPolicy.delivered_ttl`,
    DELIVERED_RETENTION by default): a redelivered copy is only acknowledged."""
    return f"{outbox(shard)}:done:{item_key}"


DELIVERED_RETENTION = 2 * DAY  # longer than an item is retried (a day) before it is given up


def paused(shard: int, kind: str) -> str:
    """Exists while the receiver of `kind` items asked us to wait (its TTL is the wait); set in
    every shard at once."""
    return f"{outbox(shard)}:pause:{kind}"


CONVERSATION_PATTERN = f"{PREFIX}:{{s*}}:conv:*"  # SCAN MATCH: every conversation, no other key


# --- per conversation (in the conversation's shard) -------------------------------------------


def conversation(conversation_id: str) -> str:
    """Hash {v: revision, doc: JSON}: kept while the conversation goes on; once finished
    (completed, stopped, dropped) it expires Retention.finished after its last step, with its
    timers and events."""
    return f"{_of(conversation_id)}:conv:{conversation_id}"


def conversation_timers(conversation_id: str) -> str:
    """Set: the ids of the conversation's pending timers; expires with the conversation."""
    return f"{_of(conversation_id)}:conv-timers:{conversation_id}"


def conversation_events(conversation_id: str) -> str:
    """List: the ids of the conversation's entries in its shard's event log, written with them,
    so that erasing a prospect deletes exactly those (never a scan of the log); expires with the
    conversation."""
    return f"{_of(conversation_id)}:conv-events:{conversation_id}"


def lane(conversation_id: str, name: str) -> str:
    """List: a conversation's undelivered outbox entry ids of one lane, oldest first (their
    delivery order); kept while entries wait, emptied as they are delivered."""
    return f"{_of(conversation_id)}:lane:{name}:{conversation_id}"


def hold(conversation_id: str) -> str:
    """Set (to the process's name, with a short TTL) while the process that committed a step
    delivers its messages itself; other consumers leave that conversation's items alone."""
    return f"{_of(conversation_id)}:hold:{conversation_id}"


def seen(conversation_id: str, update_key: str) -> str:
    """An inbound update about the conversation already applied (Telegram update, Slack event,
    product event); kept SEEN_RETENTION."""
    return f"{_of(conversation_id)}:seen:{update_key}"


SEEN_RETENTION = DAY  # Telegram, Slack and product senders retry an update for less than a day


def links(conversation_id: str) -> str:
    """Hash: "<step>|<url>" -> the tracked-link token issued for it; kept LINK_RETENTION after
    the last link was issued."""
    return f"{_of(conversation_id)}:links:{conversation_id}"


def link(token: str) -> str:
    """A tracked link's (conversation, step, url) JSON; kept LINK_RETENTION after issued. The
    token is drawn so that its shard is its conversation's."""
    return f"{_shard(shard_of(token))}:link:{token}"


LINK_RETENTION = 180 * DAY


def keyboard(conversation_id: str) -> str:
    """The message id of the latest Telegram choice keyboard; kept KEYBOARD_RETENTION."""
    return f"{_of(conversation_id)}:keyboard:{conversation_id}"


KEYBOARD_RETENTION = 30 * DAY


# --- flows (one slot: publishing updates the flow and the list of names together) ------------

FLOWS = f"{PREFIX}:{{flows}}:names"  # set of published flow names; kept


def flow(name: str) -> str:
    """Hash: a flow's published versions; kept (conversations are pinned to versions)."""
    return f"{PREFIX}:{{flows}}:flow:{name}"


# --- flood limits (one slot per bot: a message takes the chat's and the bot's slot at once) ---


def flood(bot: str, chat: str | None) -> str:
    """GCRA bucket of one chat of `bot` (None: of the bot as a whole); expires when full."""
    base = f"{PREFIX}:flood:{{{bot}}}"
    return f"{base}:bot" if chat is None else f"{base}:chat:{chat}"


# --- Slack: what the sales team did with each prospect (one slot: a lead and its thread are
# written together) ---------------------------------------------------------------------------

SLACK = f"{PREFIX}:{{slack}}"


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


# --- Telegram: uploaded media, sent again by file_id --------------------------------------------


def media_file(bot: str, digest: str) -> str:
    """A file's Telegram file_id for one bot (file ids belong to the bot that uploaded them),
    by the SHA-256 of the file's bytes: a changed file is uploaded again; kept MEDIA_RETENTION after
    its last use."""
    return f"{PREFIX}:telegram:media:{bot}:{digest}"


MEDIA_RETENTION = 180 * DAY


# --- the layout before sharding: read once by `ladder migrate-keys` (storage/migrate.py) -------


class Unsharded:
    """Keys of a deployment from before the keyspace was sharded (one Redis, no hash tags but
    the conversation's own `{conv:<id>}`)."""

    EVENTS = f"{PREFIX}:events"
    TIMERS_DUE = f"{PREFIX}:timers:due"
    TIMERS_BODY = f"{PREFIX}:timers:body"
    TIMERS_PROCESSING = f"{PREFIX}:timers:processing"
    OUTBOX = f"{PREFIX}:outbox"
    OUTBOX_DEAD = f"{PREFIX}:outbox:dead"
    FLOWS = f"{PREFIX}:flows"
    CONVERSATIONS = f"{PREFIX}:{{conv:*"  # SCAN MATCH: a conversation's keys, suffixes too
    LINKS = f"{PREFIX}:link:*"
    SLACK = f"{PREFIX}:slack:*"

    @staticmethod
    def flow(name: str) -> str:
        return f"{PREFIX}:flow:{name}"
