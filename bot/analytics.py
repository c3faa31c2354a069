"""Funnel analytics from the domain event log: where prospects drop off, per flow, version,
source and A/B variant.

The numbers are a pure function of a list of DomainEvents (`funnel`, `variant_stats`), so
they can be checked by hand and property-tested; `read_events` is the only part that reads
Redis, and `flow_stats` / `today_funnel` put the two together. Counts are of distinct
conversations: a prospect who reaches a step twice (after /restart) counts once there.

Outcomes: each conversation counts with its latest outcome (an end step's, or the sales team's
won / lost / not a fit). Only the flow's success outcomes (default: won) are conversions. A
`completed` event logged before outcomes existed carries none: it is read as the outcome its end
step declares in the flow version shown (the latest by default), else as "unrecorded", which is
never a success.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from redis.asyncio import Redis

from bot.flow.model import DEFAULT_SUCCESS, Flow
from bot.registry import FlowRegistry
from domain.errors import LadderError
from domain.model import DomainEvent, Outcome
from storage.events import RedisEventLog

UNRECORDED = "unrecorded"  # a `completed` event from before outcomes, with no step to tell it
OUTCOME_ORDER = (*(o.value for o in Outcome), UNRECORDED)


@dataclass(frozen=True)
class Outcomes:
    """How a flow's outcomes are counted: which ones are a success, and what each end step
    declares (to read `completed` events logged before outcomes existed)."""

    success: tuple[str, ...] = tuple(DEFAULT_SUCCESS)
    by_step: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, flow: Flow) -> Outcomes:
        return cls(tuple(flow.success), dict(flow.outcomes))

    def read(self, event: DomainEvent) -> str | None:
        """The outcome `event` records, or None when it records none."""
        if "outcome" in event.data:
            return event.data["outcome"]
        if event.name == "completed":
            return self.by_step.get(event.step, UNRECORDED)
        return None


def outcome_counts(final: Mapping[str, str]) -> dict[str, int]:
    """How many conversations ended with each outcome, in OUTCOME_ORDER, zeros left out."""
    counts: dict[str, int] = defaultdict(int)
    for outcome in final.values():
        counts[outcome] += 1
    ordered = [o for o in OUTCOME_ORDER if o in counts] + sorted(counts.keys() - OUTCOME_ORDER)
    return {o: counts[o] for o in ordered}


@dataclass(frozen=True)
class Segment:
    """Which prospects a funnel counts: one flow, optionally one version, one source and one
    language."""

    flow: str
    version: int | None = None  # None: every version
    source: str | None = None  # None: every source; "" is "came without a source"
    language: str | None = None  # None: every language; "" is "a flow in one language"

    def matches(self, event: DomainEvent) -> bool:
        return (
            event.flow == self.flow
            and (self.version is None or event.version == self.version)
            and (self.source is None or event.data.get("source", "") == self.source)
            and (self.language is None or event.data.get("language", "") == self.language)
        )


@dataclass(frozen=True)
class StepStats:
    """One rung of the funnel."""

    step: str
    reached: int  # conversations that reached the step
    committed: int  # ... that made the step's commitment
    dropped: int  # ... whose `dropped` event (quiet after every follow-up) is at this step
    median_to_commit: timedelta | None  # reaching the step -> committing at it
    outcomes: dict[str, int] = field(default_factory=dict)  # ... whose outcome was set here

    @property
    def drop_off(self) -> float:
        """Share of those who reached the step that were dropped there (0..1)."""
        return self.dropped / self.reached if self.reached else 0.0


@dataclass(frozen=True)
class Funnel:
    """Every step of a flow for one segment, in the flow's order, and conversion to the end."""

    segment: Segment
    steps: tuple[StepStats, ...]
    started: int
    completed: int  # reached an end step, whatever it means
    outcomes: dict[str, int] = field(default_factory=dict)  # latest outcome -> conversations
    success: tuple[str, ...] = tuple(DEFAULT_SUCCESS)
    median_to_claim: timedelta | None = None  # first alert -> a salesperson claims the lead

    @property
    def converted(self) -> int:
        """Conversations whose outcome is one the flow counts as success."""
        return sum(n for o, n in self.outcomes.items() if o in self.success)

    @property
    def conversion(self) -> float:
        """converted / started (0 when nobody started)."""
        return self.converted / self.started if self.started else 0.0

    def outcome_text(self) -> str:
        """e.g. "won 3, declined 5": every outcome side by side ("no outcomes yet" if none)."""
        return ", ".join(f"{o} {n}" for o, n in self.outcomes.items()) or "no outcomes yet"


@dataclass(frozen=True)
class VariantStats:
    """How one A/B variant of a step's ask did, compared with the step's first variant."""

    step: str
    variant: str
    reached: int
    committed: int  # at this step
    converted: int  # ended with a success outcome afterwards
    commit_p: float | None  # two-proportion z-test against the first variant; None for it
    convert_p: float | None
    outcomes: dict[str, int] = field(default_factory=dict)  # latest outcome -> conversations

    @property
    def commit_rate(self) -> float:
        return self.committed / self.reached if self.reached else 0.0

    @property
    def convert_rate(self) -> float:
        return self.converted / self.reached if self.reached else 0.0


def _moment(at: str) -> datetime:
    moment = datetime.fromisoformat(at)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def funnel(
    events: Iterable[DomainEvent],
    segment: Segment,
    steps: Sequence[str] = (),
    outcomes: Outcomes = Outcomes(),
) -> Funnel:
    """The funnel of `segment`. `steps` gives the flow's step order (steps nobody reached show
    as zeros); steps seen in the events but not listed follow in order of first appearance.
    `outcomes` says which outcomes are a success and how old `completed` events are read."""
    order: dict[str, None] = dict.fromkeys(steps)
    reached: dict[str, set[str]] = defaultdict(set)
    committed: dict[str, set[str]] = defaultdict(set)
    dropped: dict[str, set[str]] = defaultdict(set)
    reached_at: dict[tuple[str, str], datetime] = {}
    waits: dict[str, list[float]] = defaultdict(list)
    started: set[str] = set()
    completed: set[str] = set()
    final: dict[str, tuple[str, str]] = {}  # conversation -> (step, outcome)
    alerted: dict[str, datetime] = {}
    claims: list[float] = []
    for event in events:
        if not segment.matches(event):
            continue
        conv, step = event.conversation, event.step
        outcome = outcomes.read(event)
        if outcome is not None:
            final[conv] = (step, outcome)
        if event.name == "restarted":
            final.pop(conv, None)
        elif event.name == "alerted":
            alerted.setdefault(conv, _moment(event.at))
        elif event.name == "claimed" and conv in alerted:
            claims.append((_moment(event.at) - alerted.pop(conv)).total_seconds())
        if event.name == "started":
            started.add(conv)
        elif event.name == "completed":
            completed.add(conv)
        elif event.name == "step_reached":
            order.setdefault(step)
            reached[step].add(conv)
            reached_at[conv, step] = _moment(event.at)
        elif event.name == "committed" and conv not in committed[step]:
            committed[step].add(conv)
            since = reached_at.get((conv, step))
            if since is not None:
                waits[step].append((_moment(event.at) - since).total_seconds())
        elif event.name == "dropped":
            dropped[step].add(conv)
    rows = tuple(
        StepStats(
            step=step,
            reached=len(reached[step]),
            committed=len(committed[step]),
            dropped=len(dropped[step]),
            median_to_commit=_median(waits[step]),
            outcomes=outcome_counts({c: o for c, (s, o) in final.items() if s == step}),
        )
        for step in order
    )
    return Funnel(
        segment,
        rows,
        started=len(started),
        completed=len(completed),
        outcomes=outcome_counts({c: o for c, (_, o) in final.items()}),
        success=outcomes.success,
        median_to_claim=_median(claims),
    )


def _median(seconds: Sequence[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


def sources(events: Iterable[DomainEvent], flow: str, version: int | None = None) -> list[str]:
    """The sources prospects of this flow came from, sorted ("" for none)."""
    segment = Segment(flow, version)
    return sorted({e.data.get("source", "") for e in events if segment.matches(e)})


def languages(events: Iterable[DomainEvent], segment: Segment) -> list[str]:
    """The languages the segment's prospects were spoken to in, sorted ("" for a flow in one
    language: its events record none)."""
    return sorted({e.data.get("language", "") for e in events if segment.matches(e)})


def two_proportion_p(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float | None:
    """Two-sided p-value of a pooled two-proportion z-test (None when it is undefined: an
    empty group, or both groups all-hit or all-miss)."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return None
    z = (hits_a / n_a - hits_b / n_b) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def variant_stats(
    events: Iterable[DomainEvent], segment: Segment, outcomes: Outcomes = Outcomes()
) -> tuple[VariantStats, ...]:
    """Per step with A/B variants, per variant (sorted by id; the first is the baseline):
    conversion to the step's commitment and to a success outcome, each with a z-test p-value,
    and every outcome side by side."""
    got: dict[tuple[str, str], set[str]] = defaultdict(set)  # (step, variant) -> conversations
    committed: set[tuple[str, str]] = set()  # (conversation, step)
    final: dict[str, str] = {}  # conversation -> latest outcome
    for event in events:
        if not segment.matches(event):
            continue
        variant = event.data.get("variant")
        outcome = outcomes.read(event)
        if outcome is not None:
            final[event.conversation] = outcome
        if event.name == "restarted":
            final.pop(event.conversation, None)
        elif variant and event.name == "step_reached":
            got[event.step, variant].add(event.conversation)
        elif event.name == "committed":
            committed.add((event.conversation, event.step))
    by_step: dict[str, list[tuple[str, set[str], int, int]]] = defaultdict(list)
    for (step, variant), convs in sorted(got.items()):
        hits = sum((c, step) in committed for c in convs)
        wins = sum(final.get(c) in outcomes.success for c in convs)
        by_step[step].append((variant, convs, hits, wins))
    out: list[VariantStats] = []
    for step, rows in by_step.items():
        _, base, base_hits, base_wins = rows[0]
        for i, (variant, convs, hits, wins) in enumerate(rows):
            n, base_n = len(convs), len(base)
            out.append(
                VariantStats(
                    step,
                    variant,
                    reached=n,
                    committed=hits,
                    converted=wins,
                    commit_p=two_proportion_p(hits, n, base_hits, base_n) if i else None,
                    convert_p=two_proportion_p(wins, n, base_wins, base_n) if i else None,
                    outcomes=outcome_counts({c: final[c] for c in convs if c in final}),
                )
            )
    return tuple(out)


# --- reading the log -------------------------------------------------------------------------


async def read_events(
    redis: Redis, flow: str | None = None, since: datetime | None = None
) -> list[DomainEvent]:
    """Events of `flow` (None: all) whose `at` is at or after `since` (naive means UTC).

    Filters on the events' own time, not the stream ids: a moved clock (tests, `ladder chat
    --speed`) writes times the ids do not follow. So it reads the whole log, a page at a time."""
    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    return [
        event
        for event in await RedisEventLog(redis).read()
        if (flow is None or event.flow == flow) and (since is None or _moment(event.at) >= since)
    ]


# --- presenting it ---------------------------------------------------------------------------


def duration(span: timedelta | None) -> str:
    """A short human duration: 45s, 12m, 3.5h, 2.0d; "-" for none."""
    if span is None:
        return "-"
    seconds = span.total_seconds()
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def align(rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Rows as columns: the first `left` columns left-aligned, numbers right-aligned, and a
    rule under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


TABLE_HEADER = ("step", "reached", "committed", "dropped", "drop-off %", "median to commit")


def table(result: Funnel) -> str:
    """The funnel as aligned text columns, then started/completed/conversion."""
    rows = [TABLE_HEADER] + [
        (
            s.step,
            str(s.reached),
            str(s.committed),
            str(s.dropped),
            f"{100 * s.drop_off:.1f}",
            duration(s.median_to_commit),
        )
        for s in result.steps
    ]
    lines = align(rows, left=1)
    lines.append(summary(result))
    lines.append(f"outcomes: {result.outcome_text()}")
    return "\n".join(lines)


def summary(result: Funnel) -> str:
    """One line: started, completed, converted (with the success outcomes), time to claim."""
    line = (
        f"started {result.started}, completed {result.completed}, converted {result.converted} "
        f"({'/'.join(result.success)}), conversion {100 * result.conversion:.1f}%"
    )
    if result.median_to_claim is not None:
        line += f", median time to claim {duration(result.median_to_claim)}"
    return line


def p_value(value: float | None) -> str:
    """A p-value to three places ("<0.001" below that; "-" for none)."""
    if value is None:
        return "-"
    return "<0.001" if value < 0.0005 else f"{value:.3f}"


def variant_table(rows: Sequence[VariantStats]) -> str:
    """A/B results as aligned text: rates and p-values against each step's first variant."""

    p = p_value
    shown = [o for o in OUTCOME_ORDER if any(o in v.outcomes for v in rows)]
    cells = [("step", "variant", "reached", "commit %", "p", "convert %", "p", *shown)] + [
        (
            v.step,
            v.variant,
            str(v.reached),
            f"{100 * v.commit_rate:.1f}",
            p(v.commit_p),
            f"{100 * v.convert_rate:.1f}",
            p(v.convert_p),
            *(str(v.outcomes.get(o, 0)) for o in shown),
        )
        for v in rows
    ]
    return "\n".join(align(cells, left=2))


CSV_HEADER = (
    "flow",
    "version",
    "source",
    "step",
    "reached",
    "committed",
    "dropped",
    "drop_off_pct",
    "median_seconds_to_commit",
    *OUTCOME_ORDER,
)


def to_csv(result: Funnel) -> str:
    """The funnel as CSV, one row per step; version and source are "*" when not filtered. The
    outcome columns count the conversations whose outcome was set at the step."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    seg = result.segment
    for s in result.steps:
        median = s.median_to_commit
        writer.writerow(
            (
                seg.flow,
                "*" if seg.version is None else seg.version,
                "*" if seg.source is None else seg.source,
                s.step,
                s.reached,
                s.committed,
                s.dropped,
                f"{100 * s.drop_off:.1f}",
                "" if median is None else f"{median.total_seconds():.0f}",
                *(s.outcomes.get(o, 0) for o in OUTCOME_ORDER),
            )
        )
    return out.getvalue()


def chart(result: Funnel, path: Path) -> None:
    """Draw the funnel as horizontal bars (reached, committed per step) into a PNG file.

    LadderError when matplotlib (the "charts" extra) is missing or the file cannot be written."""
    try:
        import matplotlib  # noqa: PLC0415 - an optional extra ("charts"), only needed here
    except ImportError:
        raise LadderError("--chart needs matplotlib: pip install 'ladderbot[charts]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    names = [s.step for s in result.steps]
    figure, axes = pyplot.subplots(figsize=(8, 1 + 0.5 * max(len(names), 1)))
    try:
        y = list(range(len(names)))
        axes.barh(y, [s.reached for s in result.steps], color="#9ecae1", label="reached")
        axes.barh(y, [s.committed for s in result.steps], color="#3182bd", label="committed")
        axes.set_yticks(y, names)
        axes.invert_yaxis()
        axes.set_xlabel("prospects")
        axes.set_title(
            f"{result.segment.flow}: {result.converted}/{result.started} converted "
            f"({100 * result.conversion:.1f}%); {result.outcome_text()}"
        )
        axes.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(path, format="png")
    except OSError as exc:
        raise LadderError(f"cannot write the chart to {path}: {exc.strerror or exc}") from exc
    finally:
        pyplot.close(figure)


@dataclass(frozen=True)
class FlowStats:
    """What `ladder stats` and the dashboard show for one flow."""

    funnel: Funnel
    by_source: tuple[Funnel, ...]
    variants: tuple[VariantStats, ...]
    by_language: tuple[Funnel, ...] = ()

    @classmethod
    def of(
        cls,
        events: Sequence[DomainEvent],
        segment: Segment,
        order: Sequence[str],
        outcomes: Outcomes = Outcomes(),
    ) -> FlowStats:
        """Compute it from events already read; `order` is the flow's step order."""
        splits = (
            [segment.source]
            if segment.source is not None
            else sources(events, segment.flow, segment.version)
        )
        spoken = [segment.language] if segment.language is not None else languages(events, segment)
        return cls(
            funnel(events, segment, order, outcomes),
            tuple(funnel(events, replace(segment, source=s), order, outcomes) for s in splits),
            variant_stats(events, segment, outcomes),
            tuple(funnel(events, replace(segment, language=g), order, outcomes) for g in spoken),
        )

    def report(self) -> str:
        """The terminal report: the funnel table, conversion per source, A/B results."""
        seg = self.funnel.segment
        parts = [
            f"{seg.flow}  version {'all' if seg.version is None else seg.version}"
            f"  source {'all' if seg.source is None else repr(seg.source)}"
            + ("" if seg.language is None else f"  language {seg.language!r}")
            + "\n"
            + table(self.funnel),
        ]
        if len(self.by_source) > 1:
            by_source = [(f.segment.source or "(none)", f) for f in self.by_source]
            parts.append(_conversion_table("source", by_source))
        if len(self.by_language) > 1 or seg.language:
            by_language = [(f.segment.language or "(none)", f) for f in self.by_language]
            parts.append(_conversion_table("language", by_language))
        if self.variants:
            parts.append(
                "A/B variants (p: two-proportion z-test against the first variant)\n"
                + variant_table(self.variants)
            )
        return "\n\n".join(parts)


def _conversion_table(split: str, funnels: Sequence[tuple[str, Funnel]]) -> str:
    """Conversion per source or per language, as aligned text."""
    rows = [(split, "started", "completed", "converted", "conversion %")] + [
        (name, str(f.started), str(f.completed), str(f.converted), f"{100 * f.conversion:.1f}")
        for name, f in funnels
    ]
    return "\n".join(align(rows, left=1))


async def flow_stats(
    redis: Redis,
    flows: FlowRegistry,
    name: str,
    *,
    version: int | None = None,
    source: str | None = None,
    language: str | None = None,
    since: datetime | None = None,
) -> FlowStats:
    """Read the log and compute the funnel of one flow, its per-source conversion and its A/B
    results. Steps are listed in the order of the version asked for (default: the latest);
    UnknownFlow if the flow or version was never published."""
    shown = version if version is not None else await flows.latest_version(name)
    flow = (await flows.compiled(name, shown)).flow
    return FlowStats.of(
        await read_events(redis, name, since),
        Segment(name, version, source, language),
        [s.id for s in flow.steps],
        Outcomes.of(flow),
    )


# --- for Slack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TodaySummary:
    """Today's funnels (since 00:00 UTC), one per flow that had events today."""

    since: datetime
    funnels: tuple[Funnel, ...]

    def text(self) -> str:
        """Slack mrkdwn: one line per flow, then reached -> committed per step."""
        if not self.funnels:
            return f"No prospect activity since {self.since:%Y-%m-%d %H:%M} UTC."
        lines = []
        for f in self.funnels:
            lines.append(
                f"*{f.segment.flow}*: {f.started} started, {f.completed} completed, "
                f"{f.converted} converted ({100 * f.conversion:.0f}%); {f.outcome_text()}"
            )
            lines.extend(
                f"  • {s.step}: {s.reached} reached, {s.committed} committed, {s.dropped} dropped"
                for s in f.steps
            )
        return "\n".join(lines)


async def today_funnel(redis: Redis, now: datetime, flow: str | None = None) -> TodaySummary:
    """What Slack's `/ladder stats [flow]` shows: today's funnel of every flow (or one).

    `now` comes from the caller's clock (services.clock.now()); "today" starts at 00:00 UTC of
    it. Usage: `await today_funnel(services.redis, services.clock.now(), flow or None)`, then
    post `.text()`."""
    since = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    events = await read_events(redis, flow, since)
    names = sorted({e.flow for e in events})
    return TodaySummary(since, tuple(funnel(events, Segment(name)) for name in names))
