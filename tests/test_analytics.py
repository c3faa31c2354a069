"""Funnel analytics: the pure computation on hand-made and generated event logs, and the numbers
on a population of prospects driven through the real `Conversations` service and redis-server."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot import analytics
from bot.analytics import Segment, funnel, two_proportion_p, variant_stats
from bot.cli import main
from bot.registry import FlowRegistry
from bot.service import Conversations
from domain.clock import ManualClock
from domain.errors import LadderError
from domain.model import DomainEvent, Due, Press, Profile, Start, Status, Text, iso
from storage import keys
from storage.events import PAGE
from storage.redis import RedisFlowCatalog
from storage.scheduler import RedisScheduler
from tests.redis_server import free_port

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).parent.parent
FLOW_FILE = Path(__file__).parent / "data" / "funnel.yaml"


def ev(
    name: str,
    conv: str,
    step: str,
    minutes: float = 0,
    *,
    source: str = "",
    variant: str | None = None,
    version: int = 1,
    flow: str = "f",
    outcome: str | None = None,
) -> DomainEvent:
    data = {"source": source}
    if variant:
        data["variant"] = variant
    if outcome:
        data["outcome"] = outcome
    return DomainEvent(name, conv, flow, version, step, iso(T0 + timedelta(minutes=minutes)), data)


def journey(
    conv: str, path: list[str], commit: set[str], end: str, *, source: str = "", start: float = 0
) -> list[DomainEvent]:
    """A prospect walking `path` from minute `start` (one step a minute), committing at
    `commit`, ending with `end` (completed, dropped or "" for in flight) at the last step."""
    events = [ev("started", conv, path[0], start, source=source)]
    for i, step in enumerate(path, start=int(start)):
        events.append(ev("step_reached", conv, step, i, source=source))
        if step in commit:
            events.append(ev("committed", conv, step, i + 0.5, source=source))
    if end:
        outcome = "won" if end == "completed" else None
        events.append(ev(end, conv, path[-1], start + len(path), source=source, outcome=outcome))
    return events


# --- the pure computation ----------------------------------------------------------------------


def test_counts_distinct_conversations_drops_and_median_time_to_commit() -> None:
    events = [
        ev("started", "a", "welcome", 0),
        ev("step_reached", "a", "welcome", 0),
        ev("committed", "a", "welcome", 2),
        ev("step_reached", "a", "email", 2),
        ev("committed", "a", "email", 12),
        ev("completed", "a", "email", 12, outcome="won"),
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
    assert (rows["welcome"].reached, rows["welcome"].committed, rows["welcome"].dropped) == (
        3,
        3,
        0,
    )
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


def test_outcomes_count_each_prospects_latest_and_old_events_are_read_by_their_step() -> None:
    events = [
        *journey("a", ["welcome", "done"], {"welcome"}, "completed"),  # outcome won
        *journey("b", ["welcome", "later"], set(), ""),
        ev("completed", "b", "later", 3),  # logged before outcomes: read by its end step
        *journey("c", ["welcome", "gone"], set(), ""),
        ev("completed", "c", "gone", 3),  # an end step the flow no longer has
        *journey("d", ["welcome", "done"], {"welcome"}, "completed"),
        ev("lost", "d", "done", 9, outcome="lost"),  # the sales team's word is the latest
        *journey("e", ["welcome", "done"], {"welcome"}, "completed"),
        ev("restarted", "e", "welcome", 10),  # back on the ladder: no outcome for now
    ]
    read = analytics.Outcomes(success=("won",), by_step={"done": "won", "later": "declined"})
    result = funnel(events, Segment("f"), ["welcome", "done", "later"], read)
    assert result.outcomes == {"won": 1, "declined": 1, "lost": 1, "unrecorded": 1}
    assert (result.completed, result.converted, result.started) == (5, 1, 5)
    assert {s.step: s.outcomes for s in result.steps}["later"] == {"declined": 1}
    nurture_too = analytics.Outcomes(success=("won", "declined"), by_step=read.by_step)
    assert funnel(events, Segment("f"), (), nurture_too).converted == 2


def test_median_time_to_claim_runs_from_the_first_alert() -> None:
    events = [
        ev("alerted", "a", "email", 0), ev("alerted", "a", "done", 5),
        ev("claimed", "a", "done", 10),
        ev("alerted", "b", "email", 0), ev("claimed", "b", "email", 30),
        ev("claimed", "c", "email", 1),  # claimed without an alert (from the dashboard)
    ]  # fmt: skip
    assert funnel(events, Segment("f")).median_to_claim == timedelta(minutes=20)


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
                events.append(ev("completed", conv, "end", 2, outcome="won"))
            elif i < 60:  # "just browsing" ends are completions, never conversions
                events.append(ev("completed", conv, "end", 2, outcome="declined"))
    a, b = variant_stats(events, Segment("f"))
    assert (a.variant, a.reached, a.committed, a.converted) == ("a", 100, 50, 20)
    assert a.outcomes == {"won": 20, "declined": 40}
    assert (a.commit_p, a.convert_p) == (None, None)
    assert (b.variant, b.commit_rate, b.convert_rate) == ("b", 0.4, 0.1)
    assert b.outcomes == {"won": 10, "declined": 50}
    assert b.commit_p == pytest.approx(0.1552, abs=5e-5)
    assert b.convert_p == pytest.approx(two_proportion_p(10, 100, 20, 100))
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
    assert lines[-2] == "started 2, completed 1, converted 1 (won), conversion 50.0%"
    assert lines[-1] == "outcomes: won 1"
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
        **dict.fromkeys(analytics.OUTCOME_ORDER, "0"),
    }
    assert rows[1]["median_seconds_to_commit"] == "30"
    assert (rows[1]["won"], rows[1]["declined"]) == ("1", "0")  # the end was reached at email
    out = tmp_path / "funnel.png"
    analytics.chart(result, out)
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(LadderError, match=r"cannot write the chart to .*nowhere"):
        analytics.chart(result, tmp_path / "nowhere" / "funnel.png")


def test_chart_without_matplotlib_says_how_to_get_it() -> None:
    script = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if the charts extra were missing
        "from pathlib import Path\n"
        "from bot import analytics\n"
        "from domain.errors import LadderError\n"
        "empty = analytics.funnel([], analytics.Segment('f'))\n"
        "try:\n"
        "    analytics.chart(empty, Path('unused.png'))\n"
        "except LadderError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "--chart needs matplotlib: pip install 'ladderbot[charts]'"


def test_durations_and_p_values_read_naturally() -> None:
    assert analytics.duration(None) == "-"
    assert analytics.duration(timedelta(seconds=42)) == "42s"
    assert analytics.duration(timedelta(minutes=12)) == "12m"
    assert analytics.duration(timedelta(hours=3, minutes=30)) == "3.5h"
    assert analytics.duration(timedelta(days=2)) == "2.0d"
    assert analytics.p_value(None) == "-"
    assert analytics.p_value(0.0004) == "<0.001"
    assert analytics.p_value(0.15523) == "0.155"


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
        events.extend(journey(f"c{n}", STEPS[:depth], commits, end, source=source, start=start))
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


# --- prospects driven through the real service and redis-server -------------------------------


async def ladder_on(redis: Redis, clock: ManualClock, path: Path = FLOW_FILE) -> Conversations:
    registry = await FlowRegistry.from_files(RedisFlowCatalog(redis), [path])
    return Conversations(redis, registry, clock)


async def go_quiet(conversations: Conversations, clock: ManualClock, conversation_id: str) -> None:
    """The prospect says nothing more: their follow-ups fall due and fire until they drop."""
    for _ in range(4):
        conv = await conversations.store.load(conversation_id)
        if conv is None or conv.status != Status.ACTIVE:
            return
        for timer in await RedisScheduler(conversations.redis).of(conversation_id):
            clock.set(max(clock.now(), datetime.fromisoformat(timer.due)))
            await conversations.handle(conversation_id, Due(timer))


@dataclass(frozen=True)
class Prospect:
    id: str
    source: str
    variant: str
    said_yes: bool
    wait: timedelta  # from the ask to the yes
    answered: bool  # typed their email (else went quiet at the email step)


async def populate(conversations: Conversations, clock: ManualClock, n: int = 12) -> list[Prospect]:
    """n prospects: the first half from "ads", the rest from "mail". Variant a always says yes,
    variant b only for even i; of those who said yes, every fourth goes quiet at the email."""
    prospects = []
    for i in range(1, n + 1):
        cid = f"telegram:{i}"
        source = "ads" if i <= n // 2 else "mail"
        out = await conversations.handle(cid, Start(source))
        variant = out.conversation.variants["welcome"]
        said_yes = variant == "a" or i % 2 == 0
        answered = said_yes and i % 4 != 0
        if said_yes:
            clock.advance(timedelta(minutes=i))
            await conversations.handle(cid, Press("welcome", "yes"))
            clock.advance(timedelta(minutes=2))
            if answered:
                await conversations.handle(cid, Text(f"p{i}@example.com"))
        if not answered:
            await go_quiet(conversations, clock, cid)
        prospects.append(Prospect(cid, source, variant, said_yes, timedelta(minutes=i), answered))
    return prospects


def expected_funnel(prospects: list[Prospect]) -> dict[str, tuple[int, int, int]]:
    """(reached, committed, dropped) per step, from the script."""
    yes = [p for p in prospects if p.said_yes]
    done = [p for p in yes if p.answered]
    return {
        "welcome": (len(prospects), len(yes), len(prospects) - len(yes)),
        "email": (len(yes), len(done), len(yes) - len(done)),
        "done": (len(done), 0, 0),
    }


async def test_funnel_of_prospects_driven_through_the_service(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await ladder_on(redis, clock)
    prospects = await populate(conversations, clock)
    stats = await analytics.flow_stats(redis, conversations.flows, "funnel")
    result = stats.funnel
    assert {s.step: (s.reached, s.committed, s.dropped) for s in result.steps} == expected_funnel(
        prospects
    )
    yes = [p for p in prospects if p.said_yes]
    welcome, email, _ = result.steps
    assert welcome.median_to_commit == statistics.median(p.wait for p in yes)
    assert email.median_to_commit == timedelta(minutes=2)
    assert (result.started, result.completed) == (12, sum(p.answered for p in prospects))

    # per source: each split matches the script for its own prospects
    for split in stats.by_source:
        mine = [p for p in prospects if p.source == split.segment.source]
        assert {s.step: (s.reached, s.committed, s.dropped) for s in split.steps} == (
            expected_funnel(mine)
        )
    assert [f.segment.source for f in stats.by_source] == ["ads", "mail"]

    # per variant: both were drawn, and each one's conversions match the script
    variants = {v.variant: v for v in stats.variants}
    assert set(variants) == {"a", "b"}
    for v in variants.values():
        mine = [p for p in prospects if p.variant == v.variant]
        assert (v.step, v.reached, v.committed, v.converted) == (
            "welcome",
            len(mine),
            sum(p.said_yes for p in mine),
            sum(p.answered for p in mine),
        )
    a, b = variants["a"], variants["b"]
    assert b.commit_p == two_proportion_p(b.committed, b.reached, a.committed, a.reached)
    assert b.convert_p == two_proportion_p(b.converted, b.reached, a.converted, a.reached)
    assert result.outcomes == {"won": sum(p.answered for p in prospects)}  # the one end: won

    # filters: the one version (the same prospects), a source, and a time after everything
    v1 = (await analytics.flow_stats(redis, conversations.flows, "funnel", version=1)).funnel
    assert (v1.steps, v1.started, v1.completed) == (result.steps, result.started, result.completed)
    ads = await analytics.flow_stats(redis, conversations.flows, "funnel", source="ads")
    assert ads.funnel.started == 6
    later = await analytics.flow_stats(
        redis, conversations.flows, "funnel", since=clock.now() + timedelta(seconds=1)
    )
    assert [s.reached for s in later.funnel.steps] == [0, 0, 0]
    report = stats.report()
    assert "conversion" in report and "ads" in report and "welcome  a" in report
    assert "A/B variants (p: two-proportion z-test against the first variant)" in report


async def test_today_funnel_for_slack(redis: Redis) -> None:
    clock = ManualClock(T0)
    conversations = await ladder_on(redis, clock)
    prospects = await populate(conversations, clock, n=4)
    today = await analytics.today_funnel(redis, clock.now())
    assert today.since == datetime(2026, 12, 1, tzinfo=UTC)
    (only,) = today.funnels
    assert only.started == 4
    done = sum(p.answered for p in prospects)
    assert today.text().startswith(f"*funnel*: 4 started, {done} completed")
    assert "  • welcome: 4 reached" in today.text()
    tomorrow = await analytics.today_funnel(redis, clock.now() + timedelta(days=1))
    assert tomorrow.funnels == ()
    assert tomorrow.text() == "No prospect activity since 2026-12-02 00:00 UTC."
    assert (await analytics.today_funnel(redis, clock.now(), flow="other")).funnels == ()


async def test_reading_the_log_in_pages(redis: Redis) -> None:
    written = [ev("step_reached", f"c{i}", "s1", i) for i in range(2 * PAGE + 5)]
    async with redis.pipeline(transaction=False) as pipe:
        for n, event in enumerate(written, 1):  # ids in writing order across the shards
            stream = keys.events(keys.shard_of(event.conversation))
            pipe.xadd(stream, event.fields(), id=f"{n}-1")  # type: ignore[arg-type]
        await pipe.execute()
    assert await analytics.read_events(redis) == written
    since = await analytics.read_events(
        redis, "f", since=(T0 + timedelta(minutes=2000)).replace(tzinfo=None)
    )
    assert since == written[2000:]
    assert await analytics.read_events(redis, "other") == []


# --- `ladder stats` ------------------------------------------------------------------------------


async def ladder_cli(monkeypatch: pytest.MonkeyPatch, redis_url: str, *argv: str) -> int:
    """Run the `ladder` command in a thread (it runs its own event loop) against the test Redis."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    return await asyncio.to_thread(main, list(argv))


async def test_stats_command_table_csv_and_chart(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    conversations = await ladder_on(redis, clock)
    prospects = await populate(conversations, clock)
    expected = expected_funnel(prospects)

    assert await ladder_cli(monkeypatch, redis_url, "stats", "funnel") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "funnel  version all  source all"
    assert out[1].split()[:4] == ["step", "reached", "committed", "dropped"]
    for line, step in zip(out[3:6], ["welcome", "email", "done"], strict=True):
        assert line.split()[:4] == [step, *map(str, expected[step])]

    chart = tmp_path / "funnel.png"
    code = await ladder_cli(
        monkeypatch,
        redis_url,
        "stats",
        "funnel",
        "--source",
        "mail",
        "--version",
        "1",
        "--csv",
        "--chart",
        str(chart),
    )
    assert code == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    mail = expected_funnel([p for p in prospects if p.source == "mail"])
    assert [
        (r["step"], int(r["reached"]), int(r["committed"]), int(r["dropped"])) for r in rows
    ] == [(step, *counts) for step, counts in mail.items()]
    assert {(r["flow"], r["version"], r["source"]) for r in rows} == {("funnel", "1", "mail")}
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"chart written to {chart}" in captured.err


async def test_stats_split_by_language(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock(T0)
    conversations = await ladder_on(redis, clock, ROOT / "flows" / "webinar-ladder.yaml")
    spoken = {"telegram:1": "de", "telegram:2": "de-AT", "telegram:3": "en", "telegram:4": "fr"}
    for cid, language in spoken.items():
        await conversations.handle(cid, Start(), profile=Profile(first_name="P", language=language))
    await conversations.handle("telegram:1", Press("welcome", "yes-please"))  # a German yes
    await conversations.handle("telegram:3", Press("welcome", "not-now"))  # an English no (an end)

    assert await ladder_cli(monkeypatch, redis_url, "stats", "webinar-ladder") == 0
    out = capsys.readouterr().out
    by_language = out.split("language  started", 1)[1].splitlines()
    assert [line.split()[:3] for line in by_language[2:4]] == [["de", "2", "0"], ["en", "2", "1"]]

    code = await ladder_cli(monkeypatch, redis_url, "stats", "webinar-ladder", "--language", "de")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "webinar-ladder  version all  source all  language 'de'"
    welcome, later, role = (line.split()[:3] for line in lines[3:6])
    assert (welcome, later, role) == (
        ["welcome", "2", "1"],
        ["later", "0", "0"],
        ["role", "1", "0"],
    )


async def test_stats_command_errors(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await ladder_cli(monkeypatch, redis_url, "stats", "nope") == 1
    assert "flow 'nope' is not published" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        await ladder_cli(monkeypatch, redis_url, "stats", "nope", "--since", "yesterday")
    assert exit_.value.code == 2
    assert "not a date: 'yesterday'" in capsys.readouterr().err
    await ladder_on(redis, ManualClock(T0))
    assert await ladder_cli(monkeypatch, redis_url, "stats", "funnel", "--version", "7") == 1
    assert "has no published version 7" in capsys.readouterr().err
    code = await ladder_cli(monkeypatch, redis_url, "stats", "funnel", "--chart", "/no/such/x.png")
    assert code == 1
    assert "ladder: cannot write the chart to /no/such/x.png" in capsys.readouterr().err
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert await ladder_cli(monkeypatch, dead, "stats", "funnel") == 1
    assert "Redis is unavailable" in capsys.readouterr().err
