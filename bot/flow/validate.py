"""Checks over a flow's step graph, once its steps are built: unknown `go` targets, conditional
`go` lists with no fallback, dead ends, unreachable steps, loops of message steps, runs of more
message steps than the engine passes through in one turn, and {variables} that are not built in
or not saved on every path to the step that says them. Each check is linear in the size of the
graph (times a bit set of the saved answers), so a flow of thousands of steps validates at once.

`exits` and `ways` describe how a prospect leaves each step; `bot.flow.graph` draws them."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.flow.compile import step_routes
from bot.flow.model import MAX_MESSAGES_IN_A_ROW, Condition, Flow, Op, Pos, Route, Step
from bot.flow.nodes import TextUse, suggest
from bot.flow.template import BUILTIN_VARIABLES, CONVERSATION_REF, variables
from bot.kinds import KINDS
from domain.errors import FlowError
from domain.model import Outcome

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TIMED_OUT = "timed out"  # the way on from a step whose `wait_for` timed out


@dataclass(frozen=True)
class Exit:
    """One way out of a step (a button, a typed answer, a click) and the answers it saves."""

    label: str  # the choice's label; for the step's own way on: answered, opened, booked or ""
    routes: tuple[Route, ...]
    saves: frozenset[str]
    shared: bool = False  # a choice without its own `go`: it takes the step's way on


@dataclass(frozen=True)
class Way:
    """An edge of the step graph."""

    source: str
    to: str
    label: str
    when: tuple[Condition, ...]
    saves: frozenset[str]  # answers certainly saved when the prospect goes this way
    shared: bool = False  # from a choice that takes the step's way on


def exits(flow: Flow, step: Step) -> list[Exit]:
    """Every way out of `step`; a choice without its own `go` takes the step's way on."""
    kind = KINDS[step.kind]
    if kind.ends:
        return []
    own = step_routes(flow, step)
    saves = frozenset({step.save_as} if step.save_as else ())
    found = []
    if kind.answer is not None:  # the step's own way on, other than by a button
        label = step.wait_for.event.value if step.wait_for else kind.answer
        found.append(Exit(label, own, kind.saves(step)))
    if step.wait_for and step.wait_for.then:
        found.append(Exit(TIMED_OUT, (step.wait_for.then,), frozenset()))
    found.extend(Exit(c.label, c.routes or own, saves, not c.routes) for c in step.choices)
    return found


def ways(flow: Flow, step: Step) -> list[Way]:
    """The edges out of `step`, one per exit and route; a condition that needs an answer
    (anything but `set: false`) tells us that answer is saved along the way."""
    return [
        Way(
            step.id,
            route.to,
            exit_.label,
            route.when,
            exit_.saves | _asserted(route.when),
            exit_.shared,
        )
        for exit_ in exits(flow, step)
        for route in exit_.routes
    ]


def saved_variables(flow: Flow) -> frozenset[str]:
    """Every answer some step saves."""
    saved = {s.save_as for s in flow.steps if s.save_as}
    return frozenset(saved.union(*(KINDS[s.kind].saves(s) for s in flow.steps)))


def check_flow(flow: Flow, texts: Sequence[TextUse]) -> list[FlowError]:
    """Every problem of the step graph and of the texts' variables."""
    checker = _Checker(flow)
    checker.targets()
    checker.dead_ends()
    checker.unreachable()
    checker.message_runs()
    checker.conditions()
    for use in texts:
        checker.text(use)
    return checker.errors


def kind_warnings(flow: Flow, now: datetime) -> list[FlowError]:
    """What each step's kind warns of at `now` (e.g. a webinar whose slots are all past)."""
    return [w for step in flow.steps for w in KINDS[step.kind].warnings(step, now)]


def infer_outcomes(flow: Flow) -> tuple[Flow, list[FlowError]]:
    """Fill in the outcome of end steps that do not declare one, where it can be told honestly:
    a step reached only by "not now" buttons (`commit: false`) is `declined`; the flow's only
    end step is `won`. Every other end step without `outcome:` is an error."""
    ends = [s for s in flow.steps if KINDS[s.kind].ends]
    steps, errors = list(flow.steps), []
    for i, step in enumerate(flow.steps):
        if not KINDS[step.kind].ends or step.outcome is not None:
            continue
        commits = _commits_on_the_way(flow, step.id)
        if commits and not any(commits):
            steps[i] = replace(step, outcome=Outcome.DECLINED)
        elif len(ends) == 1:
            steps[i] = replace(step, outcome=Outcome.WON)
        else:
            errors.append(
                FlowError(
                    f"step {step.id!r} ends the flow: say what reaching it means with "
                    f"`outcome:` ({', '.join(Outcome)})",
                    step.pos.file,
                    step.pos.line,
                    step.pos.col,
                )
            )
    if steps == list(flow.steps):
        return flow, errors
    return replace(flow, steps=tuple(steps)), errors


def _commits_on_the_way(flow: Flow, target: str) -> list[bool]:
    """For each way into `target`: does the prospect say yes to something on it? (A message
    step passing the prospect on counts as yes: only a `commit: false` button is a no.)"""
    found: list[bool] = []
    for step in flow.steps:
        kind = KINDS[step.kind]
        own = step_routes(flow, step) if not kind.ends else ()
        if kind.answer is not None:
            found.extend(True for r in own if r.to == target)
        for choice in step.choices:
            found.extend(choice.commits for r in choice.routes or own if r.to == target)
    return found


def _asserted(when: tuple[Condition, ...]) -> frozenset[str]:
    return frozenset(c.var for c in when if not (c.op == Op.SET and c.value is False))


class _Checker:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.errors: list[FlowError] = []
        self.ways = {s.id: [w for w in ways(flow, s) if w.to in flow.by_id] for s in flow.steps}
        # the steps reachable from the first, each before the steps it leads to (loops aside)
        self.order = _reverse_postorder(
            flow.first.id, {sid: [w.to for w in ws] for sid, ws in self.ways.items()}
        )
        self.reachable = set(self.order)
        self.saved = saved_variables(flow)
        self.bits = {name: i for i, name in enumerate(sorted(self.saved))}
        self.defined = self._must_be_saved()

    def error(self, pos: Pos, message: str) -> None:
        self.errors.append(FlowError(message, pos.file, pos.line, pos.col))

    def _routes(self) -> Iterable[tuple[Step, tuple[Route, ...]]]:
        for step in self.flow.steps:
            yield step, step.routes
            if step.wait_for and step.wait_for.then:
                yield step, (step.wait_for.then,)
            for choice in step.choices:
                yield step, choice.routes

    def targets(self) -> None:
        ids = self.flow.by_id
        for step, routes in self._routes():
            for route in routes:
                if route.to not in ids:
                    self.error(
                        route.pos,
                        f"step {step.id!r}: go target {route.to!r} is not a step"
                        f"{suggest(route.to, ids)}",
                    )
            if routes and all(r.when for r in routes):
                self.error(
                    routes[-1].pos,
                    f"step {step.id!r}: every `go` entry has an `if`, so a prospect matching "
                    "none is stuck: end the list with a plain `- to: <step>`",
                )

    def dead_ends(self) -> None:
        for step in self.flow.steps:
            if any(not e.routes for e in exits(self.flow, step)):
                self.error(
                    step.pos,
                    f"step {step.id!r} is a dead end: it is not an `end` step and nothing "
                    "follows it (add `go:`, or an end step after it)",
                )

    def unreachable(self) -> None:
        first = self.flow.first.id
        for step in self.flow.steps:
            if step.id not in self.reachable:
                self.error(
                    step.pos,
                    f"step {step.id!r} is unreachable: no choice or go leads to it from {first!r}",
                )

    def message_runs(self) -> None:
        """Message steps that lead back to themselves without a waiting step would make the
        bot talk forever; a run of more than MAX_MESSAGES_IN_A_ROW of them is more than the
        engine says in one turn."""
        talking = {s.id for s in self.flow.steps if KINDS[s.kind].passes_on}
        following = {
            sid: list(dict.fromkeys(w.to for w in self.ways[sid] if w.to in talking))
            for sid in talking
        }
        order = {s.id: i for i, s in enumerate(self.flow.steps)}
        groups = _strongly_connected(sorted(talking, key=order.__getitem__), following)
        looping: set[str] = set()
        longest: dict[str, int] = {}  # message steps in the longest run starting here
        onward: dict[str, str] = {}  # the next step of that run
        for group in groups:  # each group comes after every group it leads to
            head = group[0]
            if len(group) > 1 or head in following[head]:
                looping.update(group)
                self.loop(sorted(group, key=order.__getitem__))
                continue
            best = 0
            for to in following[head]:
                if to not in looping and longest[to] > best:
                    best, onward[head] = longest[to], to
            longest[head] = best + 1
        too_long = {sid for sid, n in longest.items() if n > MAX_MESSAGES_IN_A_ROW}
        inside = {to for sid in too_long for to in following[sid]}
        for sid in sorted(too_long - inside, key=order.__getitem__):
            run = [sid]
            while run[-1] in onward:
                run.append(onward[run[-1]])
            shown = f"{run[0]!r} → {run[1]!r} → … → {run[-1]!r}"
            self.error(
                self.flow.step(sid).pos,
                f"{len(run)} message steps in a row ({shown}): the bot says at most "
                f"{MAX_MESSAGES_IN_A_ROW} messages before it waits for the prospect (ask "
                "something on the way, or say more in fewer messages)",
            )

    def loop(self, loop: list[str]) -> None:
        names = ", ".join(repr(sid) for sid in loop)
        what, verb = ("message step", "loops") if len(loop) == 1 else ("message steps", "loop")
        self.error(
            self.flow.step(loop[0]).pos,
            f"{what} {names} {verb} forever: none of them waits for the prospect "
            "(ask something on the way, or `go` elsewhere)",
        )

    def conditions(self) -> None:
        for step, routes in self._routes():
            for route in routes:
                for condition in route.when:
                    if condition.var not in self.saved:
                        self.error(
                            route.pos,
                            f"step {step.id!r}: `if` tests {condition.var!r}, which no step "
                            f"saves{suggest(condition.var, self.saved)}",
                        )

    def text(self, use: TextUse) -> None:
        where = f"{use.where}: " if use.where else ""
        try:
            names = list(dict.fromkeys(variables(use.text)))
        except ValueError:
            self.error(
                use.pos,
                f"{where}`{use.field}` has an unbalanced {{ or }} (write {{{{ or }}}} for a "
                "brace itself)",
            )
            return
        for name in names:
            if not _NAME.fullmatch(name):
                self.error(use.pos, f"{where}`{use.field}` has {{{name}}}, not a variable name")
            elif name in BUILTIN_VARIABLES:
                continue
            elif name == CONVERSATION_REF:
                if use.field != "url":
                    self.error(
                        use.pos,
                        f"{where}`{use.field}` uses {{{name}}}, which only a link step's `url` "
                        "can carry (the product hands it back in POST /api/events)",
                    )
            elif name not in self.saved:
                known = BUILTIN_VARIABLES | self.saved
                self.error(
                    use.pos,
                    f"{where}`{use.field}` uses {{{name}}}, which is not built in and no step "
                    f"saves{suggest(name, known)}",
                )
            else:
                self.saved_before(use, name, where)

    def saved_before(self, use: TextUse, name: str, where: str) -> None:
        """`name` must be saved on every path to where the text is said."""
        if use.step is not None:
            places = [use.step]
        else:  # the flow's follow-up: said at every waiting step without its own
            places = [s.id for s in self.flow.steps if KINDS[s.kind].waits and s.follow_up is None]
        for place in places:
            if place in self.reachable and not self.defined[place] >> self.bits[name] & 1:
                path = self._path_without(name, place)
                example = f"e.g. {' → '.join(path)}" if len(path) > 1 else "the first step"
                self.error(
                    use.pos,
                    f"{where}`{use.field}` uses {{{name}}}, which may not be saved yet at step "
                    f"{place!r} ({example})",
                )
                return

    # --- graph helpers ------------------------------------------------------------------------

    def _must_be_saved(self) -> dict[str, int]:
        """For each reachable step: the answers saved on every path from the first step to it,
        as a bit set over `self.bits` (a forward must-be-defined dataflow, iterated in
        reverse postorder until nothing changes: one pass and a check for a flow without loops).
        """
        first = self.flow.first.id
        everything = (1 << len(self.bits)) - 1
        defined = dict.fromkeys(self.order, everything)
        defined[first] = 0
        edges = [
            (source, [(w.to, self._mask(w.saves)) for w in self.ways[source] if w.to != first])
            for source in self.order
        ]
        changed = True
        while changed:
            changed = False
            for source, out in edges:
                known = defined[source]
                for to, saves in out:
                    narrowed = defined[to] & (known | saves)
                    if narrowed != defined[to]:
                        defined[to] = narrowed
                        changed = True
        return defined

    def _mask(self, names: Iterable[str]) -> int:
        mask = 0
        for name in names:
            if name in self.bits:
                mask |= 1 << self.bits[name]
        return mask

    def _path_without(self, name: str, target: str) -> list[str]:
        """A path from the first step to `target` along which `name` is never saved."""
        first = self.flow.first.id
        came_from: dict[str, str | None] = {first: None}
        queue = deque([first])
        while queue and target not in came_from:
            source = queue.popleft()
            for way in self.ways[source]:
                if name not in way.saves and way.to not in came_from:
                    came_from[way.to] = source
                    queue.append(way.to)
        path: list[str] = []
        at: str | None = target if target in came_from else None
        while at is not None:
            path.append(at)
            at = came_from[at]
        return path[::-1] or [first, target]


def alerts_nowhere(flow: Flow, default_channel: str | None) -> str | None:
    """The warning for a flow that raises alerts without a Slack channel to post them to (the
    Slack app would dead-letter each one); None when they have a channel (or there are none)."""
    if not flow.alerts.on or flow.alerts.slack_channel or default_channel:
        return None
    return (
        f"flow {flow.name!r} alerts nowhere: it has no alerts.slack_channel and SLACK_CHANNEL "
        "is not set, so the Slack app cannot post its alerts"
    )


def _reverse_postorder(start: str, following: dict[str, list[str]]) -> list[str]:
    """The steps reachable from `start`, each before the steps it leads to (loops aside)."""
    seen = {start}
    done: list[str] = []
    stack = [(start, iter(following[start]))]
    while stack:
        node, rest = stack[-1]
        for to in rest:
            if to not in seen:
                seen.add(to)
                stack.append((to, iter(following[to])))
                break
        else:
            stack.pop()
            done.append(node)
    return done[::-1]


def _strongly_connected(nodes: list[str], following: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively; each component comes after every
    component it leads to."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(following[root]))]
        while work:
            node, rest = work[-1]
            for to in rest:
                if to not in index:
                    index[to] = low[to] = len(index)
                    stack.append(to)
                    on_stack.add(to)
                    work.append((to, iter(following[to])))
                    break
                if to in on_stack:
                    low[node] = min(low[node], index[to])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(group)
    return groups
