"""Every Redis key ladderbot uses, in one place.

The keyspace is split into SHARDS shards, fixed per deployment. A shard's keys share the hash
tag `{s<n>}`, so on a Redis Cluster they live in one hash slot. A conversation belongs to the
shard `shard_of(conversation id)`: its own keys, and its shard's event log, timers and outbox,
carry that tag, so a step's commit is one script on one slot. Workers and analytics read every
shard. Keys outside the shards (flows, Slack records, flood limits) share a tag of their own
wherever one script or transaction touches several of them.
"""

from __future__ import annotations

import zlib

PREFIX = "lb"

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
    """Stream: the shard's domain event log."""
    return f"{_shard(shard)}:events"


def timers_due(shard: int) -> str:
    """Sorted set: timer id -> due time (epoch seconds)."""
    return f"{_shard(shard)}:timers:due"


def timers_body(shard: int) -> str:
    """Hash: timer id -> Timer JSON."""
    return f"{_shard(shard)}:timers:body"


def timers_processing(shard: int) -> str:
    """Sorted set: claimed timer id -> lease deadline."""
    return f"{_shard(shard)}:timers:processing"


def outbox(shard: int) -> str:
    """Stream: messages, alerts and relays to deliver."""
    return f"{_shard(shard)}:outbox"


def outbox_dead(shard: int) -> str:
    """Stream: items given up on, with the last error (until replayed)."""
    return f"{outbox(shard)}:dead"


def outbox_retries(shard: int) -> str:
    """Hash: entry id -> JSON retry record (failures, due...)."""
    return f"{outbox(shard)}:retries"


def delivered(shard: int, item_key: str) -> str:
    """Set once an outbox item was delivered (kept `delivered_ttl`): a redelivered copy is only
    acknowledged."""
    return f"{outbox(shard)}:done:{item_key}"


def paused(shard: int, kind: str) -> str:
    """Exists while the receiver of `kind` items asked us to wait (its TTL is the wait); set in
    every shard at once."""
    return f"{outbox(shard)}:pause:{kind}"


CONVERSATION_PATTERN = f"{PREFIX}:{{s*}}:conv:*"  # SCAN MATCH: every conversation, no other key


# --- per conversation (in the conversation's shard) -------------------------------------------


def conversation(conversation_id: str) -> str:
    """Hash {v: revision, doc: JSON}."""
    return f"{_of(conversation_id)}:conv:{conversation_id}"


def conversation_timers(conversation_id: str) -> str:
    """Set: the ids of the conversation's pending timers."""
    return f"{_of(conversation_id)}:conv-timers:{conversation_id}"


def lane(conversation_id: str, name: str) -> str:
    """List: a conversation's undelivered outbox entry ids of one lane, oldest first (their
    delivery order); kept while entries wait, emptied as they are delivered."""
    return f"{_of(conversation_id)}:lane:{name}:{conversation_id}"


def hold(conversation_id: str) -> str:
    """Set (to the process's name, with a short TTL) while the process that committed a step
    delivers its messages itself; other consumers leave that conversation's items alone."""
    return f"{_of(conversation_id)}:hold:{conversation_id}"


def seen(conversation_id: str, update_key: str) -> str:
    """Set for an inbound update about the conversation already processed."""
    return f"{_of(conversation_id)}:seen:{update_key}"


def links(conversation_id: str) -> str:
    """Hash: "<step>|<url>" -> the tracked-link token issued for it."""
    return f"{_of(conversation_id)}:links:{conversation_id}"


def link(token: str) -> str:
    """A tracked link's JSON. The token is drawn so that its shard is its conversation's."""
    return f"{_shard(shard_of(token))}:link:{token}"


def keyboard(conversation_id: str) -> str:
    """The Telegram message whose inline keyboard the prospect may still press."""
    return f"{_of(conversation_id)}:keyboard:{conversation_id}"


# --- flows (one slot: publishing updates the flow and the list of names together) ------------

FLOWS = f"{PREFIX}:{{flows}}:names"  # set of published flow names


def flow(name: str) -> str:
    return f"{PREFIX}:{{flows}}:flow:{name}"


# --- flood limits (one slot per bot: a message takes the chat's and the bot's slot at once) ---


def flood(bot: str, chat: str | None) -> str:
    """GCRA bucket of one chat of `bot` (None: of the bot as a whole)."""
    base = f"{PREFIX}:flood:{{{bot}}}"
    return f"{base}:bot" if chat is None else f"{base}:chat:{chat}"


# --- Slack: what the sales team did with each prospect (one slot: a lead and its thread are
# written together) ---------------------------------------------------------------------------

SLACK = f"{PREFIX}:{{slack}}"


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
