"""Tracked links: `/r/<token>` stands for (conversation, step, url), kept in Redis.

The token is opaque and random, so it neither leaks the conversation id nor can be guessed.
Sending the same link again (a follow-up nudge) reuses its token, so every copy the prospect
has keeps working; `/forget` erases all of a conversation's links.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict

from redis.asyncio import Redis

from storage import keys
from storage.base import TrackedLink

TOKEN_BYTES = 16
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# KEYS: the conversation's links hash, the new token's key, the old token's key (none: the
#       links hash again).
# ARGV: hash field, new token, link JSON, ttl, the old token.
# Reuses the token already issued for this (step, url) if it still resolves. Every token of a
# conversation is drawn in its shard, so the three keys share one slot.
ISSUE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old == ARGV[5] and redis.call('EXPIRE', KEYS[3], ARGV[4]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return old
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return ARGV[2]
"""


def _new_token(conversation: str) -> str:
    """A random token in the conversation's shard (about SHARDS draws)."""
    shard = keys.shard_of(conversation)
    while keys.shard_of(token := secrets.token_urlsafe(TOKEN_BYTES)) != shard:
        pass
    return token


class LinkStore:
    """Issues and resolves tracked-link tokens."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._issue = redis.register_script(ISSUE)

    async def token(self, link: TrackedLink) -> str:
        """The token for `link`: the one issued before for the same step and url, else a new one."""
        new = _new_token(link.conversation)
        document = json.dumps(asdict(link), separators=(",", ":"))
        field = f"{link.step}|{link.url}"
        links = keys.links(link.conversation)
        found = await self.redis.hget(links, field)
        # a token issued before the keyspace was sharded may live in another slot: not reused
        mine = found is not None and keys.shard_of(str(found)) == keys.shard_of(link.conversation)
        old = str(found) if mine else ""
        token = await self._issue(
            keys=[links, keys.link(new), keys.link(old) if old else links],
            args=[field, new, document, keys.LINK_RETENTION, old],
        )
        return str(token)

    async def resolve(self, token: str) -> TrackedLink | None:
        """The link a token stands for; None for a malformed, unknown or expired token."""
        if not _TOKEN.match(token):
            return None
        document = await self.redis.get(keys.link(token))
        if document is None:
            return None
        return TrackedLink(**json.loads(document))

    async def issued(self, conversation: str) -> dict[str, TrackedLink]:
        """Every link issued to `conversation` that still resolves, by token."""
        tokens = sorted(map(str, await self.redis.hvals(keys.links(conversation))))
        found = {token: await self.resolve(token) for token in tokens}
        return {token: link for token, link in found.items() if link is not None}

    async def forget(self, conversation: str) -> int:
        """Erase every link issued to `conversation`; returns how many tokens went."""
        links = keys.links(conversation)
        tokens = await self.redis.hvals(links)
        async with self.redis.pipeline(transaction=True) as pipe:  # one slot: the shard's
            if tokens:
                pipe.delete(*(keys.link(str(t)) for t in tokens))
            pipe.delete(links)
            results = await pipe.execute()
        return int(results[0]) if tokens else 0
