"""webinar: pick one of the upcoming slots; the booking is the commitment, a calendar invite
goes out, and reminders come before the slot."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from yaml.nodes import Node, SequenceNode

from bot.flow.grammar import MAX_BUTTONS, MAX_CALLBACK_IDS, ref
from bot.flow.model import Choice, Step, StepKind
from bot.flow.steps import StepReader
from bot.kinds.base import WAITING, Get, Kind, Turn
from bot.texts import Builtin
from domain.errors import FlowError
from domain.model import Booking, SendCalendar, Status, Timer, iso

MAX_REMINDERS = 10
SLOT_YEARS = (2000, 2999)
SLOT = "slot"  # the ids of the slots' buttons: slot0, slot1, ...


class Webinar(Kind):
    name = StepKind.WEBINAR
    keys = WAITING | {"save_as", "slots", "duration", "reminders"}
    own = {
        "slots": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BUTTONS,
            "items": {
                "description": "ISO 8601 with a time zone, e.g. 2027-03-04T16:00:00+01:00.",
                "type": "string",
            },
        },
        "duration": ref("duration"),
        "reminders": {"type": "array", "maxItems": MAX_REMINDERS, "items": ref("duration")},
    }
    needs = ("ask", "slots")
    commitment = ("webinar_booked", 30)
    answer = "booked"
    timers = frozenset({"reminder"})

    # --- grammar ------------------------------------------------------------------------------

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        slots_node, duration_node = get("slots"), get("duration")
        duration = reader.duration(duration_node, where, "duration") if duration_node else None
        return {
            "slots": slots(reader, slots_node, where) if slots_node is not None else (),
            "duration": duration or Step.duration,
            "reminders": reminders(reader, get("reminders"), where),
        }

    def buttons_made(self, fields: dict[str, Any]) -> tuple[str, int]:
        return ("slots", len(fields["slots"]))

    def refine(self, reader: StepReader, step: Step, get: Get, where: str) -> Step:
        """The slots' buttons must fit the callback data, and their ids are theirs alone."""
        node = get("choices")
        last = f"{SLOT}{len(step.slots) - 1}"
        if node is not None and step.slots and len(step.id) + len(last) > MAX_CALLBACK_IDS:
            reader.error(
                node,
                where,
                "step id is too long for its slot buttons: keep it under "
                f"{MAX_CALLBACK_IDS - len(last)} characters",
            )
        kept = []
        for choice in step.choices:
            if choice.id.startswith(SLOT):
                reader.error_at(
                    choice.pos,
                    where,
                    f"choice id {choice.id!r}: ids starting with 'slot' are kept for the "
                    "webinar's slots",
                )
            else:
                kept.append(choice)
        return replace(step, choices=tuple(kept))

    # --- validation ---------------------------------------------------------------------------

    def saves(self, step: Step) -> frozenset[str]:
        return frozenset({booking_variable(step)})

    def warnings(self, step: Step, now: datetime) -> list[FlowError]:
        """Every slot over: not an error (a flow does not turn invalid as time passes, and
        published versions keep loading), but a prospect there has no time left to book."""
        if not step.slots or max(step.slots) > now:
            return []
        return [
            FlowError(
                f"warning: step {step.id!r}: every slot is in the past (the last was "
                f"{max(step.slots).isoformat()}), so prospects have no time to book; add "
                "upcoming `slots`",
                step.pos.file,
                step.pos.line,
                step.pos.col,
            )
        ]

    # --- engine -------------------------------------------------------------------------------

    def choices(self, turn: Turn, step: Step) -> tuple[Choice, ...]:
        """Its upcoming slots first, then its choices."""
        zone = turn.zone()
        upcoming = tuple(
            Choice(id=f"{SLOT}{i}", label=slot_label(slot, zone), value=iso(slot.astimezone(UTC)))
            for i, slot in enumerate(step.slots)
            if slot > turn.now
        )
        return upcoming + step.choices

    def chosen(self, turn: Turn, step: Step, choice: Choice) -> None:
        if choice not in step.choices:  # a slot
            book(turn, step, choice)

    def on_timer(self, turn: Turn, timer: Timer) -> None:
        """A reminder of a booked slot is due."""
        conv = turn.conv
        booking = _booking_for(turn, timer)
        if conv.status == Status.STOPPED or booking is None:
            return  # opted out, rebooked, restarted, or handled before (a worker died)
        sent = replace(booking, reminders=tuple(d for d in booking.reminders if d != timer.due))
        turn.conv = conv.with_(bookings=(*(b for b in conv.bookings if b != booking), sent))
        slot = datetime.fromisoformat(booking.slot)
        late = (turn.now - datetime.fromisoformat(timer.due)).total_seconds()
        if (timer.stale_after is not None and late > timer.stale_after) or turn.now >= slot:
            turn.emit("follow_up_skipped", timer.step, kind="reminder", seq=str(timer.seq))
            return
        label = slot_label(slot, turn.zone())
        when = _until(turn, slot - turn.now)
        turn.say(turn.text(Builtin.REMINDER, title=booking.title, when=when, slot=label))
        turn.emit("reminded", timer.step, seq=str(timer.seq))


def booking_variable(step: Step) -> str:
    """Where the engine saves a webinar's booked slot."""
    return step.save_as or f"{step.id}_slot"


def book(turn: Turn, step: Step, choice: Choice) -> None:
    """A slot was picked: record it, send the calendar file, set the reminders."""
    flow = turn.flow
    booking = booking_of(turn, step, choice.value)
    conv = turn.conv
    others = tuple(b for b in conv.bookings if (b.flow, b.step) != (booking.flow, step.id))
    answers = {**conv.answers, booking_variable(step): choice.value}
    turn.conv = conv.with_(answers=answers, bookings=(*others, booking))
    turn.commit(step, choice.value)
    minutes = int(step.duration.total_seconds() // 60)
    turn.say(turn.text(Builtin.BOOKED, slot=choice.label))
    turn.actions.append(SendCalendar(flow.title, choice.value, minutes, step.ask or ""))
    for i, due in enumerate(booking.reminders):
        purpose = f"reminder:{booking.flow}:{step.id}:{i}"
        turn.schedule.append(turn.timer(purpose, "reminder", datetime.fromisoformat(due), step, i))


def booking_of(turn: Turn, step: Step, slot: str, after: datetime | None = None) -> Booking:
    """A booking of `slot` at `step`, with its reminders due after `after` (default: now, the
    ones still ahead)."""
    start, after = datetime.fromisoformat(slot), after or turn.now
    dues = tuple(iso(start - before) for before in step.reminders if start - before > after)
    return Booking(turn.flow.name, step.id, slot, turn.flow.title, dues)


def _booking_for(turn: Turn, timer: Timer) -> Booking | None:
    """The booking a due reminder belongs to, if it is still to be sent. A conversation stored
    before bookings were kept has its slot among the answers: its booking is made from that."""
    conv = turn.conv
    for booking in conv.bookings:
        if booking.step == timer.step and timer.due in booking.reminders:
            return booking
    if conv.bookings or timer.step not in turn.flow.by_id:
        return None
    step = turn.flow.step(timer.step)
    slot = conv.answers.get(booking_variable(step))
    if not slot or step.kind != StepKind.WEBINAR:
        return None
    due = datetime.fromisoformat(timer.due)  # reminders come in order: the earlier ones went
    legacy = booking_of(turn, step, slot, after=due - timedelta(seconds=1))
    return legacy if timer.due in legacy.reminders else None


def _until(turn: Turn, left: timedelta) -> str:
    minutes = round(left.total_seconds() / 60)
    if minutes < 90:
        return turn.text(Builtin.IN_MINUTES, n=str(minutes))
    hours = round(minutes / 60)
    if hours < 36:
        return turn.text(Builtin.IN_HOURS, n=str(hours))
    return turn.text(Builtin.IN_DAYS, n=str(round(hours / 24)))


@lru_cache(maxsize=1024)
def slot_label(slot: datetime, zone: ZoneInfo) -> str:
    local = slot.astimezone(zone)
    return f"{local:%a %d %b, %H:%M} ({local.tzname()})"


def slots(reader: StepReader, node: Node, where: str) -> tuple[datetime, ...]:
    slots: list[datetime] = []
    items = reader.items(node, where, "slots")
    if not reader.count(node, where, "slots", items, MAX_BUTTONS):
        return ()
    for item in items:
        value = reader.scalar(item, where, "slots", "a date and time")
        if value is None:
            continue
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            reader.error(
                item,
                where,
                f"slot {value!r} is not a date and time like 2027-03-04T16:00:00+01:00",
            )
            continue
        if moment.utcoffset() is None:
            reader.error(
                item,
                where,
                f"slot {value!r} has no time zone: add one, like {value.strip()}+01:00",
            )
            continue
        if not SLOT_YEARS[0] <= moment.year <= SLOT_YEARS[1]:
            reader.error(
                item,
                where,
                f"slot {value!r} should be in the years {SLOT_YEARS[0]} to {SLOT_YEARS[1]}",
            )
            continue
        if moment in slots:
            reader.error(item, where, f"slot {value!r} is listed twice")
            continue
        slots.append(moment)
    if not slots and isinstance(node, SequenceNode) and not node.value:
        reader.error(node, where, "`slots` is empty: a webinar step needs at least one")
    return tuple(slots)


def reminders(reader: StepReader, node: Node | None, where: str) -> tuple[timedelta, ...]:
    if node is None:
        return ()
    items = reader.items(node, where, "reminders")
    if not reader.count(node, where, "reminders", items, MAX_REMINDERS):
        return ()
    found = (reader.duration(item, where, "reminders") for item in items)
    return tuple(sorted({d for d in found if d is not None}, reverse=True))


KIND = Webinar()
