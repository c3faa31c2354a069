"""The engine: apply one inbound event to one conversation.

Pure and synchronous: (compiled flow, conversation, event, now) -> StepResult (the new
conversation, the messages to send, the domain events, the timers to set or cancel).
No I/O and no awaits, so a step is cheap to retry when storage reports a concurrent change.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.flow.compile import NEXT, CompiledFlow, choice_trigger
from bot.flow.model import MAX_MESSAGES_IN_A_ROW, Choice, FollowUp, Step
from bot.flow.template import CONVERSATION_REF, CONVERSATION_REF_MARKER, render
from bot.kinds import KINDS, TIMER_OWNERS
from bot.texts import Builtin, choose_language, text
from domain.model import (
    Action,
    Alert,
    Arrive,
    Button,
    Claim,
    Commitment,
    ContactShared,
    Conversation,
    DomainEvent,
    Due,
    Event,
    EventName,
    HandBack,
    Help,
    LinkButton,
    LinkOpened,
    Lost,
    NotAFit,
    Outcome,
    Press,
    Relay,
    Reply,
    Reported,
    Restart,
    Say,
    SendMedia,
    Start,
    Status,
    StepResult,
    Stop,
    TakeOver,
    Text,
    Timer,
    TimerKind,
    Won,
    iso,
)


def step(flow: CompiledFlow, conversation: Conversation, event: Event, now: datetime) -> StepResult:
    """Apply `event` to `conversation`; see the module docstring."""
    turn = _Turn(flow, conversation, now)
    if conversation.step is None and isinstance(event, Text | Press | Help):
        event = Start()  # a first message of any kind opens the flow
    if turn.resting_at_a_message() and isinstance(event, Text | Press | Help | Start):
        turn.enter(turn.current().id)  # a run of message steps cut short goes on from there
    else:
        _HANDLERS[type(event)](turn, event)
    return turn.result()


class _Turn:
    """The working state of one step: the conversation as it changes, and what to emit."""

    def __init__(self, compiled: CompiledFlow, conversation: Conversation, now: datetime) -> None:
        self.compiled = compiled
        self.conv = conversation
        self.speak()
        self.now = now
        self.at = iso(now)
        self.actions: list[Action] = []
        self.events: list[DomainEvent] = []
        self.schedule: list[Timer] = []
        self.cancel: list[str] = []
        self.cancel_all = False

    def speak(self) -> None:
        """Choose the prospect's language: a saved `language` answer, else the channel's (the
        profile's), else the flow's default; the flow's texts are then in that language."""
        flow = self.compiled.flow
        wanted = (self.conv.answers.get("language", ""), self.conv.profile.language)
        self.language = choose_language(wanted, flow.languages, flow.default_language)
        self.flow = flow.in_language(self.language)

    def text(self, key: Builtin, **values: str) -> str:
        """A built-in text in the prospect's language."""
        found = text(key, self.language)
        return found.format(**values) if values else found

    def result(self) -> StepResult:
        conv = self.conv
        if self.events:
            conv = conv.with_(updated_at=self.at)
        return StepResult(
            conv,
            tuple(self.actions),
            tuple(self.events),
            tuple(self.schedule),
            tuple(self.cancel),
            self.cancel_all,
        )

    # --- recording --------------------------------------------------------------------------

    def emit(self, name: str, step_id: str | None = None, **data: str) -> None:
        step_id = step_id if step_id is not None else (self.conv.step or "")
        data = {"source": self.conv.source, **data}
        if self.compiled.flow.translations:  # the funnel splits by language (bot.analytics)
            data["language"] = self.language
        variant = self.conv.variants.get(step_id)
        if variant:
            data["variant"] = variant
        conv = self.conv
        event = DomainEvent(
            EventName(name), conv.id, self.flow.name, conv.version, step_id, self.at, data
        )
        self.events.append(event)
        self.alert_on(name)

    def alert_on(self, reason: str) -> None:
        """Alert the sales team if the flow asks for `reason`: `completed` only for the outcomes
        the flow counts as success, and with `score_at_least`, only for a lead that scores it."""
        alerts = self.flow.alerts
        if reason not in alerts.on:
            return
        if reason == "completed" and self.conv.outcome not in self.flow.success:
            return
        if alerts.score_at_least is not None and self.conv.score < alerts.score_at_least:
            return
        self.raise_alert(reason)

    def raise_alert(self, reason: str) -> None:
        """Tell the sales team, and log it (the funnel's time to claim starts here)."""
        self.actions.append(Alert(reason, self.flow.alerts.slack_channel))
        conv, step_id = self.conv, self.conv.step or ""
        data = {"source": conv.source, "reason": reason}
        self.events.append(
            DomainEvent(
                EventName.ALERTED, conv.id, self.flow.name, conv.version, step_id, self.at, data
            )
        )

    def say(
        self, text: str, buttons: tuple[Button | LinkButton, ...] = (), share_contact: str = ""
    ) -> None:
        self.actions.append(Say(text, buttons, share_contact))

    def render(self, text: str) -> str:
        return render(text, self.values())

    def values(self) -> dict[str, str]:
        """What each placeholder stands for."""
        conv, profile = self.conv, self.conv.profile
        return {
            **conv.answers,
            "first_name": profile.first_name or "there",
            "last_name": profile.last_name,
            "username": profile.username,
            "source": conv.source,
            "conversation_id": conv.id,
            "flow": self.flow.name,
            "score": str(conv.score),
            CONVERSATION_REF: CONVERSATION_REF_MARKER,  # signed by the channel (bot.refs)
        }

    # --- moving through the flow ---------------------------------------------------------------

    def current(self) -> Step:
        assert self.conv.step is not None
        return self.flow.step(self.conv.step)

    def resting_at_a_message(self) -> bool:
        """Is the conversation at a message step? Only when `enter` stopped a run of message
        steps longer than validation allows (a flow built without `bot.flow.loader`)."""
        conv = self.conv
        return (
            conv.status == Status.ACTIVE
            and conv.step in self.flow.by_id
            and KINDS[self.current().kind].passes_on
        )

    def enter(self, step_id: str) -> None:
        """Reach `step_id`: say what it says, pass through message steps, wait at the rest.
        After MAX_MESSAGES_IN_A_ROW message steps the turn ends at the next one, unsaid: the
        prospect's next message goes on from there (validated flows never get that far)."""
        for said in range(MAX_MESSAGES_IN_A_ROW + 1):
            self.speak()  # a `language` answer saved on the way speaks from the next step on
            step = self.flow.step(step_id)
            kind = KINDS[step.kind]
            self.conv = self.conv.with_(
                step=step.id, step_at=self.at, invalid=0, nudges=0, stale_presses=0, pressed=""
            )
            if kind.passes_on and said == MAX_MESSAGES_IN_A_ROW:
                self.cancel.append(self.timer_id("nudge"))
                return
            self.pick_variant(step)
            self.emit("step_reached", kind=step.kind.value)
            if step.media is not None:
                media = step.media
                self.actions.append(SendMedia(media.kind, media.source, self.render(media.caption)))
                if (sent := f"{media.kind} {media.source}") not in self.conv.media_sent:
                    self.conv = self.conv.with_(media_sent=(*self.conv.media_sent, sent))
            following = kind.enter(self, step)
            if following is None:
                return
            step_id = following

    def next_step(self, step: Step) -> str | None:
        """Where the step's own way on leads now (None: nowhere, the flow is complete)."""
        return self.compiled.route(step.id, NEXT, self.conv.answers)

    def go_on(self, step: Step) -> None:
        """Leave `step` by its own way on."""
        self.advance(step, NEXT)

    def revive(self) -> None:
        """A prospect who went quiet is back (a text, a press, an opened link): pick up where
        they left off."""
        if self.conv.status == Status.DROPPED:
            self.conv = self.conv.with_(status=Status.ACTIVE, nudges=0)
            self.emit("returned")

    def present(self, step: Step, intro: str | None = None, lead: str | None = None) -> None:
        """Ask the step's question with its buttons (optionally after `intro`/`lead` text)."""
        parts = [p for p in (lead, intro and self.render(intro), self.ask_text(step)) if p]
        buttons: list[Button | LinkButton] = []
        if (link := KINDS[step.kind].link_button(self, step)) is not None:
            buttons.append(link)
        buttons.extend(Button(c.label, step.id, c.id) for c in self.choices(step))
        self.say("\n\n".join(parts), tuple(buttons), KINDS[step.kind].share_contact(step))

    def ask_text(self, step: Step) -> str:
        variant = self.conv.variants.get(step.id)
        for v in step.variants:
            if v.id == variant:
                return self.render(v.ask)
        return self.render(step.ask or "")

    def pick_variant(self, step: Step) -> None:
        """Draw an A/B variant once per prospect and step, deterministically (sticky)."""
        if not step.variants or step.id in self.conv.variants:
            return
        digest = hashlib.sha256(f"{self.conv.id}|{self.flow.name}|{step.id}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v.weight for v in step.variants)
        chosen = step.variants[-1]
        for variant in step.variants:
            point -= variant.weight
            if point < 0:
                chosen = variant
                break
        self.conv = self.conv.with_(variants={**self.conv.variants, step.id: chosen.id})

    def choices(self, step: Step) -> tuple[Choice, ...]:
        """The buttons the step offers now (a webinar: its upcoming slots first)."""
        return KINDS[step.kind].choices(self, step)

    def choose(self, step: Step, choice: Choice) -> None:
        self.emit("answered", choice=choice.id)
        KINDS[step.kind].chosen(self, step, choice)
        self.advance(step, choice_trigger(choice.id) if choice.routes else NEXT)

    def advance(self, step: Step, trigger: str) -> None:
        following = self.compiled.route(step.id, trigger, self.conv.answers)
        if following is None:
            self.complete()
        else:
            self.enter(following)

    def commit(self, step: Step, value: str = "", name: str = "") -> None:
        name = name or step.commitment or f"{step.id}_committed"
        before = self.conv.score
        score = before + step.score
        self.conv = self.conv.with_(
            commitments=(*self.conv.commitments, Commitment(name, step.id, self.at, value)),
            score=score,
        )
        self.emit("committed", commitment=name, score=str(step.score))
        self.alert_on(name)
        threshold = self.flow.alerts.score_at_least
        if threshold is not None and before < threshold <= score:
            self.raise_alert("score")

    def complete(self) -> None:
        """The prospect reached an end step: record what it means (its outcome)."""
        outcome = self.current().outcome
        self.conv = self.conv.with_(status=Status.COMPLETED, outcome=outcome)
        self.cancel.append(self.timer_id("nudge"))
        if outcome is None:  # a version published before end steps had outcomes
            self.emit("completed")
        else:
            self.emit("completed", outcome=outcome.value)

    def reject(self, step: Step, hint: str) -> None:
        """An answer we could not use: say why, ask again, and count it."""
        self.conv = self.conv.with_(invalid=self.conv.invalid + 1)
        self.emit("invalid_input", count=str(self.conv.invalid))
        self.present(step, lead=hint)
        self.follow_up(step, seq=1)

    # --- follow-ups ---------------------------------------------------------------------------

    def timer_id(self, purpose: str) -> str:
        return f"{self.conv.id}:{purpose}"

    def timer(self, purpose: str, kind: str, due: datetime, step: Step, seq: int) -> Timer:
        stale = self.follow_up_of(step)
        stale_after = stale.stale_after.total_seconds() if stale and stale.stale_after else None
        return Timer(
            self.timer_id(purpose),
            self.conv.id,
            TimerKind(kind),
            iso(due),
            step.id,
            seq,
            stale_after,
        )

    def follow_up_of(self, step: Step) -> FollowUp | None:
        return step.follow_up if step.follow_up is not None else self.flow.follow_up

    def follow_up(self, step: Step, seq: int) -> None:
        """Set the follow-up that fires if the prospect stays quiet at `step`: nudge `seq`, or
        the drop after the last nudge. One follow-up timer per conversation: setting it again
        replaces the pending one."""
        config = self.follow_up_of(step)
        if config is None:
            self.cancel.append(self.timer_id("nudge"))
            return
        if seq <= len(config.nudges):
            kind, delay = "nudge", config.nudges[seq - 1].after
        elif config.drop_after is not None:
            kind, delay = "drop", config.drop_after
        else:
            self.cancel.append(self.timer_id("nudge"))
            return
        due = self.outside_quiet_hours(self.now + delay, config)
        self.schedule.append(self.timer("nudge", kind, due, step, seq))

    def outside_quiet_hours(self, due: datetime, config: FollowUp) -> datetime:
        if config.quiet_hours is None:
            return due
        return _after_quiet_hours(due, config.quiet_hours, self.zone(config.timezone))

    def zone(self, fallback: str | None = None) -> ZoneInfo:
        """The prospect's time zone: an answer saved as `timezone`, else the channel's profile,
        else `fallback` (the follow-up's), else the flow's. Unknown names are passed over."""
        conv = self.conv
        names = (conv.answers.get("timezone"), conv.profile.timezone, fallback)
        for name in names:
            found = _zone(name) if name else None
            if found is not None:
                return found
        return ZoneInfo(self.flow.timezone)


def _after_quiet_hours(due: datetime, quiet: tuple[int, int], zone: ZoneInfo) -> datetime:
    """Move `due` to the end of the quiet window when it falls inside it (local time)."""
    start, end = quiet
    local = due.astimezone(zone)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start <= end else (minute >= start or minute < end)
    if not inside:
        return due
    wake = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if wake <= local:
        wake += timedelta(days=1)
    return wake.astimezone(due.tzinfo)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- matching typed text to choices ---

_NOISE = re.compile(r"[^\w\s]")


def _normal(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text.casefold()).split())


@lru_cache(maxsize=4096)
def _match_table(choices: tuple[Choice, ...]) -> dict[str, int]:
    table: dict[str, int] = {}
    for i, choice in enumerate(choices):
        table[str(i + 1)] = i
        for name in (choice.label, choice.value, choice.id):
            table.setdefault(_normal(name), i)
    return table


def match_choice(choices: tuple[Choice, ...], text: str, by_number: bool = True) -> Choice | None:
    """The choice a typed answer means: its number, label, value or id (case, spacing and
    punctuation aside), a unique prefix, the one choice the answer mentions, or a close
    spelling."""
    if not choices:
        return None
    table = _match_table(choices)
    said = _normal(text)
    if not said:
        return None
    if said in table and (by_number or not said.isdigit()):
        return choices[table[said]]
    words = [name for name in table if not name.isdigit()]
    prefixed = {table[name] for name in words if name.startswith(said)}
    if len(prefixed) == 1:
        return choices[prefixed.pop()]
    padded = f" {said} "
    mentioned = {table[name] for name in words if f" {name} " in padded}
    if len(mentioned) == 1:  # "I'm a founder"
        return choices[mentioned.pop()]
    close = difflib.get_close_matches(said, words, n=2, cutoff=0.75)
    hits = {table[n] for n in close}
    return choices[hits.pop()] if len(hits) == 1 else None


# --- handlers ---


def _on_start(turn: _Turn, event: Start) -> None:
    conv = turn.conv
    if conv.step is None:
        turn.emit("started", turn.flow.first.id)
        turn.enter(turn.flow.first.id)
    elif conv.status == Status.PAUSED:
        turn.say(turn.text(Builtin.PAUSED))
    else:
        turn.present(turn.current(), lead=turn.text(Builtin.WELCOME_BACK))


def _on_restart(turn: _Turn, _: Restart) -> None:
    turn.conv = turn.conv.with_(
        step=None,
        status=Status.ACTIVE,
        answers={},
        commitments=(),
        score=0,
        bookings=(),
        media_sent=(),
        variants={},
        invalid=0,
        nudges=0,
        outcome=None,
        lead=turn.conv.lead.on_a_new_run(),
        started_at=turn.at,
    )
    turn.cancel_all = True
    turn.emit("restarted", turn.flow.first.id)
    turn.emit("started", turn.flow.first.id)
    turn.enter(turn.flow.first.id)


def _on_stop(turn: _Turn, _: Stop) -> None:
    if turn.conv.status == Status.STOPPED:
        turn.say(turn.text(Builtin.ALREADY_STOPPED))
        return
    turn.conv = turn.conv.with_(status=Status.STOPPED)
    turn.cancel_all = True
    turn.emit("opted_out")
    turn.say(turn.text(Builtin.STOPPED))


def _on_help(turn: _Turn, _: Help) -> None:
    if turn.conv.status == Status.ACTIVE and turn.conv.step is not None:
        turn.present(turn.current(), lead=turn.text(Builtin.HELP))
    else:
        turn.say(turn.text(Builtin.HELP))


def _closed(turn: _Turn) -> bool:
    """Say why nothing happens when the conversation is not active; True if so."""
    turn.revive()
    status = turn.conv.status
    if status == Status.ACTIVE and turn.conv.step is not None:
        return False
    said = {Status.STOPPED: Builtin.ALREADY_STOPPED, Status.PAUSED: Builtin.PAUSED}
    turn.say(turn.text(said.get(status, Builtin.FINISHED)))
    return True


def _on_text(turn: _Turn, event: Text) -> None:
    if turn.conv.status == Status.PAUSED:
        turn.actions.append(Relay(event.text))
        turn.emit("relayed")
        return
    if _closed(turn):
        return
    step = turn.current()
    kind = KINDS[step.kind]
    choices = kind.choices(turn, step)
    choice = match_choice(choices, event.text, by_number=kind.numbers_pick_choices)
    if choice is not None:
        turn.choose(step, choice)
    else:
        kind.on_text(turn, step, event.text, choices)


def _on_contact(turn: _Turn, event: ContactShared) -> None:
    if turn.conv.status == Status.PAUSED or _closed(turn):
        _on_text(turn, Text(event.phone))  # relayed while paused; a closed flow says so
        return
    step = turn.current()
    kind = KINDS[step.kind]
    kind.on_contact(turn, step, event, kind.choices(turn, step))


def _on_press(turn: _Turn, event: Press) -> None:
    if turn.conv.status == Status.PAUSED:
        turn.say(turn.text(Builtin.PAUSED))
        return
    pressed = f"{event.step}:{event.choice}"
    if turn.conv.status == Status.COMPLETED and pressed == turn.conv.pressed:
        turn.emit("stale_press", pressed=pressed)  # a second tap of the button that finished
        return
    if _closed(turn):
        return
    step = turn.current()
    choice = next((c for c in turn.choices(step) if c.id == event.choice), None)
    if event.step != step.id or choice is None:
        _stale_press(turn, step, pressed)
        return
    turn.choose(step, choice)
    turn.conv = turn.conv.with_(pressed=pressed)


def _stale_press(turn: _Turn, step: Step, pressed: str) -> None:
    """A button of an earlier question (the channel answers the press itself). The chat hears
    about it once per step, and not at all for a second tap of the button that led here."""
    conv = turn.conv
    turn.conv = conv.with_(stale_presses=conv.stale_presses + 1)
    turn.emit("stale_press", pressed=pressed)
    if conv.stale_presses == 0 and pressed != conv.pressed:
        turn.present(step, lead=turn.text(Builtin.STALE_PRESS))


def _on_link(turn: _Turn, event: LinkOpened) -> None:
    if event.step not in turn.flow.by_id:
        return
    turn.emit("link_opened", event.step)
    conv = turn.conv
    if conv.status not in (Status.ACTIVE, Status.DROPPED) or conv.step != event.step:
        return  # opened again later: recorded, nothing else changes
    step = turn.current()
    KINDS[step.kind].on_link(turn, step)


def _on_due(turn: _Turn, event: Due) -> None:
    timer, conv = event.timer, turn.conv
    if (owner := TIMER_OWNERS.get(timer.kind)) is not None:  # a reminder, a wait's timeout
        owner.on_timer(turn, timer)
        return
    if conv.status != Status.ACTIVE or conv.step != timer.step or conv.nudges + 1 != timer.seq:
        return  # the prospect moved on, or this timer was already handled
    step = turn.current()
    config = turn.follow_up_of(step)
    if config is None:
        return
    late = (turn.now - datetime.fromisoformat(timer.due)).total_seconds()
    turn.conv = conv.with_(nudges=timer.seq)
    if timer.kind == "drop":
        turn.conv = turn.conv.with_(status=Status.DROPPED)
        turn.emit("dropped")
        return
    if timer.stale_after is not None and late > timer.stale_after:
        turn.emit("follow_up_skipped", kind=timer.kind, seq=str(timer.seq), late=f"{late:.0f}")
    else:
        nudge = config.nudges[timer.seq - 1]
        turn.present(step, lead=turn.render(nudge.say))
        turn.emit("nudged", seq=str(timer.seq))
    turn.follow_up(step, timer.seq + 1)


def _on_reported(turn: _Turn, event: Reported) -> None:
    """The product reported a commitment: recorded once; at the step waiting for it, the
    prospect moves on."""
    name = event.event.value
    turn.emit("reported", event=name, by=event.source)
    conv = turn.conv
    if conv.status in (Status.ACTIVE, Status.DROPPED) and conv.step is not None:
        step = turn.current()
        if KINDS[step.kind].on_reported(turn, step, event):
            return
    if all(c.name != name for c in conv.commitments):
        turn.conv = conv.with_(
            commitments=(*conv.commitments, Commitment(name, conv.step or "", turn.at))
        )
        turn.emit("committed", commitment=name, score="0")
        turn.alert_on(name)


# --- the sales team's actions: each changes the conversation's lead, and is logged ---


def _lead(turn: _Turn, **changes: str) -> None:
    turn.conv = turn.conv.with_(lead=replace(turn.conv.lead, **changes))


def _on_claim(turn: _Turn, event: Claim) -> None:
    if not turn.conv.lead.claimed_by:  # the first claim wins; later ones change nothing
        _lead(turn, claimed_by=event.by)
        turn.emit("claimed", by=event.by)


def _on_take_over(turn: _Turn, event: TakeOver) -> None:
    if turn.conv.status in (Status.STOPPED, Status.PAUSED):
        return
    turn.conv = turn.conv.with_(status=Status.PAUSED)
    turn.cancel.append(turn.timer_id("nudge"))
    _on_claim(turn, Claim(event.by))
    _lead(turn, taken_by=event.by)
    turn.emit("paused", by=event.by)


def _on_reply(turn: _Turn, event: Reply) -> None:
    if turn.conv.status == Status.PAUSED and turn.conv.lead.taken_by == event.by:
        turn.say(event.text)
        turn.emit("replied", by=event.by)


def _on_hand_back(turn: _Turn, event: HandBack) -> None:
    if turn.conv.status != Status.PAUSED:
        if turn.conv.lead.taken_by:  # e.g. the prospect opted out meanwhile: the bot stays quiet
            _lead(turn, taken_by="")
            turn.emit("resumed", by=event.by)
        return
    _lead(turn, taken_by="")
    step = turn.current() if turn.conv.step else None
    if step is None or KINDS[step.kind].ends:
        turn.conv = turn.conv.with_(status=Status.COMPLETED)
        turn.emit("resumed", by=event.by)
        return
    turn.conv = turn.conv.with_(status=Status.ACTIVE, nudges=0, invalid=0)
    turn.emit("resumed", by=event.by)
    turn.present(step)
    turn.follow_up(step, seq=1)


_VERDICTS: dict[type, tuple[str, Outcome]] = {
    Won: ("won", Outcome.WON),
    Lost: ("lost", Outcome.LOST),
    NotAFit: ("not_a_fit", Outcome.DISQUALIFIED),
}


def _on_verdict(turn: _Turn, event: Won | Lost | NotAFit) -> None:
    """The sales team's word on the lead sets the outcome (the first verdict stands). Lost and
    not a fit end the conversation: no more follow-ups, reminders or take-over."""
    if turn.conv.lead.verdict_by:
        return
    name, outcome = _VERDICTS[type(event)]
    turn.conv = turn.conv.with_(outcome=outcome)
    _lead(turn, verdict_by=event.by)
    if outcome != Outcome.WON:
        turn.cancel_all = True
        _lead(turn, taken_by="")
        if turn.conv.status != Status.STOPPED:
            turn.conv = turn.conv.with_(status=Status.COMPLETED)
    turn.emit(name, by=event.by, outcome=outcome.value)


def _on_arrive(turn: _Turn, event: Arrive) -> None:
    if turn.conv.status == Status.ACTIVE and turn.conv.step == event.step:
        turn.enter(event.step)


_HANDLERS: dict[type, Callable[[_Turn, Any], None]] = {
    Start: _on_start,
    Restart: _on_restart,
    Stop: _on_stop,
    Help: _on_help,
    Text: _on_text,
    ContactShared: _on_contact,
    Press: _on_press,
    LinkOpened: _on_link,
    Due: _on_due,
    Claim: _on_claim,
    TakeOver: _on_take_over,
    HandBack: _on_hand_back,
    Reply: _on_reply,
    Won: _on_verdict,
    Lost: _on_verdict,
    NotAFit: _on_verdict,
    Arrive: _on_arrive,
    Reported: _on_reported,
}
