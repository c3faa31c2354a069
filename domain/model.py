"""Data that crosses the engine's boundary: conversations, inbound events, actions, domain events.

All frozen; the engine returns new values instead of changing old ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"  # the prospect opted out (/stop)
    DROPPED = "dropped"  # went quiet after every follow-up
    PAUSED = "paused"  # a salesperson took over the chat


class Outcome(StrEnum):
    """What the end of a conversation means for the business (docs/flows.md, "Outcomes")."""

    WON = "won"  # the ladder reached its goal: a booked demo, a started trial, a sale
    DECLINED = "declined"  # the prospect said no ("Not now")
    DISQUALIFIED = "disqualified"  # not a fit: wrong size, wrong market, a student
    NURTURE = "nurture"  # not ready yet: keep them warm, ask again later
    LOST = "lost"  # the sales team tried and it did not work out


@dataclass(frozen=True)
class Profile:
    """Who the prospect is, as the channel tells us."""

    first_name: str = ""
    last_name: str = ""
    username: str = ""
    language: str = ""
    timezone: str = ""  # overrides the flow's time zone for quiet hours


@dataclass(frozen=True)
class Commitment:
    """A yes the prospect gave: `name` at `step`, at `at` (ISO 8601)."""

    name: str
    step: str
    at: str
    value: str = ""


@dataclass(frozen=True)
class Booking:
    """A webinar seat the prospect booked at `step` of `flow`. It belongs to the prospect, not to
    one walk of the ladder: a new /start keeps it, and its reminders still come."""

    flow: str
    step: str
    slot: str  # ISO 8601, UTC
    title: str  # what the reminders call it (the flow's title)
    reminders: tuple[str, ...] = ()  # due times (ISO 8601) of the reminders still to send

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Booking:
        return cls(**{**data, "reminders": tuple(data["reminders"])})


LEGACY_SCORE = "_score"  # where conversations stored before `score` kept the lead score
LEGACY_MARKER = "_"  # answers stored before `score` and `bookings` also held "_..." entries


@dataclass(frozen=True)
class Lead:
    """What the sales team did with the prospect: who claimed the lead, who is chatting with
    them (the bot is paused), and who gave the verdict (won, lost, not a fit) that set the
    conversation's outcome. Each is a salesperson's id as their channel names them
    ("slack:U123")."""

    claimed_by: str = ""
    taken_by: str = ""
    verdict_by: str = ""

    def on_a_new_run(self) -> Lead:
        """When the prospect starts the flow over: the claim stays, the verdict was on the
        old run."""
        return Lead(self.claimed_by, self.taken_by)


@dataclass(frozen=True)
class Conversation:
    """One prospect in one flow: the whole state, stored as one Redis key."""

    id: str  # "<channel>:<chat>", e.g. "telegram:42"
    flow: str
    version: int
    step: str | None = None  # None: not started yet
    status: Status = Status.ACTIVE
    answers: dict[str, str] = field(default_factory=dict)
    commitments: tuple[Commitment, ...] = ()
    score: int = 0  # lead score: the commitments made, across walks of the ladder
    bookings: tuple[Booking, ...] = ()
    profile: Profile = Profile()
    source: str = ""  # where the prospect came from (/start payload)
    variants: dict[str, str] = field(default_factory=dict)  # step id -> variant id
    invalid: int = 0  # unexpected answers at the current step
    nudges: int = 0  # follow-ups sent at the current step
    stale_presses: int = 0  # presses of earlier questions' buttons at the current step
    pressed: str = ""  # the press ("<step>:<choice>") that led to the current step
    started_at: str = ""
    updated_at: str = ""
    step_at: str = ""  # when the current step was reached
    outcome: Outcome | None = None  # set at an end step, or by the sales team (won, lost, ...)
    lead: Lead = Lead()
    media_sent: tuple[str, ...] = ()  # "image media/intro.png": what the steps sent, once each
    revision: int = 0  # storage's optimistic-concurrency counter

    @property
    def channel(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def chat(self) -> str:
        return self.id.split(":", 1)[1]

    @property
    def name(self) -> str:
        """Who the prospect is, for the sales team: their name, else @username; never the raw
        chat id alone."""
        profile = self.profile
        full = f"{profile.first_name} {profile.last_name}".strip()
        if full:
            return full
        return f"@{profile.username}" if profile.username else f"unnamed prospect ({self.id})"

    def to_json(self) -> str:
        """The stored form (without the revision, which storage keeps beside it)."""
        data = dict(self.__dict__)
        del data["revision"]
        data["profile"] = self.profile.__dict__
        data["lead"] = self.lead.__dict__
        data["commitments"] = [c.__dict__ for c in self.commitments]
        data["bookings"] = [b.__dict__ for b in self.bookings]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, revision: int = 0) -> Conversation:
        """The stored form back; a conversation stored before `score` and `bookings` existed
        has its score taken out of `answers` and its bookkeeping entries dropped."""
        data: dict[str, Any] = json.loads(text)
        data["status"] = Status(data["status"])
        if data.get("outcome"):  # stored before outcomes existed: no key
            data["outcome"] = Outcome(data["outcome"])
        data["profile"] = Profile(**data["profile"])
        data["lead"] = Lead(**data.get("lead", {}))  # stored before sales actions: no key
        data["commitments"] = tuple(Commitment(**c) for c in data["commitments"])
        data["bookings"] = tuple(Booking.from_dict(b) for b in data.get("bookings", ()))
        data["media_sent"] = tuple(data.get("media_sent", ()))  # stored before media: no key
        if "score" not in data:
            answers = data["answers"]
            data["score"] = int(answers.get(LEGACY_SCORE, "0"))
            data["answers"] = {k: v for k, v in answers.items() if not k.startswith(LEGACY_MARKER)}
        return cls(**data, revision=revision)

    def with_(self, **changes: Any) -> Conversation:
        """A copy with some fields changed (the engine's hot path: a dict copy, not __init__)."""
        unknown = changes.keys() - _CONVERSATION_FIELDS
        if unknown:
            raise TypeError(f"Conversation has no field {sorted(unknown)}")
        copy = object.__new__(Conversation)
        copy.__dict__.update(self.__dict__, **changes)
        return copy


_CONVERSATION_FIELDS = frozenset(f.name for f in fields(Conversation))


# --- inbound events: what happened, as the engine sees it ---


@dataclass(frozen=True)
class Start:
    """The prospect opened the bot (`/start <payload>`); payload is kept as the source."""

    payload: str = ""


@dataclass(frozen=True)
class Text:
    """The prospect typed something."""

    text: str


@dataclass(frozen=True)
class ContactShared:
    """The prospect shared a phone number with one tap (a contact card); `own` is True when the
    card is the prospect's own (the channel checked), not one forwarded from someone else."""

    phone: str
    own: bool


@dataclass(frozen=True)
class Press:
    """The prospect pressed a button; the channel has already checked it was ours."""

    step: str
    choice: str


@dataclass(frozen=True)
class LinkOpened:
    """The prospect opened the tracked link of `step`."""

    step: str


@dataclass(frozen=True)
class Restart:
    """`/restart`: begin the flow again, keeping nothing but the profile and source."""


@dataclass(frozen=True)
class Stop:
    """`/stop`: the prospect opts out; no more messages, no more follow-ups."""


@dataclass(frozen=True)
class Help:
    """`/help`: say where we are and how to answer."""


@dataclass(frozen=True)
class Due:
    """A scheduled timer fired (a follow-up nudge, a drop, a webinar reminder)."""

    timer: Timer


# The sales team's actions on a prospect's conversation (bot.sales sends them); `by` is the
# salesperson, as their channel names them ("slack:U123").


@dataclass(frozen=True)
class Claim:
    """A salesperson claims the lead: it is theirs to follow up."""

    by: str


@dataclass(frozen=True)
class TakeOver:
    """A salesperson took over the chat: the bot pauses (and the lead is theirs if unclaimed)."""

    by: str


@dataclass(frozen=True)
class HandBack:
    """The salesperson handed the chat back: the flow resumes where it was."""

    by: str


@dataclass(frozen=True)
class NotAFit:
    """The lead is not a fit: outcome disqualified, and no more follow-ups."""

    by: str


@dataclass(frozen=True)
class Won:
    """The sales team won the deal: outcome won."""

    by: str


@dataclass(frozen=True)
class Lost:
    """The sales team lost the deal: outcome lost, and no more follow-ups."""

    by: str


SalesEvent = Claim | TakeOver | HandBack | NotAFit | Won | Lost


@dataclass(frozen=True)
class Reply:
    """The salesperson who took the chat over writes to the prospect: it is sent to them in
    order with the bot's messages (anyone else's reply, or one after the take-over ended, is
    not)."""

    by: str
    text: str


class ProductEvent(StrEnum):
    """A commitment the product reports (POST /api/events): it happened in the product, not in
    the chat."""

    TRIAL_STARTED = "trial_started"
    TRIAL_ACTIVATED = "trial_activated"
    ATTENDED = "attended"
    PURCHASED = "purchased"


@dataclass(frozen=True)
class Reported:
    """The product reported `event` for the prospect; `source` is who sent it (a configured
    product event source, e.g. "billing")."""

    event: ProductEvent
    source: str


@dataclass(frozen=True)
class Arrive:
    """The prospect was moved to `step` of a new flow version (`migrate:`): ask it as if they
    had just reached it."""

    step: str


Event = (
    Start
    | Text
    | ContactShared
    | Press
    | LinkOpened
    | Restart
    | Stop
    | Help
    | Due
    | Arrive
    | SalesEvent
    | Reply
    | Reported
)


# --- outbound actions: what the channel must do ---


@dataclass(frozen=True)
class Button:
    """A choice button: pressing it sends Press(step, choice)."""

    label: str
    step: str
    choice: str


@dataclass(frozen=True)
class LinkButton:
    """A link button; the channel makes it a tracked link whose opening sends LinkOpened(step)."""

    label: str
    step: str
    url: str


@dataclass(frozen=True)
class Say:
    """Send a message to the prospect, with optional buttons (one per row); `share_contact`
    is the label of a one-tap "send my phone number" button (a contact step), "" for none."""

    text: str
    buttons: tuple[Button | LinkButton, ...] = ()
    share_contact: str = ""


@dataclass(frozen=True)
class SendDocument:
    """Send a file (a resource step's `document`)."""

    path: str
    caption: str = ""


@dataclass(frozen=True)
class SendMedia:
    """Send an image, a video or a document (a step's `media`): `kind` is image, video or
    document; `source` an https URL or a path in the flows folder."""

    kind: str
    source: str
    caption: str = ""


@dataclass(frozen=True)
class SendCalendar:
    """Send an .ics calendar invitation for a booked webinar slot."""

    title: str
    start: str  # ISO 8601
    minutes: int
    description: str = ""


@dataclass(frozen=True)
class Alert:
    """Tell the sales team (delivered through the outbox): `reason` is the event that matched."""

    reason: str
    channel: str | None  # Slack channel from the flow, None: the default


@dataclass(frozen=True)
class Relay:
    """While a salesperson has taken over: pass the prospect's message to them (via the outbox)."""

    text: str


Action = Say | SendDocument | SendMedia | SendCalendar | Alert | Relay
Message = Say | SendDocument | SendMedia | SendCalendar
"""What the prospect receives, as opposed to what goes to the sales team."""
MESSAGE_TYPES = (Say, SendDocument, SendMedia, SendCalendar)


def messages_to_json(messages: Sequence[Message]) -> str:
    """Messages for the prospect, to be sent later (from the outbox)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"type": type(message).__name__, **message.__dict__}
        if isinstance(message, Say):
            item["buttons"] = [{"type": type(b).__name__, **b.__dict__} for b in message.buttons]
        items.append(item)
    return json.dumps(items, separators=(",", ":"))


def messages_from_json(text: str) -> tuple[Message, ...]:
    buttons: dict[str, type[Button] | type[LinkButton]] = {
        "Button": Button,
        "LinkButton": LinkButton,
    }
    out: list[Message] = []
    for item in json.loads(text):
        kind = item.pop("type")
        if kind == "Say":
            row = tuple(buttons[b.pop("type")](**b) for b in item.pop("buttons"))
            out.append(Say(buttons=row, **item))
        elif kind == "SendDocument":
            out.append(SendDocument(**item))
        elif kind == "SendMedia":
            out.append(SendMedia(**item))
        elif kind == "SendCalendar":
            out.append(SendCalendar(**item))
        else:
            raise ValueError(f"not a message type: {kind!r}")
    return tuple(out)


# --- timers ---


class TimerKind(StrEnum):
    NUDGE = "nudge"  # a follow-up: the prospect stayed quiet at a step
    DROP = "drop"  # after the last nudge: the prospect dropped off
    REMINDER = "reminder"  # before a booked webinar slot
    WAIT = "wait"  # a step waiting for a product event timed out


@dataclass(frozen=True)
class Timer:
    """Something to do later for one conversation. `id` is unique per conversation and purpose,
    so scheduling it again replaces it. The engine re-checks a due timer against the state, so a
    timer that survived a cancel by accident does nothing."""

    id: str
    conversation: str
    kind: TimerKind
    due: str  # ISO 8601, UTC
    step: str
    seq: int = 0  # nudge number, or reminder index
    stale_after: float | None = None  # seconds past due after which it is dropped, not sent

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TimerKind(self.kind))  # a stored timer's plain kind

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Timer:
        return cls(**json.loads(text))


# --- domain events: what the business cares about (the event log) ---


class EventName(StrEnum):
    """The names of the event log's lines (domain events)."""

    STARTED = "started"
    STEP_REACHED = "step_reached"
    ANSWERED = "answered"
    COMMITTED = "committed"
    INVALID_INPUT = "invalid_input"
    STALE_PRESS = "stale_press"
    NUDGED = "nudged"
    REMINDED = "reminded"
    FOLLOW_UP_SKIPPED = "follow_up_skipped"
    LINK_OPENED = "link_opened"
    COMPLETED = "completed"
    DROPPED = "dropped"
    RETURNED = "returned"
    OPTED_OUT = "opted_out"
    RESTARTED = "restarted"
    PAUSED = "paused"  # a salesperson took the chat over
    RESUMED = "resumed"  # handed back
    RELAYED = "relayed"  # the prospect wrote while the chat was taken over
    REPLIED = "replied"  # the salesperson who took the chat over wrote to the prospect
    MIGRATED = "migrated"
    ALERTED = "alerted"
    CLAIMED = "claimed"
    NOT_A_FIT = "not_a_fit"
    WON = "won"
    LOST = "lost"
    REPORTED = "reported"
    WAIT_TIMED_OUT = "wait_timed_out"


@dataclass(frozen=True)
class DomainEvent:
    """One line of the event log (a name that is no EventName raises ValueError)."""

    name: EventName
    conversation: str
    flow: str
    version: int
    step: str
    at: str  # ISO 8601
    data: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """Flat string fields for a Redis Stream entry."""
        return {
            "name": self.name,
            "conversation": self.conversation,
            "flow": self.flow,
            "version": str(self.version),
            "step": self.step,
            "at": self.at,
            "data": json.dumps(self.data, separators=(",", ":")),
        }

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", EventName(self.name))

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> DomainEvent:
        return cls(
            name=EventName(f["name"]),
            conversation=f["conversation"],
            flow=f["flow"],
            version=int(f["version"]),
            step=f["step"],
            at=f["at"],
            data=json.loads(f.get("data") or "{}"),
        )


@dataclass(frozen=True)
class StepResult:
    """What the engine decided for one event."""

    conversation: Conversation
    actions: tuple[Action, ...] = ()
    events: tuple[DomainEvent, ...] = ()
    schedule: tuple[Timer, ...] = ()
    cancel: tuple[str, ...] = ()  # timer ids
    cancel_all: bool = False  # every pending timer of the conversation (e.g. after /stop)

    @property
    def changed(self) -> bool:
        return bool(self.events or self.schedule or self.cancel)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
