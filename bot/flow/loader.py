"""Read a flow file: YAML text -> a validated, normalised `Flow`, or every problem found.

The YAML is composed into nodes (not constructed into Python objects) so each value keeps its
line and column, and so `yes`, `no` and `on` stay text, as a marketer means them. The flow's
keys are read here; the keys steps share in `bot.flow.steps`; each kind's own keys by its
module in `bot.kinds`, which also says which keys a kind takes and needs. Checks over the step
graph (targets, reachability, dead ends, variables) are in `bot.flow.validate`. Any input gives
a `Flow` or `FlowErrors`."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.flow.grammar import (
    ALERT_KEYS,
    FLOW_KEYS,
    FLOW_NAME,
    FLOW_REQUIRED,
    MAX_ALERT_SCORE,
    MAX_CHANNEL,
    MAX_FLOW_CHARS,
    MAX_STEPS,
    MAX_TITLE,
    STEP_ID,
    STEP_KEYS,
)
from bot.flow.model import DEFAULT_SUCCESS, Alerts, Flow, FollowUp, Step, StepKind, Translation
from bot.flow.nodes import Key, describe, suggest
from bot.flow.steps import StepReader
from bot.flow.translations import Translator
from bot.flow.validate import alerts_nowhere, check_flow, infer_outcomes, kind_warnings
from bot.kinds import KIND_WORDS, KINDS
from bot.texts import DEFAULT_LANGUAGE
from domain.errors import FlowError, FlowErrors
from domain.model import EventName, Outcome, ProductEvent

# libyaml composes ~10x faster than PyYAML (a 5,000-step flow: 0.2 s, not 2 s); same nodes.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Every key a step can have (the shared ones, then each kind's own), and the kinds taking it.
KEY_KINDS: dict[str, frozenset[StepKind]] = {
    key: frozenset(k.name for k in KINDS.values() if key in k.keys)
    for key in dict.fromkeys([*STEP_KEYS, *(key for k in KINDS.values() for key in k.own)])
}
_IMPLIED = [(k.implied_by, k.name) for k in KINDS.values() if k.implied_by is not None]


def parse_flow(text: str, file: str = "<flow>", *, require_outcomes: bool = True) -> Flow:
    """Parse and validate a flow's YAML text; FlowErrors lists every problem found.

    `require_outcomes=False` rebuilds a version published before end steps had outcomes: its
    end steps without one (that none can be inferred for) keep `outcome` None."""
    if len(text) > MAX_FLOW_CHARS:
        too_big = f"the file is over {MAX_FLOW_CHARS:,} characters: split it into several flows"
        raise FlowErrors([FlowError(too_big, file, 1, 1)])
    reader = _FlowReader(file)
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
    """Read and parse a flow file; also checks that its `document` and `media` files exist."""
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
    missing += [
        FlowError(
            f"step {s.id!r}: media {s.media.source!r} does not exist in the flows folder",
            s.media.pos.file,
            s.media.pos.line,
            s.media.pos.col,
        )
        for s in flow.steps
        if s.media and not s.media.is_url and not (path.parent / s.media.source).is_file()
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
        lines.extend(str(w) for w in kind_warnings(flow, now))
    return (1 if failed else 0), "\n".join(lines)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


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


class _FlowReader(StepReader):
    """Builds the model from YAML nodes, collecting every problem with its position."""

    # --- the flow -----------------------------------------------------------------------------

    def flow(self, text: str) -> Flow | None:
        root = self.compose(text)
        if root is None:
            return None
        fields = self.fields(root, "", FLOW_KEYS, required=FLOW_REQUIRED)
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
        default, translations = self.languages(fields, steps, follow_up)
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
            default_language=default,
            translations=translations,
        )

    def languages(
        self, fields: dict[str, Key], steps: list[Step], follow_up: FollowUp | None
    ) -> tuple[str, dict[str, Translation]]:
        """The default language and a translation for each other language of `languages:`."""
        default = DEFAULT_LANGUAGE
        translator = Translator(self, steps, default)
        if "default_language" in fields:
            written = fields["default_language"].value
            default = translator.language(written, "", "default_language") or default
            translator.default = default
        languages = translator.languages(fields["languages"].value) if "languages" in fields else {}
        if "languages" in fields and "default_language" not in fields and languages:
            self.error(
                fields["languages"].value,
                "",
                "`languages` needs `default_language`: the language the steps are written in",
            )
        given = fields.get("translations")
        if given is not None and "languages" not in fields:
            self.error(given.key, "", "`translations` needs `languages: [...]` to list them")
        if not languages:
            return default, {}
        return default, translator.read(languages, given.value if given else None, follow_up)

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
                | {e.value for e in ProductEvent}
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
                node, "migrate", f"expected a mapping old-step: new-step, got {describe(node)}"
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

    # --- steps --------------------------------------------------------------------------------

    def steps(self, node: Node, follow_up: FollowUp | None) -> list[Step]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.error(node, "", f"`steps` should be a list of steps, got {describe(node)}")
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
        fields = self.fields(node, where, KEY_KINDS, required=("id",))
        if fields is None or "id" not in fields:
            return None
        step_id = self.identifier(fields["id"].value, where, "id")
        if step_id is None:
            return None
        where = f"step {step_id!r}"
        name = self.kind(fields, where)
        kind = KINDS[name]
        for key, entry in fields.items():
            if key not in kind.keys:
                kinds = _either([k for k in KINDS if k in KEY_KINDS[key]])
                hint = (
                    "" if "kind" in fields else f" (without `kind:` this is {_a(name)} {name} step)"
                )
                self.error(entry.key, where, f"`{key}` only applies to {kinds} steps{hint}")
        for key in kind.needs:
            if key not in fields:
                self.error(node, where, f"{_a(name)} {name} step needs `{key}`")
        if kind.needs_text and not {"say", "ask"} & set(fields):
            self.error(node, where, f"{_a(name)} {name} step needs `say` or `ask` (what it sends)")

        def get(key: str) -> Node | None:
            """A key's value node, if the step has the key and its kind takes it."""
            found = fields.get(key)
            return found.value if found and key in kind.keys else None

        own: dict[str, Any] = kind.read(self, get, where, step_id)
        save_as = self.save_as(get("save_as"), where)
        commitment, score = self.commitment(fields, kind.commitment, step_id, save_as, where)
        step_follow_up = None
        if (follow_node := get("follow_up")) is not None:
            step_follow_up = self.follow_up(follow_node, f"{where}: follow_up", step_id, follow_up)
        step = Step(
            id=step_id,
            kind=name,
            say=self.optional_text(get("say"), where, "say", step_id),
            ask=self.optional_text(get("ask"), where, "ask", step_id),
            choices=self.choices(
                get("choices"), where, step_id, kind.extra_buttons, kind.buttons_made(own)
            ),
            save_as=save_as,
            routes=self.routes(get("go"), where),
            commitment=commitment,
            score=score,
            follow_up=step_follow_up,
            variants=self.variants(get("variants"), where, step_id),
            media=self.media(get("media"), where, step_id),
            pos=self.pos(fields["id"].value),
            **own,
        )
        return kind.refine(self, step, get, where)

    def kind(self, fields: dict[str, Key], where: str) -> StepKind:
        """The written kind, else the first kind implied by a key the step has (survey with
        choices, input with an ask, else message)."""
        if "kind" in fields:
            node = fields["kind"].value
            value = self.scalar(node, where, "kind", "a step kind")
            if value is not None:
                if value in KIND_WORDS:
                    return KIND_WORDS[value]
                self.error(
                    node,
                    where,
                    f"unknown kind {value!r}{suggest(value, KIND_WORDS)}; use one of "
                    + ", ".join(KINDS),
                )
        return next(name for key, name in _IMPLIED if not key or key in fields)
