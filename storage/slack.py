"""Where Slack's side of each lead is: the lead card (a prospect's latest alert) and the thread
of a take-over, which outbox items were posted at least once, and channel ids by name.

Who claimed or took over a lead is not here: it lives in the conversation (`Conversation.lead`).
Keys (storage/keys.py, prefix lb:slack:): `lead_key`, `thread_key`, `attempt_key`,
`channel_key`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

from redis.asyncio import Redis

from storage import keys


@dataclass(frozen=True)
class Posted:
    """Where a prospect's alerts are in Slack: the latest alert, and the thread of the alert a
    salesperson took the chat over from."""

    channel: str = ""
    ts: str = ""
    thread_channel: str = ""
    thread_ts: str = ""

    @property
    def thread(self) -> tuple[str, str] | None:
        """The thread relayed messages go to: the take-over's, else the latest alert's."""
        if self.thread_ts:
            return self.thread_channel, self.thread_ts
        return (self.channel, self.ts) if self.ts else None


class SlackRecords(Protocol):
    async def posted(self, conversation_id: str) -> Posted:
        """Where the prospect's alerts are (all empty: none posted yet)."""
        ...

    async def card_posted(self, conversation_id: str, channel: str, ts: str) -> None:
        """The prospect's lead card is now message `ts` in `channel`; replies in its thread
        name the prospect (`conversation_at`)."""
        ...

    async def taken_over_in(self, conversation_id: str, channel: str, ts: str) -> None:
        """A salesperson took the chat over from the alert `ts` in `channel`: relayed messages
        go to its thread."""
        ...

    async def conversation_at(self, channel: str, ts: str) -> str | None:
        """The prospect whose alert is message `ts` in `channel`, if any."""
        ...

    async def first_attempt(self, item_key: str) -> bool:
        """True the first time an outbox item is about to be posted; later attempts look in
        Slack for an earlier post before posting."""
        ...

    async def channel_id(self, name: str) -> str | None:
        """The id learnt for channel `name`, if any."""
        ...

    async def remember_channel(self, name: str, channel_id: str) -> None: ...


class RedisSlackRecords:
    """SlackRecords in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def posted(self, conversation_id: str) -> Posted:
        stored = await self.redis.hgetall(keys.lead_key(conversation_id))
        return Posted(**{f.name: str(stored.get(f.name, "")) for f in fields(Posted)})

    async def card_posted(self, conversation_id: str, channel: str, ts: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.lead_key(conversation_id), mapping={"channel": channel, "ts": ts})
            pipe.expire(keys.lead_key(conversation_id), keys.SLACK_RETENTION)
            pipe.set(keys.thread_key(channel, ts), conversation_id, ex=keys.SLACK_RETENTION)
            await pipe.execute()

    async def taken_over_in(self, conversation_id: str, channel: str, ts: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            lead = keys.lead_key(conversation_id)
            pipe.hset(lead, mapping={"thread_channel": channel, "thread_ts": ts})
            pipe.expire(lead, keys.SLACK_RETENTION)
            await pipe.execute()

    async def conversation_at(self, channel: str, ts: str) -> str | None:
        found = await self.redis.get(keys.thread_key(channel, ts))
        return str(found) if found else None

    async def first_attempt(self, item_key: str) -> bool:
        return bool(
            await self.redis.set(
                keys.attempt_key(item_key), "1", nx=True, ex=keys.ATTEMPT_RETENTION
            )
        )

    async def channel_id(self, name: str) -> str | None:
        found = await self.redis.get(keys.channel_key(name))
        return str(found) if found else None

    async def remember_channel(self, name: str, channel_id: str) -> None:
        await self.redis.set(keys.channel_key(name), channel_id)
