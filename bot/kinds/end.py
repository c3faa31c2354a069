"""end: the ladder is complete; `outcome` says what reaching it means."""

from __future__ import annotations

from typing import Any

from bot.flow.grammar import ref
from bot.flow.model import Step, StepKind
from bot.flow.steps import StepReader
from bot.kinds.base import ALWAYS, Get, Kind, Turn


class End(Kind):
    name = StepKind.END
    keys = ALWAYS | {"outcome"}
    own = {"outcome": ref("outcome")}
    waits = False
    ends = True
    shape = ("([", "])")
    dot_shape = "shape=box, peripheries=2"

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        node = get("outcome")
        return {"outcome": reader.outcome(node, where, "outcome") if node else None}

    def enter(self, turn: Turn, step: Step) -> str | None:
        if step.say or step.ask:
            turn.say(turn.render(step.say or step.ask or ""))
        turn.complete()
        return None


KIND = End()
