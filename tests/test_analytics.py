"""Funnel analytics: the pure computation on hand-made and generated event logs, and the numbers
on a population of prospects driven through the real Ladder service and redis-server."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot import analytics
from bot.analytics import Segment, funnel, two_proportion_p, variant_stats
from bot.clock import ManualClock
from bot.model import DomainEvent, Press, Start, Text, iso
# from bot.registry import FlowRegistry
# from bot.service import Ladder
from storage.redis import RedisFlowCatalog

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def ev(
    name: str,
    conv: str,
    step: str,
    minutes: float = 0,
    source: str = "",
    variant: str | None = None,
    version: int = 1,
    flow: str = "f",
) -> DomainEvent:
    data = {"source": source}
    if variant:
        data["variant"] = variant
    return DomainEvent(name, conv, flow, version, step, iso(T0 + timedelta(minutes=minutes)), data)


def journey(
    conv: str, path: list[str], commit: set[str], end: str, source: str = "", start: float = 0
) -> list[DomainEvent]:
    """A prospect walking `path` from minute `start` (one step a minute), committing at
    `commit`, ending with `end` (completed, dropped or "" for in flight) at the last step."""
    events = [ev("started", conv, path[0], start, source)]
    for i, step in enumerate(path, start=int(start)):
        events.append(ev("step_reached", conv, step, i, source))
        if step in commit:
            events.append(ev("committed", conv, step, i + 0.5, source))
    if end:
        events.append(ev(end, conv, path[-1], start + len(path), source))
    return events


# --- the pure computation ----------------------------------------------------------------------


def test_counts_distinct_conversations_drops_and_median_time_to_commit() -> None:
    events = [
        ev("started", "a", "welcome", 0),
        ev("step_reached", "a", "welcome", 0),
        ev("committed", "a", "welcome", 2),
        ev("step_reached", "a", "email", 2),
        ev("committed", "a", "email", 12),
        ev("completed", "a", "email", 12),
        ev("started", "b", "welcome", 0),
        ev("step_reached", "b", "welcome", 0),
        ev("committed", "b", "welcome", 4),
        ev("step_reached", "b", "email", 4),
        ev("dropped", "b", "email", 100),
        ev("started", "c", "welcome", 0),
        ev("step_reached", "c", "welcome", 0),
        ev("committed", "c", "welcome", 9),
        # c restarts: reaching welcome again does not count twice, nor does a second commit
        ev("started", "c", "welcome", 20),
        ev("step_reached", "c", "welcome", 20),
        ev("committed", "c", "welcome", 21),
    ]
    result = funnel(events, Segment("f"), steps=["welcome", "email", "done"])
    rows = {s.step: s for s in result.steps}
    assert [s.step for s in result.steps] == ["welcome", "email", "done"]
    assert (rows["welcome"].reached, rows["welcome"].committed, rows["welcome"].dropped) == (3, 3, 0)
    assert rows["welcome"].median_to_commit == timedelta(minutes=4)  # 2, 4, 9
    assert (rows["email"].reached, rows["email"].committed, rows["email"].dropped) == (2, 1, 1)
    assert rows["email"].drop_off == 0.5
    assert rows["email"].median_to_commit == timedelta(minutes=10)
    assert (rows["done"].reached, rows["done"].median_to_commit) == (0, None)
    assert (result.started, result.completed) == (3, 1)
    assert result.conversion == pytest.approx(1 / 3)


def test_segments_filter_by_flow_version_and_source() -> None:
    events = [
        *journey("a", ["s1", "s2"], {"s1"}, "completed", source="ads"),
        *journey("b", ["s1"], set(), "dropped", source="mail"),
        *[e for e in journey("c", ["s1", "s2"], {"s1"}, "") if e.name != "committed"],
        ev("started", "d", "s1", version=2),
        ev("step_reached", "d", "s1", version=2),
        ev("started", "x", "s1", flow="other"),
    ]
    assert funnel(events, Segment("f")).started == 4
    assert funnel(events, Segment("f", version=2)).started == 1
    ads = funnel(events, Segment("f", source="ads"))
    assert (ads.started, ads.completed, ads.steps[0].committed) == (1, 1, 1)
    mail = funnel(events, Segment("f", source="mail"))
    assert (mail.started, mail.steps[0].dropped) == (1, 1)
    assert funnel(events, Segment("f", version=1, source="")).started == 1
    assert analytics.sources(events, "f") == ["", "ads", "mail"]
    assert funnel(events, Segment("nothing")).steps == ()


def test_two_proportion_z_test_matches_known_values() -> None:
    # R: prop.test(c(50, 40), c(100, 100), correct = FALSE) -> X-squared 2.0202, p 0.1552
    assert two_proportion_p(50, 100, 40, 100) == pytest.approx(0.1552, abs=5e-5)
    # R: prop.test(c(30, 10), c(100, 100), correct = FALSE) -> X-squared 12.5, p 0.000407
    assert two_proportion_p(30, 100, 10, 100) == pytest.approx(0.000407, abs=5e-7)
    assert two_proportion_p(5, 10, 5, 10) == pytest.approx(1.0)
    assert two_proportion_p(3, 0, 1, 10) is None  # an empty group
    assert two_proportion_p(10, 10, 5, 5) is None  # everyone committed: no spread


def test_variant_stats_per_variant_with_p_values_against_the_first() -> None:
    events: list[DomainEvent] = []
    # variant a: 100 prospects, 50 commit, 20 complete; b: 100, 40 commit, 10 complete
    for variant, commits, completes in (("a", 50, 20), ("b", 40, 10)):
        for i in range(100):
            conv = f"{variant}{i}"
            events.append(ev("step_reached", conv, "ask", variant=variant))
            if i < commits:
                events.append(ev("committed", conv, "ask", 1, variant=variant))
            if i < completes:
                events.append(ev("completed", conv, "end", 2))
    a, b = variant_stats(events, Segment("f"))
    assert (a.variant, a.reached, a.committed, a.completed) == ("a", 100, 50, 20)
    assert (a.commit_p, a.complete_p) == (None, None)
    assert (b.variant, b.commit_rate, b.complete_rate) == ("b", 0.4, 0.1)
    assert b.commit_p == pytest.approx(0.1552, abs=5e-5)
    assert b.complete_p == pytest.approx(two_proportion_p(10, 100, 20, 100))
    assert variant_stats(events, Segment("f", source="nobody")) == ()


def test_table_csv_and_chart(tmp_path: Path) -> None:
    events = [
        *journey("a", ["welcome", "email"], {"welcome", "email"}, "completed"),
        *journey("b", ["welcome"], set(), "dropped"),
    ]
    result = funnel(events, Segment("f"), ["welcome", "email"])
    lines = analytics.table(result).splitlines()
    assert lines[0].split() == ["step", "reached", "committed", "dropped", "drop-off", "%",
                                "median", "to", "commit"]  # fmt: skip
    assert lines[2].split() == ["welcome", "2", "1", "1", "50.0", "30s"]
    assert lines[3].split() == ["email", "1", "1", "0", "0.0", "30s"]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule align
    assert lines[-1] == "started 2, completed 1, conversion 50.0%"
    rows = list(csv.DictReader(io.StringIO(analytics.to_csv(result))))
    assert rows[0] == {
        "flow": "f",
        "version": "*",
        "source": "*",
        "step": "welcome",
        "reached": "2",
        "committed": "1",
        "dropped": "1",
        "drop_off_pct": "50.0",
        "median_seconds_to_commit": "30",
    }
    assert rows[1]["median_seconds_to_commit"] == "30"
    out = tmp_path / "funnel.png"
    analytics.chart(result, out)
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_durations_read_naturally() -> None:
    assert analytics.duration(None) == "-"
    assert analytics.duration(timedelta(seconds=42)) == "42s"
    assert analytics.duration(timedelta(minutes=12)) == "12m"
    assert analytics.duration(timedelta(hours=3, minutes=30)) == "3.5h"
    assert analytics.duration(timedelta(days=2)) == "2.0d"


STEPS = ["s1", "s2", "s3", "s4"]


@st.composite
def populations(draw: st.DrawFn) -> list[DomainEvent]:
    """Prospects walking a prefix of a linear flow, committing on the way or not, from a few
    sources, starting at different times; the log interleaves them by time."""
    events: list[DomainEvent] = []
    for n in range(draw(st.integers(0, 25))):
        depth = draw(st.integers(1, len(STEPS)))
        commits = set(STEPS[: depth - 1])  # moving on needs a yes
        end = "completed" if depth == len(STEPS) else draw(st.sampled_from(["dropped", ""]))
        if end != "dropped" and draw(st.booleans()):
            commits.add(STEPS[depth - 1])
        source = draw(st.sampled_from(["", "ads", "mail"]))
        start = draw(st.integers(0, 10))
        events.extend(journey(f"c{n}", STEPS[:depth], commits, end, source, start))
    return sorted(events, key=lambda e: e.at)


@given(populations())
@settings(max_examples=60, deadline=None)
def test_funnel_invariants(events: list[DomainEvent]) -> None:
    result = funnel(events, Segment("f"), STEPS)
    reached = [s.reached for s in result.steps]
    assert reached == sorted(reached, reverse=True)  # a funnel only narrows
    assert reached[0] == result.started
    for s, following in zip(result.steps, result.steps[1:], strict=False):
        assert s.committed >= following.reached  # nobody moved on without a yes
    for s in result.steps:
        assert s.committed + s.dropped <= s.reached
        assert 0 <= s.drop_off <= 1
        assert (s.median_to_commit is None) == (s.committed == 0)
    assert result.completed == result.steps[-1].reached
    # every prospect has one source: the per-source funnels add up to the whole
    parts = [funnel(events, Segment("f", source=src), STEPS) for src in ("", "ads", "mail")]
    assert sum(p.started for p in parts) == result.started
    assert sum(p.completed for p in parts) == result.completed
    for i, s in enumerate(result.steps):
        assert sum(p.steps[i].reached for p in parts) == s.reached
        assert sum(p.steps[i].dropped for p in parts) == s.dropped


@given(st.integers(1, 200), st.integers(1, 200), st.data())
def test_p_value_is_a_probability_and_symmetric(n_a: int, n_b: int, data: st.DataObject) -> None:
    hits_a = data.draw(st.integers(0, n_a))
    hits_b = data.draw(st.integers(0, n_b))
    p = two_proportion_p(hits_a, n_a, hits_b, n_b)
    if p is not None:
        assert 0 <= p <= 1
        assert p == pytest.approx(two_proportion_p(hits_b, n_b, hits_a, n_a))
        if hits_a * n_b == hits_b * n_a:
            assert p == pytest.approx(1.0)
    else:
        assert hits_a + hits_b in (0, n_a + n_b)
    assert not math.isnan(p or 0)
