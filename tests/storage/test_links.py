"""Tracked-link tokens on the real Redis: issue, reuse, resolve, forget."""

from __future__ import annotations

from redis.asyncio import Redis

from storage import keys
from storage.base import TrackedLink
from storage.links import LinkStore


async def test_a_token_resolves_to_its_link(redis: Redis) -> None:
    links = LinkStore(redis)
    link = TrackedLink("telegram:1", "checklist", "https://example.com/c.pdf")
    token = await links.token(link)
    assert await links.resolve(token) == link
    assert keys.shard_of(token) == keys.shard_of(link.conversation)  # one slot with its links
    assert "telegram" not in token and "checklist" not in token  # opaque
    assert 0 < await redis.ttl(keys.link(token)) <= keys.LINK_RETENTION


async def test_sending_the_same_link_again_reuses_its_token(redis: Redis) -> None:
    links = LinkStore(redis)
    link = TrackedLink("telegram:1", "checklist", "https://example.com/c.pdf")
    first = await links.token(link)
    assert await links.token(link) == first
    other_step = await links.token(TrackedLink("telegram:1", "trial", "https://example.com/c.pdf"))
    other_chat = await links.token(TrackedLink("telegram:2", "checklist", link.url))
    assert len({first, other_step, other_chat}) == 3


async def test_an_expired_token_is_replaced_by_a_new_one(redis: Redis) -> None:
    links = LinkStore(redis)
    link = TrackedLink("telegram:1", "checklist", "https://example.com/c.pdf")
    old = await links.token(link)
    await redis.delete(keys.link(old))  # as if it had expired
    new = await links.token(link)
    assert new != old
    assert await links.resolve(new) == link


async def test_unknown_and_malformed_tokens_resolve_to_nothing(redis: Redis) -> None:
    links = LinkStore(redis)
    assert await links.resolve("A" * 22) is None
    for bad in ("", "short", "../../etc/passwd", "x" * 200, "abc def ghi jkl mno pq"):
        assert await links.resolve(bad) is None


async def test_forget_erases_only_that_conversations_links(redis: Redis) -> None:
    links = LinkStore(redis)
    mine = [
        await links.token(TrackedLink("telegram:1", step, f"https://example.com/{step}"))
        for step in ("checklist", "trial")
    ]
    theirs = await links.token(TrackedLink("telegram:2", "checklist", "https://example.com/x"))
    assert await links.forget("telegram:1") == 2
    assert [await links.resolve(t) for t in mine] == [None, None]
    assert await links.resolve(theirs) is not None
    assert await links.forget("telegram:1") == 0
