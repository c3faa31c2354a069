"""Reading the event log by the time its entries were written, for archiving
(`ladder events export`): the log keeps only `Retention.events` in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.model import DomainEvent
from storage import keys

PAGE = 1000  # entries per XRANGE


def _stream_ms(moment: datetime) -> int:
    """A stream id's time part (Redis's milliseconds) for `moment`."""
    return max(0, int(moment.timestamp() * 1000))


async def written_between(
    redis: Redis, since: datetime, until: datetime | None = None
) -> AsyncIterator[tuple[str, DomainEvent]]:
    """The log's entries written at or after `since` and before `until` (None: up to now),
    oldest first, as (entry id, event), read a page at a time."""
    low = f"{_stream_ms(since)}-0"
    high = f"({_stream_ms(until)}-0" if until is not None else "+"
    while True:
        batch: Any = await redis.xrange(keys.EVENTS, min=low, max=high, count=PAGE)
        for entry_id, fields in batch:
            yield str(entry_id), DomainEvent.from_fields(fields)
        if len(batch) < PAGE:
            return
        low = f"({batch[-1][0]}"
