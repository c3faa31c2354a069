"""What a step kind is: its grammar (the keys it takes and needs, its own keys' schema and how
they are read), its validation (what it saves, its warnings), its diagram shape and its engine
behaviour (how it asks, what it accepts, where it goes). Each kind is one module of this
package, registered in `bot.kinds.KINDS`.

A kind reads YAML with `bot.flow.steps.StepReader` and acts in the engine through `Turn`, the
working state of one engine step (`bot.engine` implements it), so the kinds import no engine,
channel, storage or network code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from yaml.nodes import Node

from bot.flow.grammar import Schema
from bot.flow.model import Choice, Flow, Step, StepKind
from bot.flow.steps import StepReader
from bot.texts import Builtin
from domain.errors import FlowError
from domain.model import (
    Action,
    Button,
    ContactShared,
    Conversation,
    LinkButton,
    Reported,
    Timer,
)

# The step keys every kind takes, those of kinds that move on, and those of kinds that wait.
ALWAYS = frozenset({"id", "kind", "say", "ask", "media"})
MOVING = ALWAYS | {"go"}
WAITING = MOVING | {"choices", "commitment", "score", "follow_up", "variants"}

Get = Callable[[str], Node | None]  # a key's value node, if the step has it and takes it


class Turn(Protocol):
    """The engine's working state for one step, as the kinds use it."""

    conv: Conversation
    flow: Flow
    now: datetime
    actions: list[Action]
    schedule: list[Timer]
    cancel: list[str]
    language: str  # the prospect's (bot.texts): built-in texts and answer checks speak it

    def text(self, key: Builtin, **values: str) -> str: ...
    def say(
        self, text: str, buttons: tuple[Button | LinkButton, ...] = (), share_contact: str = ""
    ) -> None: ...
    def render(self, text: str) -> str: ...
    def values(self) -> dict[str, str]: ...
    def emit(self, name: str, step_id: str | None = None, **data: str) -> None: ...
    def current(self) -> Step: ...
    def present(self, step: Step, intro: str | None = None, lead: str | None = None) -> None: ...
    def follow_up(self, step: Step, seq: int) -> None: ...
    def commit(self, step: Step, value: str = "", name: str = "") -> None: ...
    def next_step(self, step: Step) -> str | None: ...
    def go_on(self, step: Step) -> None: ...
    def enter(self, step_id: str) -> None: ...
    def reject(self, step: Step, hint: str) -> None: ...
    def complete(self) -> None: ...
    def revive(self) -> None: ...
    def zone(self, fallback: str | None = None) -> ZoneInfo: ...
    def timer(self, purpose: str, kind: str, due: datetime, step: Step, seq: int) -> Timer: ...
    def timer_id(self, purpose: str) -> str: ...


def choice_hint(turn: Turn, choices: tuple[Choice, ...]) -> str:
    return turn.text(Builtin.NOT_UNDERSTOOD, labels=", ".join(c.label for c in choices))


class Kind:
    """A step kind. The defaults are those of a step that asks and waits for a button."""

    name: ClassVar[StepKind]
    aliases: ClassVar[tuple[str, ...]] = ()  # other words `kind:` accepts for it
    # Without `kind:`, a step is of the first kind (in `KINDS` order) whose `implied_by` key it
    # has; "" implies the kind for any step (the last resort).
    implied_by: ClassVar[str | None] = None
    keys: ClassVar[frozenset[str]] = WAITING  # the step keys it takes (with `own`)
    own: ClassVar[Mapping[str, Schema]] = {}  # the keys only it (or its family) reads
    needs: ClassVar[tuple[str, ...]] = ()  # keys it cannot do without
    needs_text: ClassVar[bool] = False  # needs `say` or `ask` (what it sends)
    commitment: ClassVar[tuple[str, int] | None] = None  # default name pattern and score
    waits: ClassVar[bool] = True  # waits for the prospect (follow-ups apply)
    passes_on: ClassVar[bool] = False  # says its text and goes straight on (message)
    ends: ClassVar[bool] = False  # completes the conversation
    answer: ClassVar[str | None] = None  # the label of its own way on; None: buttons only
    extra_buttons: ClassVar[bool] = True  # its choices are extra ways on, recording nothing
    numbers_pick_choices: ClassVar[bool] = True  # a typed "2" is the second button
    shape: ClassVar[tuple[str, str]] = ("(", ")")  # Mermaid node brackets
    dot_shape: ClassVar[str] = "shape=box"  # graphviz node attributes
    timers: ClassVar[frozenset[str]] = frozenset()  # timer kinds `on_timer` handles

    # --- grammar ------------------------------------------------------------------------------

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        """Its own keys, as `Step` fields (read before the shared keys)."""
        return {}

    def buttons_made(self, fields: dict[str, Any]) -> tuple[str, int]:
        """The key and count of the buttons it makes itself from `read`'s fields."""
        return ("", 0)

    def refine(self, reader: StepReader, step: Step, get: Get, where: str) -> Step:
        """Checks over the whole step, once read; may drop what cannot be used."""
        return step

    # --- validation ---------------------------------------------------------------------------

    def saves(self, step: Step) -> frozenset[str]:
        """The answer its own way on saves."""
        return frozenset({step.save_as} if step.save_as else ())

    def warnings(self, step: Step, now: datetime) -> list[FlowError]:
        """What `ladder validate` warns of at `now` (not errors: time passing breaks nothing)."""
        return []

    # --- engine -------------------------------------------------------------------------------

    def enter(self, turn: Turn, step: Step) -> str | None:
        """The prospect reached the step: say it. Returns the step to go on to at once."""
        turn.present(step, intro=step.say)
        turn.follow_up(step, seq=1)
        return None

    def link_button(self, turn: Turn, step: Step) -> LinkButton | None:
        return None

    def share_contact(self, step: Step) -> str:
        """The label of its one-tap "share my phone number" button; "" for none."""
        return ""

    def choices(self, turn: Turn, step: Step) -> tuple[Choice, ...]:
        """The buttons it offers now."""
        return step.choices

    def chosen(self, turn: Turn, step: Step, choice: Choice) -> None:
        """A button was pressed (or typed); the engine goes on after this."""

    def on_text(self, turn: Turn, step: Step, text: str, choices: tuple[Choice, ...]) -> None:
        """A typed answer that is none of `choices`."""
        turn.reject(step, choice_hint(turn, choices))

    def on_contact(
        self, turn: Turn, step: Step, contact: ContactShared, choices: tuple[Choice, ...]
    ) -> None:
        """A shared contact card: at a step that did not ask for one, its phone as typed."""
        self.on_text(turn, step, contact.phone, choices)

    def on_link(self, turn: Turn, step: Step) -> None:
        """The prospect opened the step's link."""

    def on_reported(self, turn: Turn, step: Step, event: Reported) -> bool:
        """The product reported an event at this step; True if the step took it."""
        return False

    def on_timer(self, turn: Turn, timer: Timer) -> None:
        """One of its `timers` is due."""
