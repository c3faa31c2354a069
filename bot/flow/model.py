"""The flow as data: what a marketer wrote, validated and normalised.

Built by `bot.flow.loader` from YAML; read by `bot.flow.compile` and `bot.engine`.
Every node keeps the line and column it came from so later checks can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cached_property

from domain.model import Outcome, ProductEvent

# The most message steps the bot passes through in a row before it waits for the prospect:
# validation rejects a longer run, and the engine never goes further in one turn.
MAX_MESSAGES_IN_A_ROW = 64


class StepKind(StrEnum):
    """The kinds of step; each is defined in its own module of `bot.kinds`."""

    SURVEY = "survey"  # a question with choices ("question" is accepted as an alias)
    INPUT = "input"  # a typed answer, checked by a validator
    CONTACT = "contact"  # a phone number: shared with one tap, or typed
    RESOURCE = "resource"  # a link (tracked) to something of value; the click is the commitment
    WEBINAR = "webinar"  # pick a slot; reminders before it
    TRIAL = "trial"  # a sign-up link (tracked); the click is the commitment
    MESSAGE = "message"  # say something and move on
    END = "end"  # the ladder is complete


DEFAULT_SUCCESS = (Outcome.WON,)


@dataclass(frozen=True)
class Pos:
    """Where a node stands in its file (1-based line and column)."""

    file: str = "<flow>"
    line: int = 0
    col: int = 0


class Op(StrEnum):
    """How an `if:` condition compares a saved answer."""

    EQ = "eq"  # equals, any case: `{role: Founder}`
    IN = "in"  # one of, any case: `{role: [Founder, CEO]}`
    GT = "gt"  # numbers: `{size: {gt: 50}}`
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    SET = "set"  # answered (true) or not (false): `{email: {set: true}}`


COMPARISONS = (Op.GT, Op.GTE, Op.LT, Op.LTE, Op.SET)  # written as `{var: {op: bound}}`


@dataclass(frozen=True)
class Condition:
    """`answers[var]` compared with `op` and `value`."""

    var: str
    op: Op
    value: str | float | tuple[str, ...] | bool


@dataclass(frozen=True)
class Route:
    """Go to `to` when every condition holds (no conditions: always)."""

    to: str
    when: tuple[Condition, ...] = ()
    pos: Pos = field(default=Pos(), compare=False)


@dataclass(frozen=True)
class Choice:
    """A button the prospect can press, or type (label, value or its number)."""

    id: str  # short and stable: goes into Telegram callback data
    label: str
    value: str  # what is saved under the step's save_as
    routes: tuple[Route, ...] = ()  # empty: the step's own routes apply
    commits: bool = True  # False for a "not now": no commitment is recorded
    pos: Pos = field(default=Pos(), compare=False)


class Check(StrEnum):
    """What an input step's typed answer must be (`validate:`)."""

    EMAIL = "email"
    PHONE = "phone"
    NUMBER = "number"
    TEXT = "text"
    DATE = "date"


@dataclass(frozen=True)
class Validator:
    """How typed input is checked."""

    kind: Check = Check.TEXT
    min: float | None = None  # number: smallest value; text: shortest length
    max: float | None = None  # number: largest value; text: longest length
    hint: str | None = None  # said when the answer does not pass
    # date: bounds in days from the prospect's today ("today" 0, "90d" 90), or ISO dates
    earliest: int | date | None = None
    latest: int | date | None = None
    month_first: bool = False  # date: "12/3" is December 3rd (en-US), not March 12th


@dataclass(frozen=True)
class Nudge:
    """One follow-up message, sent `after` the prospect went quiet."""

    after: timedelta
    say: str


@dataclass(frozen=True)
class FollowUp:
    """Follow-ups for a prospect who went quiet at a step."""

    nudges: tuple[Nudge, ...] = ()
    drop_after: timedelta | None = None  # after the last nudge: emit `dropped`
    quiet_hours: tuple[int, int] | None = None  # minutes after midnight (start, end)
    timezone: str = "UTC"
    stale_after: timedelta | None = None  # a due item older than this is dropped, not sent


@dataclass(frozen=True)
class Alerts:
    """When to tell the sales team in Slack."""

    slack_channel: str | None = None
    on: tuple[str, ...] = ("completed",)  # domain event names or commitment names
    score_at_least: int | None = None


@dataclass(frozen=True)
class WaitFor:
    """A link step that waits for the product to report `event` (POST /api/events) instead of
    taking the click as the commitment; after `timeout` without it, the prospect goes to
    `then` (no timeout: the step's follow-ups apply as at any step)."""

    event: ProductEvent
    timeout: timedelta | None = None
    then: Route | None = None


@dataclass(frozen=True)
class Variant:
    """An A/B variant of a step's ask; the prospect keeps the one first drawn."""

    id: str
    ask: str
    weight: float = 1.0


class MediaKind(StrEnum):
    """What a step's `media` is, as Telegram sends it."""

    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"


@dataclass(frozen=True)
class Media:
    """An image, video or document a step sends before its text: an https URL, or a file path
    relative to the flows folder; `pos` is where the path is written (for `ladder validate`)."""

    kind: MediaKind
    source: str
    caption: str = ""
    pos: Pos = field(default=Pos(), compare=False)

    @property
    def is_url(self) -> bool:
        return self.source.startswith("https://")


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    say: str | None = None  # sent first
    ask: str | None = None  # the question / the call to action
    choices: tuple[Choice, ...] = ()
    save_as: str | None = None
    validator: Validator | None = None  # input steps
    url: str | None = None  # resource and trial: where the tracked link leads
    button: str | None = None  # the link button's label
    document: str | None = None  # resource: a file to send as well
    slots: tuple[datetime, ...] = ()  # webinar
    duration: timedelta = timedelta(minutes=30)  # webinar length (for the calendar file)
    reminders: tuple[timedelta, ...] = ()  # webinar: before the booked slot
    routes: tuple[Route, ...] = ()  # empty: continue with the next step in the file
    commitment: str | None = None  # the name recorded when the prospect says yes here
    score: int = 0  # lead score points for that commitment
    follow_up: FollowUp | None = None  # overrides the flow's
    variants: tuple[Variant, ...] = ()
    outcome: Outcome | None = None  # end steps; None only in versions published before outcomes
    wait_for: WaitFor | None = None  # resource and trial steps: a product event moves on
    media: Media | None = None  # any step: an image, video or document sent first
    pos: Pos = field(default=Pos(), compare=False)


@dataclass(frozen=True)
class Translation:
    """A flow's texts in one more language: its steps with translated texts (same ids, choice
    ids and values) and its own follow-ups."""

    steps: tuple[Step, ...]
    follow_up: FollowUp | None = None


@dataclass(frozen=True)
class Flow:
    name: str
    title: str
    steps: tuple[Step, ...]
    version: int = 0  # 0 until published
    alerts: Alerts = Alerts()
    follow_up: FollowUp | None = None
    timezone: str = "UTC"
    migrate: dict[str, str] = field(default_factory=dict)  # removed step id -> new step id
    success: tuple[Outcome, ...] = DEFAULT_SUCCESS  # outcomes that count as a conversion
    source: str = ""  # the YAML text, kept so a published version can be rebuilt
    file: str = "<flow>"
    default_language: str = "en"  # the language the steps are written in
    translations: dict[str, Translation] = field(default_factory=dict)  # language -> texts

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language the flow speaks, its default first."""
        return (self.default_language, *self.translations)

    @cached_property
    def _in_language(self) -> dict[str, Flow]:
        return {
            language: replace(self, steps=t.steps, follow_up=t.follow_up, translations={})
            for language, t in self.translations.items()
        }

    def in_language(self, language: str) -> Flow:
        """The flow with its texts in `language` (itself for its default or an unknown one);
        steps, routes and choice ids are the same in every language."""
        return self._in_language.get(language, self)

    @cached_property
    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def step(self, step_id: str) -> Step:
        """The step with this id (KeyError if none)."""
        return self.by_id[step_id]

    @cached_property
    def outcomes(self) -> dict[str, Outcome]:
        """Each end step's outcome, by step id (end steps without one are left out)."""
        return {s.id: s.outcome for s in self.steps if s.outcome is not None}

    @property
    def first(self) -> Step:
        return self.steps[0]

    @cached_property
    def _following(self) -> dict[str, Step | None]:
        return {s.id: n for s, n in zip(self.steps, (*self.steps[1:], None), strict=True)}

    def next_in_file(self, step_id: str) -> Step | None:
        """The step written after this one, if any."""
        return self._following[step_id]
