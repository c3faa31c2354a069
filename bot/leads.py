"""The lead list: one row per prospect of a flow, for the dashboard's leads view and
`ladder leads FLOW --csv` (both show the same rows, built here).

A row is read from the stored conversation: who the prospect is (never only the raw chat id),
where they came from, their score and commitments, the outcome, who claimed them, and when
they were last active. Newest activity first.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from redis.asyncio import Redis

from domain.model import Conversation
from storage.redis import RedisConversationStore


@dataclass(frozen=True)
class Filter:
    """Which leads to list: one flow, optionally one outcome ("none": no outcome yet) and
    claimed or not (None: both)."""

    flow: str
    outcome: str | None = None
    claimed: bool | None = None

    def matches(self, conv: Conversation) -> bool:
        outcome = conv.outcome.value if conv.outcome else "none"
        return (
            conv.flow == self.flow
            and (self.outcome is None or outcome == self.outcome)
            and (self.claimed is None or bool(conv.lead.claimed_by) == self.claimed)
        )


@dataclass(frozen=True)
class LeadRow:
    name: str
    conversation: str
    source: str
    score: int
    commitments: str  # their names, in the order they were made
    outcome: str  # "" while there is none
    claimed_by: str
    last_activity: str  # ISO 8601

    @classmethod
    def of(cls, conv: Conversation) -> LeadRow:
        return cls(
            name=conv.name,
            conversation=conv.id,
            source=conv.source,
            score=conv.score,
            commitments=" ".join(c.name for c in conv.commitments),
            outcome=conv.outcome.value if conv.outcome else "",
            claimed_by=conv.lead.claimed_by,
            last_activity=conv.updated_at or conv.started_at,
        )


COLUMNS = (
    "name",
    "conversation",
    "source",
    "score",
    "commitments",
    "outcome",
    "claimed_by",
    "last_activity",
)
HEADINGS = (
    "name",
    "prospect",
    "source",
    "score",
    "commitments",
    "outcome",
    "claimed by",
    "last activity",
)


async def lead_rows(redis: Redis, chosen: Filter) -> list[LeadRow]:
    """The flow's leads that match, most recently active first."""
    rows = [LeadRow.of(c) async for c in RedisConversationStore(redis).all() if chosen.matches(c)]
    return sorted(rows, key=lambda r: (r.last_activity, r.conversation), reverse=True)


def cells(row: LeadRow) -> tuple[str, ...]:
    """A row as text, in COLUMNS order."""
    return tuple(str(getattr(row, column)) for column in COLUMNS)


def to_csv(rows: list[LeadRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(cells(r) for r in rows)
    return out.getvalue()
