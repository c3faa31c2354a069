"""message: say something and move on at once, without waiting for the prospect."""

from __future__ import annotations

from bot.flow.model import Step, StepKind
from bot.kinds.base import MOVING, Kind, Turn


class Message(Kind):
    name = StepKind.MESSAGE
    implied_by = ""  # a step with neither choices nor an ask
    keys = MOVING
    needs_text = True
    waits = False
    passes_on = True
    answer = ""
    shape = ("[", "]")
    dot_shape = "shape=note"

    def enter(self, turn: Turn, step: Step) -> str | None:
        turn.say(turn.render(step.say or step.ask or ""))
        following = turn.next_step(step)
        if following is None:
            turn.complete()
        return following


KIND = Message()
