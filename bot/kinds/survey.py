"""survey (alias: question): a question with choices; the choice pressed is the answer."""

from __future__ import annotations

from bot.flow.model import Choice, Step, StepKind
from bot.kinds.base import WAITING, Kind, Turn


class Survey(Kind):
    name = StepKind.SURVEY
    aliases = ("question",)
    implied_by = "choices"
    keys = WAITING | {"save_as"}
    needs = ("ask", "choices")
    commitment = ("{id}_answered", 5)
    extra_buttons = False

    def chosen(self, turn: Turn, step: Step, choice: Choice) -> None:
        if step.save_as:
            turn.conv = turn.conv.with_(answers={**turn.conv.answers, step.save_as: choice.value})
        if choice.commits:
            turn.commit(step, choice.value)


KIND = Survey()
