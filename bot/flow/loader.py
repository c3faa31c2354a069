"""Read a flow file: YAML text -> a validated, normalised `Flow`, or every problem found.

The YAML is composed into nodes (not constructed into Python objects) so each value keeps its
line and column, and so `yes`, `no` and `on` stay text, as a marketer means them. Structural
checks happen here while the model is built; checks over the step graph (targets, reachability,
dead ends, variables) are in `bot.flow.validate`. Any input gives a `Flow` or `FlowErrors`."""

from __future__ import annotations

import math
import re
import unicodedata
import zoneinfo
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import FlowError, FlowErrors
from bot.flow.model import (
    DEFAULT_SUCCESS,
    Alerts,
    Choice,
    Condition,
    Flow,
    FollowUp,
    Nudge,
    Pos,
    Route,
    Step,
    StepKind,
    Validator,
    Variant,
    WaitFor,
)
from bot.flow.template import BUILTIN_VARIABLES, CONVERSATION_REF_MARKER
from bot.flow.validate import (
    TextUse,
    alerts_nowhere,
    check_flow,
    infer_outcomes,
    past_webinars,
    suggest,
)
from bot.model import EventName, Outcome, ProductEvent
from bot.validators import VALIDATOR_KINDS

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_LABEL = 64  # a button's text
MAX_CALLBACK_IDS = 52  # bytes of step id + choice id in a button's callback data
MAX_SLUG = 24  # a choice id made from its label
# Bounds on every number and size a flow can give, so no file can make the loader or the bot
# build, wait or count without end (docs/flows.md, "Limits").
MAX_FLOW_CHARS = 4_000_000  # the whole file
MAX_STEPS = 10_000
MAX_NAME = 64  # step, choice, variant and commitment ids, variable names
MAX_TITLE = 256
MAX_CHANNEL = 80  # a Slack channel name
MAX_PATH = 255  # a `document` path
MAX_BUTTONS = 100  # a Telegram message's buttons: a step's choices and webinar slots together
MAX_NUDGES = 20  # follow-up messages at one step
MAX_REMINDERS = 10
MAX_VARIANTS = 20
MAX_DURATION = timedelta(days=366)  # the longest a flow waits (follow-ups, reminders, ...)
MAX_SCORE = 1_000  # lead score points of one commitment
MAX_ALERT_SCORE = 1_000_000  # alerts.score_at_least
MAX_NUMBER = 1e15  # validator bounds and `if` comparisons: whole numbers stay exact
MAX_WEIGHT = 1_000.0  # a variant's weight
SLOT_YEARS = (2000, 2999)

FLOW_NAME = re.compile(r"[a-z0-9-]{1,32}")
STEP_ID = re.compile(r"[a-z0-9_-]+")
VARIABLE = re.compile(r"[a-z][a-z0-9_]*")
_DURATION = re.compile(
    r"\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?"
    r"\s*(?:(\d+)\s*s)?\s*"
)
_QUIET_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_INTEGER = re.compile(r"[-+]?\d+")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_NULL = "tag:yaml.org,2002:null"
# libyaml composes ~10x faster than PyYAML (a 5,000-step flow: 0.2 s, not 2 s); same nodes.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KIND_ALIASES = {"question": StepKind.SURVEY}
DEFAULT_COMMITMENT = {
    StepKind.SURVEY: ("{id}_answered", 5),
    StepKind.INPUT: ("{name}_given", 10),
    StepKind.RESOURCE: ("resource_opened", 10),
    StepKind.WEBINAR: ("webinar_booked", 30),
    StepKind.TRIAL: ("trial_started", 40),
}
# Domain events the engine emits (see bot.model.DomainEvent); `alerts.on` may name these.

FLOW_KEYS = ("flow", "title", "timezone", "success", "alerts", "follow_up", "migrate", "steps")
OUTCOMES = tuple(o.value for o in Outcome)
ALERT_KEYS = ("slack_channel", "on", "score_at_least")
FOLLOW_UP_KEYS = ("after", "max", "say", "nudges", "quiet_hours", "drop_after", "stale_after")
CHOICE_KEYS = ("label", "id", "value", "go", "commit")
ROUTE_KEYS = ("if", "to")
VALIDATOR_KEYS = ("type", "min", "max", "hint")
WAIT_FOR_KEYS = ("event", "timeout", "then")
PRODUCT_EVENTS = tuple(e.value for e in ProductEvent)
VALIDATOR_TYPES = tuple(sorted(VALIDATOR_KINDS))
_WAITING = frozenset(StepKind) - {StepKind.MESSAGE, StepKind.END}
_LINKS = frozenset({StepKind.RESOURCE, StepKind.TRIAL})
# Which step kinds each step key applies to.
STEP_KEYS: dict[str, frozenset[StepKind]] = {
    "id": frozenset(StepKind),
    "kind": frozenset(StepKind),
    "say": frozenset(StepKind),
    "ask": frozenset(StepKind),
    "go": frozenset(StepKind) - {StepKind.END},
    "choices": _WAITING,
    "save_as": frozenset({StepKind.SURVEY, StepKind.INPUT, StepKind.WEBINAR}),
    "commitment": _WAITING,
    "score": _WAITING,
    "follow_up": _WAITING,
    "variants": _WAITING,
    "validate": frozenset({StepKind.INPUT}),
    "url": _LINKS,
    "button": _LINKS,
    "document": frozenset({StepKind.RESOURCE}),
    "slots": frozenset({StepKind.WEBINAR}),
    "duration": frozenset({StepKind.WEBINAR}),
    "reminders": frozenset({StepKind.WEBINAR}),
    "outcome": frozenset({StepKind.END}),
    "wait_for": _LINKS,
}
_NEEDS = {  # keys a step of each kind cannot do without
    StepKind.SURVEY: ("ask", "choices"),
    StepKind.INPUT: ("ask",),
    StepKind.RESOURCE: ("url",),
    StepKind.WEBINAR: ("ask", "slots"),
    StepKind.TRIAL: ("ask", "url"),
}


def parse_flow(text: str, file: str = "<flow>", *, require_outcomes: bool = True) -> Flow:
    """Parse and validate a flow's YAML text; FlowErrors lists every problem found.

    `require_outcomes=False` rebuilds a version published before end steps had outcomes: its
    end steps without one (that none can be inferred for) keep `outcome` None."""
    if len(text) > MAX_FLOW_CHARS:
        too_big = f"the file is over {MAX_FLOW_CHARS:,} characters: split it into several flows"
        raise FlowErrors([FlowError(too_big, file, 1, 1)])
    reader = _Reader(file)
    flow = reader.flow(text)
    if flow is not None:
        reader.errors.extend(check_flow(flow, reader.texts))
        flow, missing = infer_outcomes(flow)
        if require_outcomes:
            reader.errors.extend(missing)
    if reader.errors or flow is None:
        raise FlowErrors(sorted(reader.errors, key=lambda e: (e.line, e.col)))
    return flow


def load_flow(path: Path | str) -> Flow:
    """Read and parse a flow file; also checks that its `document` files exist."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(MAX_FLOW_CHARS + 1)  # parse_flow says when it is too much
    except IsADirectoryError:
        raise FlowErrors([FlowError("is a folder, not a flow file", str(path), 1, 1)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise FlowErrors([FlowError(f"cannot read the file: {reason}", str(path), 1, 1)]) from None
    flow = parse_flow(text, file=str(path))
    missing = [
        FlowError(
            f"step {s.id!r}: document {s.document!r} does not exist next to the flow file",
            s.pos.file,
            s.pos.line,
            s.pos.col,
        )
        for s in flow.steps
        if s.document and not (path.parent / s.document).is_file()
    ]
    if missing:
        raise FlowErrors(missing)
    return flow


def flow_paths(paths: Iterable[Path]) -> list[Path]:
    """The given paths, with each folder replaced by the *.yaml and *.yml files in it."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            found.append(path)
    return found


def validate_paths(
    paths: list[Path], default_channel: str | None = None, now: datetime | None = None
) -> tuple[int, str]:
    """`ladder validate`: (exit code, report) with one line per problem, warning or good file;
    warnings (alerts without a channel, SLACK_CHANNEL being `default_channel`; webinars whose
    slots are all before `now`) exit 0."""
    now = now or datetime.now(UTC)
    lines: list[str] = []
    names: dict[str, Path] = {}
    failed = False
    files = flow_paths(paths)
    if not files:
        return 1, "no flow files found (looked for *.yaml and *.yml)"
    for path in files:
        try:
            flow = load_flow(path)
        except FlowErrors as exc:
            failed = True
            lines.extend(str(e) for e in exc.errors)
            continue
        if flow.name in names:
            failed = True
            lines.append(f"{path}:1:1: flow name {flow.name!r} is also used by {names[flow.name]}")
            continue
        names[flow.name] = path
        lines.append(f"ok: {path} ({flow.name}, {len(flow.steps)} steps)")
        if warning := alerts_nowhere(flow, default_channel):
            lines.append(f"{path}:1:1: warning: {warning}")
        lines.extend(str(w) for w in past_webinars(flow, now))
    return (1 if failed else 0), "\n".join(lines)


def slug(label: str, fallback: str) -> str:
    """A choice id made from its label: lowercase ASCII letters, digits, '_' and '-'."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    made = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-")[:MAX_SLUG].strip("-")
    return made or fallback


def parse_duration(text: str) -> timedelta | None:
    """'30s', '15m', '24h', '2d', '1w' or combinations like '1h30m'; None if not one;
    `timedelta.max` for one too long to represent."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        return None
    if any(len(g) > 12 for g in match.groups() if g):  # int() of a huge digit string is slow
        return timedelta.max
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        return timedelta.max


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return repr(str(node.value))


def _shown(value: str) -> str:
    """A value as a problem quotes it: whole, or its start when it is long."""
    return value if len(value) <= 24 else f"{value[:20]}…"


def _step_name(node: Node, index: int) -> str:
    """How problems name a step: by its id when it has a good one, else by its number."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if (
                key.value == "id"
                and isinstance(value, ScalarNode)
                and STEP_ID.fullmatch(str(value.value))
            ):
                return f"step {value.value!r}"
    return f"step {index + 1}"


@dataclass(frozen=True)
class _Key:
    """A mapping entry: the key's node (for 'unknown key') and the value's node."""

    key: Node
    value: Node


class _Reader:
    """Builds the model from YAML nodes, collecting every problem with its position."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[FlowError] = []
        self.texts: list[TextUse] = []
        self.timezone = "UTC"

    # --- positions and problems ---------------------------------------------------------------

    def pos(self, node: Node) -> Pos:
        return Pos(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node, where: str, message: str) -> None:
        at = self.pos(node)
        text = f"{where}: {message}" if where else message
        self.errors.append(FlowError(text, self.file, at.line, at.col))

    # --- typed values -------------------------------------------------------------------------

    def fields(
        self,
        node: Node,
        where: str,
        allowed: Collection[str],
        required: Iterable[str] = (),
    ) -> dict[str, _Key] | None:
        """The entries of a mapping node; unknown, repeated and missing keys are problems."""
        if not isinstance(node, MappingNode):
            self.error(node, where, f"expected a mapping (key: value), got {_describe(node)}")
            return None
        found: dict[str, _Key] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _NULL:
                self.error(key, where, f"a key must be a word, not {_describe(key)}")
                continue
            name = str(key.value)
            if name in found:
                self.error(key, where, f"key {name!r} is given twice")
            elif name not in allowed:
                self.error(key, where, f"unknown key {name!r}{suggest(name, allowed)}")
            else:
                found[name] = _Key(key, value)
        for name in required:
            if name not in found:
                self.error(node, where, f"missing `{name}`")
        return found

    def scalar(self, node: Node, where: str, field: str, expected: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag != _NULL:
            return str(node.value)
        self.error(node, where, f"`{field}` should be {expected}, got {_describe(node)}")
        return None

    def filled(self, node: Node, where: str, field: str) -> str | None:
        """A text that is not empty (nor only spaces)."""
        value = self.scalar(node, where, field, "text")
        if value is not None and not value.strip():
            self.error(node, where, f"`{field}` is empty")
            return None
        return value

    def text(self, node: Node, where: str, field: str) -> str | None:
        """A text the bot sends: not empty, and short enough for one message."""
        value = self.filled(node, where, field)
        if value is not None and len(value) > MAX_TEXT:
            self.error(
                node, where, f"`{field}` is {len(value)} characters; Telegram allows {MAX_TEXT}"
            )
        return value

    def said(self, node: Node, where: str, field: str, step: str | None) -> str | None:
        """A text with {variables} filled in, said at `step` (None: at any step)."""
        value = self.text(node, where, field)
        if value is not None:
            self.texts.append(TextUse(step, field, value, self.pos(node), where))
        return value

    def label(self, node: Node, where: str, field: str) -> str | None:
        """A button's text: at most 64 characters."""
        value = self.filled(node, where, field)
        if value is not None and len(value) > MAX_LABEL:
            self.error(
                node,
                where,
                f"{field} {value[:20]!r}... is {len(value)} characters; a Telegram button "
                f"fits {MAX_LABEL}",
            )
        return value

    def name(
        self, node: Node, where: str, field: str, pattern: re.Pattern[str], rule: str
    ) -> str | None:
        value = self.scalar(node, where, field, "a name")
        if value is None:
            return None
        if not self.short(node, where, field, value, MAX_NAME):
            return None
        if not pattern.fullmatch(value):
            self.error(node, where, f"`{field}` {value!r} should be {rule}")
            return None
        return value

    def identifier(self, node: Node, where: str, field: str) -> str | None:
        """The id of a step, choice, variant or commitment (it goes into button data)."""
        return self.name(node, where, field, STEP_ID, "lowercase letters, digits, '_' or '-'")

    def integer(self, node: Node, where: str, field: str, least: int, most: int) -> int | None:
        value = self.scalar(node, where, field, "a whole number")
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):
            self.error(node, where, f"`{field}` should be a whole number, got {value!r}")
            return None
        return (
            int(value)
            if self.within(node, where, field, float(value), least=least, most=most)
            else None
        )

    def number(
        self,
        node: Node,
        where: str,
        field: str,
        least: float = -MAX_NUMBER,
        most: float = MAX_NUMBER,
    ) -> float | None:
        value = self.scalar(node, where, field, "a number")
        if value is None:
            return None
        if not _NUMBER.fullmatch(value) or not math.isfinite(float(value)):
            self.error(node, where, f"`{field}` should be a number, got {value!r}")
            return None
        number = float(value)
        return number if self.within(node, where, field, number, least=least, most=most) else None

    def within(
        self,
        node: Node,
        where: str,
        field: str,
        value: float,
        *,
        least: float,
        most: float,
    ) -> bool:
        """Is `value` between `least` and `most`? Else a problem that shows it as written."""
        shown = _shown(str(node.value))
        if value < least:
            self.error(node, where, f"`{field}` should be at least {least:g}, got {shown}")
            return False
        if value > most:
            self.error(node, where, f"`{field}` should be at most {most:g}, got {shown}")
            return False
        return True

    def short(self, node: Node, where: str, field: str, value: str, most: int) -> bool:
        """Is the text at most `most` characters? Else a problem."""
        if len(value) <= most:
            return True
        self.error(node, where, f"`{field}` is {len(value)} characters; at most {most} are allowed")
        return False

    def count(self, node: Node, where: str, field: str, items: list[Node], most: int) -> bool:
        """Does the list have at most `most` items? Else a problem, at the list."""
        if len(items) <= most:
            return True
        self.error(node, where, f"`{field}` has {len(items)} entries; at most {most} are allowed")
        return False

    def boolean(self, node: Node, where: str, field: str) -> bool | None:
        value = self.scalar(node, where, field, "true or false")
        if value is not None and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value is not None:
            self.error(node, where, f"`{field}` should be true or false, got {value!r}")
        return None

    def duration(self, node: Node, where: str, field: str) -> timedelta | None:
        value = self.scalar(node, where, field, "a duration like 24h")
        if value is None:
            return None
        found = parse_duration(value)
        if found is None:
            self.error(
                node,
                where,
                f"`{field}` {value!r} is not a duration: write a number with a unit, like "
                "30s, 15m, 24h, 2d, 1w or 1h30m",
            )
            return None
        if not found:
            self.error(node, where, f"`{field}` should be longer than zero")
            return None
        if found > MAX_DURATION:
            self.error(
                node,
                where,
                f"`{field}` {_shown(value)!r} is too long: durations in a flow are at most "
                f"{MAX_DURATION.days} days",
            )
            return None
        return found

    def items(self, node: Node, where: str, field: str) -> list[Node]:
        """A list's items (a single value counts as a list of one)."""
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, ScalarNode) and node.tag != _NULL:
            return [node]
        self.error(node, where, f"`{field}` should be a list, got {_describe(node)}")
        return []

    # --- the flow -----------------------------------------------------------------------------

    def flow(self, text: str) -> Flow | None:
        root = self.compose(text)
        if root is None:
            return None
        fields = self.fields(root, "", FLOW_KEYS, required=("flow", "steps"))
        if fields is None:
            return None
        name = None
        if "flow" in fields:
            name = self.name(
                fields["flow"].value,
                "",
                "flow",
                FLOW_NAME,
                "1 to 32 lowercase letters, digits or '-' (it goes into /start links)",
            )
        if "timezone" in fields:
            self.timezone = self.zone(fields["timezone"].value) or "UTC"
        title = name
        if "title" in fields:
            title = self.scalar(fields["title"].value, "", "title", "text") or name
            if title:
                self.short(fields["title"].value, "", "title", title, MAX_TITLE)
        follow_up = None
        if "follow_up" in fields:
            follow_up = self.follow_up(fields["follow_up"].value, "follow_up", None, None)
        steps: list[Step] = []
        if "steps" in fields:
            steps = self.steps(fields["steps"].value, follow_up)
        alerts = Alerts()
        if "alerts" in fields:
            alerts = self.alerts(fields["alerts"].value, steps)
        migrate: dict[str, str] = {}
        if "migrate" in fields:
            migrate = self.migrate(fields["migrate"].value, steps)
        success: tuple[Outcome, ...] = DEFAULT_SUCCESS
        if "success" in fields:
            success = self.success(fields["success"].value)
        if not steps:
            return None
        return Flow(
            name=name or "",
            title=title or name or "",
            steps=tuple(steps),
            alerts=alerts,
            follow_up=follow_up,
            timezone=self.timezone,
            migrate=migrate,
            success=success,
            source=text,
            file=self.file,
        )

    def compose(self, text: str) -> Node | None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER) or self.read_yaml(text)
        except yaml.YAMLError:  # libyaml words problems its own way: let PyYAML say it
            return self.read_yaml(text)

    def read_yaml(self, text: str) -> Node | None:
        """Compose with PyYAML itself, reporting a syntax problem with its position."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or "not valid YAML"
            self.errors.append(FlowError(f"YAML syntax: {problem}", self.file, line, col))
            return None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
            self.errors.append(
                FlowError(
                    f"YAML syntax: character U+{exc.character:04X} is not allowed",
                    self.file,
                    line,
                    col,
                )
            )
            return None
        except yaml.YAMLError as exc:
            self.errors.append(FlowError(f"YAML syntax: {exc}", self.file, 1, 1))
            return None
        except RecursionError:
            self.errors.append(FlowError("YAML nests too deeply to read", self.file, 1, 1))
            return None
        if root is None:
            self.errors.append(
                FlowError("the file is empty: a flow needs `flow:` and `steps:`", self.file, 1, 1)
            )
        return root

    def zone(self, node: Node) -> str | None:
        value = self.scalar(node, "", "timezone", "a time zone name")
        if value is None:
            return None
        if value not in _zones():
            hint = suggest(value, _zones()) or " (use a name like Europe/Berlin or UTC)"
            self.error(node, "", f"unknown time zone {value!r}{hint}")
            return None
        return value

    def alerts(self, node: Node, steps: list[Step]) -> Alerts:
        fields = self.fields(node, "alerts", ALERT_KEYS)
        if fields is None:
            return Alerts()
        channel = None
        if "slack_channel" in fields:
            channel = self.scalar(fields["slack_channel"].value, "alerts", "slack_channel", "text")
            if channel is not None:
                self.short(
                    fields["slack_channel"].value, "alerts", "slack_channel", channel, MAX_CHANNEL
                )
        on: tuple[str, ...] = Alerts().on
        if "on" in fields:
            known = (
                ({e.value for e in EventName} - {EventName.ALERTED.value})
                | {s.commitment for s in steps if s.commitment}
                | set(PRODUCT_EVENTS)
            )
            names = []
            for item in self.items(fields["on"].value, "alerts", "on"):
                value = self.scalar(item, "alerts", "on", "an event or commitment name")
                if value is None:
                    continue
                if value not in known:
                    self.error(
                        item,
                        "alerts",
                        f"{value!r} is neither an event nor a commitment of this flow"
                        f"{suggest(value, known)}",
                    )
                names.append(value)
            on = tuple(names)
        least = None
        if "score_at_least" in fields:
            least = self.integer(
                fields["score_at_least"].value, "alerts", "score_at_least", 0, MAX_ALERT_SCORE
            )
        return Alerts(slack_channel=channel, on=on, score_at_least=least)

    def outcome(self, node: Node, where: str, field: str) -> Outcome | None:
        value = self.scalar(node, where, field, "an outcome")
        if value is None:
            return None
        if value not in OUTCOMES:
            self.error(
                node,
                where,
                f"unknown outcome {value!r}{suggest(value, OUTCOMES)}; use one of "
                + ", ".join(OUTCOMES),
            )
            return None
        return Outcome(value)

    def success(self, node: Node) -> tuple[Outcome, ...]:
        """`success: [won, nurture]`: the outcomes that count as a conversion."""
        found = [self.outcome(item, "", "success") for item in self.items(node, "", "success")]
        chosen = tuple(dict.fromkeys(o for o in found if o is not None))
        if not chosen and None not in found:
            self.error(node, "", "`success` needs at least one outcome, e.g. [won]")
        return chosen or DEFAULT_SUCCESS

    def migrate(self, node: Node, steps: list[Step]) -> dict[str, str]:
        if not isinstance(node, MappingNode):
            self.error(
                node, "migrate", f"expected a mapping old-step: new-step, got {_describe(node)}"
            )
            return {}
        ids = [s.id for s in steps]
        moves: dict[str, str] = {}
        for key, value in node.value:
            old = self.scalar(key, "migrate", "old step", "a step id")
            new = self.scalar(value, "migrate", "new step", "a step id")
            if old is None or new is None:
                continue
            if old in ids:
                self.error(key, "migrate", f"{old!r} is still a step; only removed steps move")
            if new not in ids:
                self.error(
                    value,
                    "migrate",
                    f"{old!r} moves to {new!r}, which is not a step{suggest(new, ids)}",
                )
            moves[old] = new
        return moves

    # --- follow-ups ---------------------------------------------------------------------------

    def follow_up(
        self, node: Node, where: str, step: str | None, inherited: FollowUp | None
    ) -> FollowUp | None:
        """The short form (after/max/say) or the long form (nudges) -> FollowUp.

        A step's follow-up keeps the flow's quiet hours and staleness unless it sets its own;
        `follow_up: false` on a step switches follow-ups off there (a FollowUp with nothing)."""
        if isinstance(node, ScalarNode) and str(node.value).lower() == "false":
            return FollowUp(timezone=self.timezone) if step is not None else None
        fields = self.fields(node, where, FOLLOW_UP_KEYS)
        if fields is None:
            return None
        nudges = self.nudges(fields, node, where, step)
        quiet = inherited.quiet_hours if inherited else None
        if "quiet_hours" in fields:
            quiet = self.quiet_hours(fields["quiet_hours"].value, where)
        stale = inherited.stale_after if inherited else None
        if "stale_after" in fields:
            stale = self.duration(fields["stale_after"].value, where, "stale_after")
        drop = nudges[-1].after if nudges else None
        if "drop_after" in fields:
            drop = self.duration(fields["drop_after"].value, where, "drop_after")
        return FollowUp(
            nudges=tuple(nudges),
            drop_after=drop,
            quiet_hours=quiet,
            timezone=self.timezone,
            stale_after=stale,
        )

    def nudges(
        self, fields: dict[str, _Key], node: Node, where: str, step: str | None
    ) -> list[Nudge]:
        if "nudges" in fields:
            for extra in ("after", "max", "say"):
                if extra in fields:
                    self.error(
                        fields[extra].key, where, f"`{extra}` and `nudges` do not mix: use one"
                    )
            found = []
            items = self.items(fields["nudges"].value, where, "nudges")
            if isinstance(fields["nudges"].value, SequenceNode) and not items:
                self.error(fields["nudges"].value, where, "`nudges` is empty")
            if not self.count(fields["nudges"].value, where, "nudges", items, MAX_NUDGES):
                return []
            for item in items:
                nudge = self.fields(item, f"{where}: nudge", ("after", "say"), ("after", "say"))
                if nudge is None or "after" not in nudge or "say" not in nudge:
                    continue
                after = self.duration(nudge["after"].value, where, "after")
                say = self.said(nudge["say"].value, where, "say", step)
                if after is not None and say is not None:
                    found.append(Nudge(after, say))
            return found
        if "after" not in fields or "say" not in fields:
            self.error(node, where, "needs `after` and `say` (or a `nudges` list)")
            return []
        after = self.duration(fields["after"].value, where, "after")
        items = self.items(fields["say"].value, where, "say")
        if not self.count(fields["say"].value, where, "say", items, MAX_NUDGES):
            return []
        says = [text for item in items if (text := self.said(item, where, "say", step)) is not None]
        count = len(says) or 1
        if "max" in fields:
            count = self.integer(fields["max"].value, where, "max", 1, MAX_NUDGES) or 0
        if after is None or not says or not count:
            return []
        return [Nudge(after, says[i % len(says)]) for i in range(count)]

    def quiet_hours(self, node: Node, where: str) -> tuple[int, int] | None:
        value = self.scalar(node, where, "quiet_hours", 'hours like "21:00-08:00"')
        if value is None:
            return None
        match = _QUIET_HOURS.fullmatch(value)
        if match:
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and (h1, m1) != (h2, m2):
                return h1 * 60 + m1, h2 * 60 + m2
        self.error(
            node,
            where,
            f'`quiet_hours` {value!r} should be two different times like "21:00-08:00" '
            "(24-hour clock, from-to)",
        )
        return None

    # --- steps --------------------------------------------------------------------------------

    def steps(self, node: Node, follow_up: FollowUp | None) -> list[Step]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.error(node, "", f"`steps` should be a list of steps, got {_describe(node)}")
            return []
        if not self.count(node, "", "steps", node.value, MAX_STEPS):
            return []
        steps: list[Step] = []
        seen: set[str] = set()
        for index, item in enumerate(node.value):
            step = self.step(item, index, follow_up)
            if step is None:
                continue
            if step.id in seen:
                self.error(item, f"step {step.id!r}", "this id is used by an earlier step too")
                continue
            seen.add(step.id)
            steps.append(step)
        return steps

    def step(self, node: Node, index: int, follow_up: FollowUp | None) -> Step | None:
        where = _step_name(node, index)
        fields = self.fields(node, where, STEP_KEYS, required=("id",))
        if fields is None or "id" not in fields:
            return None
        step_id = self.identifier(fields["id"].value, where, "id")
        if step_id is None:
            return None
        where = f"step {step_id!r}"
        kind = self.kind(fields, where)
        for key, entry in fields.items():
            if kind not in STEP_KEYS[key]:
                kinds = _either([k for k in StepKind if k in STEP_KEYS[key]])
                hint = (
                    "" if "kind" in fields else f" (without `kind:` this is {_a(kind)} {kind} step)"
                )
                self.error(entry.key, where, f"`{key}` only applies to {kinds} steps{hint}")
        for key in _NEEDS.get(kind, ()):
            if key not in fields:
                self.error(node, where, f"{_a(kind)} {kind} step needs `{key}`")
        if kind in (StepKind.MESSAGE, StepKind.RESOURCE) and not {"say", "ask"} & set(fields):
            self.error(node, where, f"{_a(kind)} {kind} step needs `say` or `ask` (what it sends)")

        def get(key: str) -> Node | None:
            """A key's value node, if the step has the key and it applies to its kind."""
            found = fields.get(key)
            return found.value if found and kind in STEP_KEYS[key] else None

        save_as = self.save_as(get("save_as"), where)
        commitment, score = self.commitment(fields, kind, step_id, save_as, where)
        url = None
        if (url_node := get("url")) is not None:
            url = self.said(url_node, where, "url", step_id)
            if url is not None and url[:8].lower() != "https://":
                self.error(url_node, where, f"url {url!r} should start with https://")
        button = get("button")
        slots_node = get("slots")
        slots = self.slots(slots_node, where) if slots_node is not None else ()
        duration_node = get("duration")
        outcome_node = get("outcome")
        step_follow_up = None
        if (follow_node := get("follow_up")) is not None:
            step_follow_up = self.follow_up(follow_node, f"{where}: follow_up", step_id, follow_up)
        return Step(
            id=step_id,
            kind=kind,
            say=self.optional_text(get("say"), where, "say", step_id),
            ask=self.optional_text(get("ask"), where, "ask", step_id),
            choices=self.choices(get("choices"), where, step_id, kind, len(slots)),
            save_as=save_as,
            validator=self.validator(get("validate"), where) if kind == StepKind.INPUT else None,
            url=url,
            button=self.label(button, where, "button") if button is not None else None,
            document=self.document(get("document"), where),
            slots=slots,
            duration=(self.duration(duration_node, where, "duration") if duration_node else None)
            or Step.duration,
            reminders=self.reminders(get("reminders"), where),
            routes=self.routes(get("go"), where),
            commitment=commitment,
            score=score,
            follow_up=step_follow_up,
            variants=self.variants(get("variants"), where, step_id),
            outcome=self.outcome(outcome_node, where, "outcome") if outcome_node else None,
            wait_for=self.wait_for(get("wait_for"), where, url),
            pos=self.pos(fields["id"].value),
        )

    def wait_for(self, node: Node | None, where: str, url: str | None) -> WaitFor | None:
        """`wait_for: trial_started`, or `{event: trial_started, timeout: 3d, then: step}`."""
        if node is None:
            return None
        fields: dict[str, _Key] | None = {}
        if isinstance(node, MappingNode):
            fields = self.fields(node, f"{where}: wait_for", WAIT_FOR_KEYS, required=("event",))
            if fields is None or "event" not in fields:
                return None
            event_node = fields["event"].value
        else:
            event_node = node
        assert fields is not None
        value = self.scalar(event_node, where, "wait_for", "a product event")
        if value is None:
            return None
        if value not in PRODUCT_EVENTS:
            self.error(
                event_node,
                where,
                f"`wait_for` {value!r} is not a product event{suggest(value, PRODUCT_EVENTS)}; "
                "use one of " + ", ".join(PRODUCT_EVENTS),
            )
            return None
        if url is not None and CONVERSATION_REF_MARKER not in url:
            self.error(
                event_node,
                where,
                "a step that waits for the product needs {conversation_ref} in its `url`: "
                "the product names the prospect with it",
            )
        timeout = None
        if "timeout" in fields:
            timeout = self.duration(fields["timeout"].value, where, "timeout")
        then = None
        if "then" in fields:
            target = self.scalar(fields["then"].value, where, "then", "a step id")
            then = Route(target, pos=self.pos(fields["then"].value)) if target else None
        if ("timeout" in fields) != ("then" in fields):
            self.error(
                node, where, "`wait_for` needs both `timeout` and `then` (where to go after)"
            )
        return WaitFor(ProductEvent(value), timeout, then)

    def kind(self, fields: dict[str, _Key], where: str) -> StepKind:
        """The written kind, else: survey with choices, message without ask, input otherwise."""
        if "kind" in fields:
            node = fields["kind"].value
            value = self.scalar(node, where, "kind", "a step kind")
            if value is not None:
                if value in KIND_ALIASES:
                    return KIND_ALIASES[value]
                if value in StepKind.__members__.values():
                    return StepKind(value)
                options = [*(k.value for k in StepKind), *KIND_ALIASES]
                self.error(
                    node,
                    where,
                    f"unknown kind {value!r}{suggest(value, options)}; use one of "
                    + ", ".join(StepKind),
                )
        if "choices" in fields:
            return StepKind.SURVEY
        return StepKind.INPUT if "ask" in fields else StepKind.MESSAGE

    def optional_text(self, node: Node | None, where: str, field: str, step: str) -> str | None:
        return self.said(node, where, field, step) if node is not None else None

    def save_as(self, node: Node | None, where: str) -> str | None:
        if node is None:
            return None
        value = self.name(
            node,
            where,
            "save_as",
            VARIABLE,
            "a variable name: lowercase letters, digits and '_', starting with a letter",
        )
        if value in BUILTIN_VARIABLES:
            self.error(node, where, f"{value!r} is a built-in variable: save under another name")
            return None
        return value

    def commitment(
        self,
        fields: dict[str, _Key],
        kind: StepKind,
        step_id: str,
        save_as: str | None,
        where: str,
    ) -> tuple[str | None, int]:
        if kind not in DEFAULT_COMMITMENT:
            return None, 0
        pattern, score = DEFAULT_COMMITMENT[kind]
        name = pattern.format(id=step_id, name=save_as or step_id)
        if "commitment" in fields:
            name = self.identifier(fields["commitment"].value, where, "commitment") or name
        if "score" in fields:
            found = self.integer(fields["score"].value, where, "score", 0, MAX_SCORE)
            score = score if found is None else found
        return name, score

    def document(self, node: Node | None, where: str) -> str | None:
        if node is None:
            return None
        value = self.scalar(node, where, "document", "a file path")
        if value is None or not self.short(node, where, "document", value, MAX_PATH):
            return None
        if Path(value).is_absolute() or ".." in Path(value).parts or "\\" in value:
            self.error(
                node,
                where,
                f"document {value!r} should be a path inside the flow's "
                "folder, like files/checklist.pdf",
            )
            return None
        return value

    def slots(self, node: Node, where: str) -> tuple[datetime, ...]:
        slots: list[datetime] = []
        items = self.items(node, where, "slots")
        if not self.count(node, where, "slots", items, MAX_BUTTONS):
            return ()
        for item in items:
            value = self.scalar(item, where, "slots", "a date and time")
            if value is None:
                continue
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                self.error(
                    item,
                    where,
                    f"slot {value!r} is not a date and time like 2027-03-04T16:00:00+01:00",
                )
                continue
            if moment.utcoffset() is None:
                self.error(
                    item,
                    where,
                    f"slot {value!r} has no time zone: add one, like {value.strip()}+01:00",
                )
                continue
            if not SLOT_YEARS[0] <= moment.year <= SLOT_YEARS[1]:
                self.error(
                    item,
                    where,
                    f"slot {value!r} should be in the years {SLOT_YEARS[0]} to {SLOT_YEARS[1]}",
                )
                continue
            if moment in slots:
                self.error(item, where, f"slot {value!r} is listed twice")
                continue
            slots.append(moment)
        if not slots and isinstance(node, SequenceNode) and not node.value:
            self.error(node, where, "`slots` is empty: a webinar step needs at least one")
        return tuple(slots)

    def reminders(self, node: Node | None, where: str) -> tuple[timedelta, ...]:
        if node is None:
            return ()
        items = self.items(node, where, "reminders")
        if not self.count(node, where, "reminders", items, MAX_REMINDERS):
            return ()
        found = (self.duration(item, where, "reminders") for item in items)
        return tuple(sorted({d for d in found if d is not None}, reverse=True))

    def validator(self, node: Node | None, where: str) -> Validator:
        if node is None:
            return Validator()
        if isinstance(node, ScalarNode):
            kind = self.validator_type(node, where)
            return Validator(kind=kind or "text")
        fields = self.fields(node, f"{where}: validate", VALIDATOR_KEYS, required=("type",))
        if fields is None or "type" not in fields:
            return Validator()
        kind = self.validator_type(fields["type"].value, where) or "text"
        bounds: dict[str, float | None] = {"min": None, "max": None}
        for key in bounds:
            if key not in fields:
                continue
            if kind not in ("number", "text"):
                self.error(fields[key].key, where, f"`{key}` only applies to number and text")
                continue
            found = self.number(fields[key].value, where, key)
            if kind == "text" and found is not None and (found < 0 or not found.is_integer()):
                self.error(
                    fields[key].value,
                    where,
                    f"`{key}` of a text is a length: a whole number of characters, 0 or more",
                )
                continue
            if kind == "text" and found is not None and found > MAX_TEXT:
                self.error(
                    fields[key].value,
                    where,
                    f"`{key}` of a text should be at most {MAX_TEXT} (Telegram's longest message)",
                )
                continue
            bounds[key] = found
        low, high = bounds["min"], bounds["max"]
        if low is not None and high is not None and low > high:
            self.error(fields["min"].value, where, f"`min` ({low:g}) is more than `max` ({high:g})")
        hint = None
        if "hint" in fields:
            hint = self.text(fields["hint"].value, where, "hint")
        return Validator(kind=kind, min=low, max=high, hint=hint)

    def validator_type(self, node: Node, where: str) -> str | None:
        value = self.scalar(node, where, "validate", "a validator name")
        if value is not None and value not in VALIDATOR_TYPES:
            self.error(
                node,
                where,
                f"unknown validator {value!r}{suggest(value, VALIDATOR_TYPES)}; use one of "
                + ", ".join(VALIDATOR_TYPES),
            )
            return None
        return value

    def variants(self, node: Node | None, where: str, step_id: str) -> tuple[Variant, ...]:
        if node is None:
            return ()
        variants: list[Variant] = []
        items = self.items(node, where, "variants")
        if not self.count(node, where, "variants", items, MAX_VARIANTS):
            return ()
        for item in items:
            fields = self.fields(
                item, f"{where}: variant", ("id", "ask", "weight"), required=("id", "ask")
            )
            if fields is None or "id" not in fields or "ask" not in fields:
                continue
            variant_id = self.identifier(fields["id"].value, where, "id")
            ask = self.said(fields["ask"].value, where, "ask", step_id)
            weight = 1.0
            if "weight" in fields:
                given = self.number(fields["weight"].value, where, "weight", most=MAX_WEIGHT)
                weight = given or 0.0
                if given is not None and given <= 0:
                    self.error(fields["weight"].value, where, "`weight` should be above zero")
            if variant_id is None or ask is None:
                continue
            if any(v.id == variant_id for v in variants):
                self.error(fields["id"].value, where, f"variant id {variant_id!r} is used twice")
                continue
            variants.append(Variant(variant_id, ask, weight))
        return tuple(variants)

    # --- choices and routes -------------------------------------------------------------------

    def choices(
        self, node: Node | None, where: str, step_id: str, kind: StepKind, slots: int
    ) -> tuple[Choice, ...]:
        """Buttons; on input, resource, trial and webinar steps they are extra ways on (like
        "Skip"), which record no commitment."""
        if node is None:
            return ()
        extra = kind != StepKind.SURVEY
        if (
            kind == StepKind.WEBINAR
            and slots
            and len(step_id) + len(f"slot{slots - 1}") > (MAX_CALLBACK_IDS)
        ):
            self.error(
                node,
                where,
                f"step id is too long for its slot buttons: keep it under "
                f"{MAX_CALLBACK_IDS - len(f'slot{slots - 1}')} characters",
            )
        items = self.items(node, where, "choices")
        if isinstance(node, SequenceNode) and not items:
            self.error(node, where, "`choices` is empty")
        if len(items) + slots > MAX_BUTTONS:
            made = f"`choices` ({len(items)})" + (f" and `slots` ({slots})" if slots else "")
            self.error(
                node,
                where,
                f"{made} make too many buttons: a Telegram message holds at most {MAX_BUTTONS}",
            )
        choices: list[Choice] = []
        labels: set[str] = set()
        ids: set[str] = set()
        for index, item in enumerate(items):
            choice = self.choice(item, where, step_id, index, extra)
            if choice is None:
                continue
            if kind == StepKind.WEBINAR and choice.id.startswith("slot"):
                self.error(
                    item,
                    where,
                    f"choice id {choice.id!r}: ids starting with 'slot' are "
                    "kept for the webinar's slots",
                )
                continue
            label = choice.label.strip().casefold()
            if label in labels:
                self.error(item, where, f"choice {choice.label!r} is listed twice in this step")
                continue
            if choice.id in ids:
                self.error(
                    item,
                    where,
                    f"choice id {choice.id!r} is used twice in this step (give one an `id`)",
                )
                continue
            labels.add(label)
            ids.add(choice.id)
            choices.append(choice)
        return tuple(choices)

    def choice(
        self, node: Node, where: str, step_id: str, index: int, extra: bool
    ) -> Choice | None:
        if isinstance(node, ScalarNode):
            label = self.label(node, where, "choice")
            if label is None:
                return None
            made = slug(label, f"c{index + 1}")
            self.callback_fits(node, where, step_id, made)
            return Choice(made, label, label, commits=not extra, pos=self.pos(node))
        fields = self.fields(node, f"{where}: choice", CHOICE_KEYS, required=("label",))
        if fields is None or "label" not in fields:
            return None
        label = self.label(fields["label"].value, where, "label")
        if label is None:
            return None
        choice_id: str | None = slug(label, f"c{index + 1}")
        if "id" in fields:
            choice_id = self.identifier(fields["id"].value, where, "choice id")
        value = label
        if "value" in fields:
            value = self.scalar(fields["value"].value, where, "value", "text") or label
            self.short(fields["value"].value, where, "value", value, MAX_TEXT)
        commits = not extra
        if "commit" in fields:
            said = self.boolean(fields["commit"].value, where, "commit")
            if said and extra:
                self.error(
                    fields["commit"].value,
                    where,
                    f"choice {label!r}: buttons on this "
                    'kind of step are extra ways on (like "Skip") and record no '
                    "commitment; remove `commit: true`",
                )
            elif said is not None:
                commits = said
        routes = self.routes(fields["go"].value, where) if "go" in fields else ()
        if choice_id is None:
            return None
        self.callback_fits(fields.get("id", fields["label"]).value, where, step_id, choice_id)
        return Choice(choice_id, label, value, routes, commits, pos=self.pos(node))

    def callback_fits(self, node: Node, where: str, step_id: str, choice_id: str) -> None:
        used = len(step_id.encode()) + len(choice_id.encode())
        if used > MAX_CALLBACK_IDS:
            self.error(
                node,
                where,
                f"step id + choice id {choice_id!r} are {used} bytes; a "
                f"Telegram button fits {MAX_CALLBACK_IDS} (shorten one, or set the "
                "choice's `id`)",
            )

    def routes(self, node: Node | None, where: str) -> tuple[Route, ...]:
        """`go: step` or a conditional list `[{if: {...}, to: step}, ..., {to: step}]`."""
        if node is None:
            return ()
        if isinstance(node, ScalarNode) and node.tag != _NULL:
            return (Route(to=str(node.value), pos=self.pos(node)),)
        if not isinstance(node, SequenceNode) or not node.value:
            got = "an empty list" if isinstance(node, SequenceNode) else _describe(node)
            self.error(
                node,
                where,
                f"`go` should be a step id or a list of {{if, to}}, got {got}",
            )
            return ()
        routes: list[Route] = []
        for item in node.value:
            fields = self.fields(item, f"{where}: go", ROUTE_KEYS, required=("to",))
            if fields is None or "to" not in fields:
                continue
            target = self.scalar(fields["to"].value, where, "to", "a step id")
            conditions = self.conditions(fields["if"].value, where) if "if" in fields else ()
            if target is not None and conditions is not None:
                routes.append(Route(target, conditions, self.pos(fields["to"].value)))
        return tuple(routes)

    def conditions(self, node: Node, where: str) -> tuple[Condition, ...] | None:
        """`{var: value}` (equals), `{var: [a, b]}` (one of), `{var: {gte: 50}}` (compare),
        `{var: {set: true}}` (answered); several entries must all hold."""
        if not isinstance(node, MappingNode) or not node.value:
            self.error(
                node,
                where,
                f"`if` should be a mapping like {{role: Founder}}, got {_describe(node)}",
            )
            return None
        found: list[Condition] = []
        for key, value in node.value:
            var = self.scalar(key, where, "if", "a variable name")
            if var is None:
                return None
            if isinstance(value, SequenceNode):
                options = [self.scalar(v, where, var, "text") for v in value.value]
                if not options or None in options:
                    self.error(value, where, f"`{var}`: list the values it may be")
                    return None
                found.append(Condition(var, "in", tuple(o for o in options if o is not None)))
            elif isinstance(value, MappingNode):
                if not value.value:
                    self.error(value, where, f"`{var}`: say how to compare, like {{gte: 50}}")
                    return None
                tests = self.fields(value, f"{where}: if {var}", ("gt", "gte", "lt", "lte", "set"))
                if not tests:
                    return None
                for op, entry in tests.items():
                    bound = (
                        self.boolean(entry.value, where, op)
                        if op == "set"
                        else self.number(entry.value, where, op)
                    )
                    if bound is None:
                        return None
                    found.append(Condition(var, op, bound))
            else:
                said = self.scalar(value, where, var, "a value")
                if said is None:
                    return None
                found.append(Condition(var, "eq", said))
        return tuple(found)
