"""Prometheus metrics (prometheus_client): what each process counted, and what waits in Redis.

Counters and histograms are per process (the web process counts the updates it handled, a
worker the deliveries it made and the timers it fired): scrape every process, or sum by job.
The gauges describing the shared Redis (outbox, dead letters, timers, event log) are read from
Redis at each scrape, so every process shows the same figures for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.asyncio import Redis

from storage.backlog import Backlog, backlog

LATE_AFTER = 60.0  # seconds past its due time after which a waiting timer counts as late

UPDATES = Counter(
    "ladder_updates",
    "Inbound events handled (a prospect's message or press, a timer, a salesperson's or the "
    "product's event), by where they came from and what became of them.",
    ["channel", "result"],
)
STEP_SECONDS = Histogram(
    "ladder_step_seconds",
    "Time to handle one inbound event: load, engine step and the atomic write.",
    ["channel"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DELIVERIES = Counter(
    "ladder_deliveries",
    "Outbox deliveries attempted by this process, by item kind (message, alert, relay, "
    "webhook) and result (delivered, failed: retried later, waiting: the receiver asked to "
    "wait, undeliverable: dead-lettered).",
    ["kind", "result"],
)
TIMER_LATENESS = Histogram(
    "ladder_timer_lateness_seconds",
    "How long after its due time a timer (follow-up, reminder) was fired.",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
FLOOD_WAITS = Counter(
    "ladder_flood_waits",
    "Sends that waited for the shared flood limits (Telegram: per chat and per bot).",
)
FLOOD_WAIT_SECONDS = Counter(
    "ladder_flood_wait_seconds",
    "Seconds spent waiting for the shared flood limits.",
)


def channel_of(conversation_id: str, source: str | None) -> str:
    """The `channel` label of an update: its source if not the prospect (timer, sales,
    product), else the conversation's channel (telegram, console)."""
    return source or conversation_id.partition(":")[0]


def flood_waited(seconds: float) -> None:
    """A send waited `seconds` for the flood limits (0: it did not wait)."""
    if seconds > 0:
        FLOOD_WAITS.inc()
        FLOOD_WAIT_SECONDS.inc(seconds)


class _Snapshot:
    """A collector of the Redis gauges as read for one scrape."""

    def __init__(self, found: Backlog) -> None:
        self.found = found

    def collect(self) -> Iterator[Metric]:
        found = self.found
        gauges = (
            ("ladder_outbox_length", "Outbox items not yet delivered.", found.outbox),
            (
                "ladder_outbox_oldest_age_seconds",
                "Age of the oldest undelivered outbox item (0: none).",
                found.outbox_oldest_seconds,
            ),
            ("ladder_outbox_dead", "Outbox items given up on (ladder outbox list).",
             found.dead_letters),
            ("ladder_timers_pending", "Timers scheduled (follow-ups, reminders, waits).",
             found.timers_scheduled),
            ("ladder_timers_due", "Timers due by now and not yet claimed by a worker.",
             found.timers_due),
            ("ladder_timers_late", f"Timers due more than {LATE_AFTER:.0f}s ago, unclaimed.",
             found.timers_late),
            ("ladder_events_total", "Domain events in the event log (kept for its window).",
             found.events),
        )  # fmt: skip
        for name, help_text, value in gauges:
            yield GaugeMetricFamily(name, help_text, value=value)


async def exposition(redis: Redis, now: datetime) -> bytes:
    """The /metrics page in the Prometheus text format: this process's metrics, then the Redis
    gauges read now."""
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(await backlog(redis, now, LATE_AFTER)))
    return generate_latest(REGISTRY) + generate_latest(snapshot)
