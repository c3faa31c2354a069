"""Compile a validated flow into a `transitions` state machine, once per flow version.

`machine_config` is a pure function from flow to machine configuration (states and
transitions as data). `CompiledFlow` keeps one machine with one attached cursor model: the
engine sets the cursor to a conversation's step and fires a trigger, which costs microseconds,
where building a machine or attaching a model per update would cost a hundred times more."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from transitions import Machine

from bot.flow.model import Condition, Flow, Op, Route, Step
from bot.kinds import KINDS

NEXT = "next"  # the trigger for "continue" (a typed answer, a link opened, a message shown)


def choice_trigger(choice_id: str) -> str:
    return f"choose__{choice_id}"


def condition_holds(condition: Condition, answers: Mapping[str, str]) -> bool:
    """Does one `if:` condition of a conditional `go` hold for these saved answers?"""
    given = answers.get(condition.var)
    if condition.op == Op.SET:
        return (given is not None and given != "") == bool(condition.value)
    if given is None:
        return False
    if condition.op == Op.EQ:
        return given.casefold() == str(condition.value).casefold()
    if condition.op == Op.IN:
        assert isinstance(condition.value, tuple)
        return given.casefold() in {v.casefold() for v in condition.value}
    try:
        number, bound = float(given), float(condition.value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return _COMPARE[condition.op](number, bound)


_COMPARE: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
}


def _guard(conditions: tuple[Condition, ...]) -> Callable[..., bool]:
    def holds(*_: Any, answers: Mapping[str, str], **__: Any) -> bool:
        return all(condition_holds(c, answers) for c in conditions)

    return holds


def step_routes(flow: Flow, step: Step) -> tuple[Route, ...]:
    """Where `next` leads from a step: its `go`, else the step written after it."""
    if step.routes:
        return step.routes
    following = flow.next_in_file(step.id)
    return (Route(to=following.id),) if following else ()


def machine_config(flow: Flow) -> dict[str, Any]:
    """States and transitions for `transitions.Machine`: a trigger per choice with its own
    `go`, and `next` for everything else; conditional routes become guarded transitions,
    tried in the order written."""
    transitions: list[dict[str, Any]] = []

    def add(trigger: str, source: str, routes: tuple[Route, ...]) -> None:
        for route in routes:
            spec: dict[str, Any] = {"trigger": trigger, "source": source, "dest": route.to}
            if route.when:
                spec["conditions"] = [_guard(route.when)]
            transitions.append(spec)

    for step in flow.steps:
        if KINDS[step.kind].ends:
            continue
        add(NEXT, step.id, step_routes(flow, step))
        for choice in step.choices:
            if choice.routes:
                add(choice_trigger(choice.id), step.id, choice.routes)
    return {
        "states": [s.id for s in flow.steps],
        "transitions": transitions,
        "initial": flow.first.id,
        "auto_transitions": False,
        "send_event": False,
        "ignore_invalid_triggers": True,
    }


class _Cursor:
    state: str


@dataclass(frozen=True)
class CompiledFlow:
    """A flow version with its machine, ready for the engine."""

    flow: Flow
    machine: Machine
    cursor: _Cursor

    def route(self, step_id: str, trigger: str, answers: Mapping[str, str]) -> str | None:
        """Where `trigger` leads from `step_id` given the answers; None when nothing matches
        (no transition, or every conditional route's conditions fail)."""
        self.machine.set_state(step_id, model=self.cursor)
        moved = self.cursor.trigger(trigger, answers=answers)  # type: ignore[attr-defined]
        return self.cursor.state if moved else None


def compile_flow(flow: Flow) -> CompiledFlow:
    cursor = _Cursor()
    machine = Machine(model=cursor, **machine_config(flow))
    return CompiledFlow(flow=flow, machine=machine, cursor=cursor)
