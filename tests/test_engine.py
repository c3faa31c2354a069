"""The engine, step by step, on a flow that uses every step kind (tests/data/ladder.yaml)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import engine, kinds
from bot.flow.compile import CompiledFlow, compile_flow
from bot.flow.loader import load_flow, parse_flow
from bot.flow.model import MAX_MESSAGES_IN_A_ROW, Flow, Route, Step, StepKind
from domain.model import (
    Alert,
    Button,
    Claim,
    Conversation,
    Due,
    Event,
    EventName,
    HandBack,
    Help,
    LinkButton,
    LinkOpened,
    Lost,
    NotAFit,
    Press,
    Profile,
    Relay,
    Restart,
    Say,
    SendCalendar,
    Start,
    Status,
    StepResult,
    Stop,
    TakeOver,
    Text,
    Timer,
    Won,
)

FLOW_FILE = Path(__file__).parent / "data" / "ladder.yaml"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Berlin


@pytest.fixture(scope="module")
def flow() -> CompiledFlow:
    return compile_flow(replace(load_flow(FLOW_FILE), version=1))


def new(flow: CompiledFlow, cid: str = "telegram:1") -> Conversation:
    return Conversation(
        id=cid, flow=flow.flow.name, version=1, profile=Profile(first_name="Pat"), source="ads"
    )


class Walk:
    """A prospect walking the flow: each `send` applies one event and keeps the result."""

    def __init__(self, flow: CompiledFlow, now: datetime = NOW, cid: str = "telegram:1") -> None:
        self.flow = flow
        self.now = now
        self.conv = new(flow, cid)
        self.last = StepResult(self.conv)

    def send(self, event: Event) -> StepResult:
        self.last = engine.step(self.flow, self.conv, event, self.now)
        self.conv = self.last.conversation
        return self.last

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.last.events]

    def says(self) -> list[Say]:
        return [a for a in self.last.actions if isinstance(a, Say)]

    def buttons(self) -> tuple[Button | LinkButton, ...]:
        return self.says()[-1].buttons


def test_start_greets_and_asks_with_buttons(flow: CompiledFlow) -> None:
    walk = Walk(flow)
    walk.send(Start())
    assert walk.conv.step == "welcome"
    assert walk.names == ["started", "step_reached"]
    say = walk.says()[0]
    assert say.text == "Hi Pat!\n\nWant our 2-minute ROI checklist?"
    assert [b.label for b in say.buttons] == ["Yes please", "Not now"]
    assert all(e.data["source"] == "ads" for e in walk.last.events)


def test_pressing_a_choice_commits_and_moves_on(flow: CompiledFlow) -> None:
    walk = Walk(flow)
    walk.send(Start())
    walk.send(Press("welcome", "yes-please"))
    assert walk.conv.step == "role"
    assert walk.names == ["answered", "committed", "step_reached"]
    assert walk.conv.commitments[0].name == "welcome_answered"
    assert walk.conv.score == 5


@pytest.mark.parametrize(
    "typed", ["Yes please", "  yes   PLEASE! ", "1", "yes pleas", "yes", "oh yes please, thanks"]
)
def test_typed_text_matches_a_choice(flow: CompiledFlow, typed: str) -> None:
    walk = Walk(flow)
    walk.send(Start())
    walk.send(Text(typed))
    assert walk.conv.step == "role"


def test_unexpected_text_reasks_with_a_hint_and_counts(flow: CompiledFlow) -> None:
    walk = Walk(flow)
    walk.send(Start())
    walk.send(Text("what is this about?"))
    assert walk.conv.step == "welcome"
    assert walk.names == ["invalid_input"]
    assert walk.says()[0].text.startswith("Sorry, I didn't catch that. Tap a button or type one")
    assert "Yes please, Not now" in walk.says()[0].text
    assert [b.label for b in walk.buttons()] == ["Yes please", "Not now"]
    walk.send(Text("hmm"))
    assert walk.conv.invalid == 2
    assert walk.last.events[0].data["count"] == "2"


def test_conditional_go_follows_the_saved_answer(flow: CompiledFlow) -> None:
    founder, other = Walk(flow), Walk(flow, cid="telegram:2")
    for walk, role in ((founder, "founder"), (other, "Marketer")):
        walk.send(Start())
        walk.send(Text("yes please"))
        walk.send(Text(role))
    assert founder.conv.step == "size"
    assert founder.conv.answers["role"] == "Founder"
    assert other.conv.step == "email"


def test_input_validation_hints_then_saves_the_normalised_value(flow: CompiledFlow) -> None:
    walk = Walk(flow)
    for event in (Start(), Text("yes please"), Text("Founder")):
        walk.send(event)
    walk.send(Text("lots"))
    assert walk.says()[0].text.startswith("Please answer with a number between 1 and 10000.")
    walk.send(Text("20000"))
    assert walk.says()[0].text.startswith("That number is out of range between 1 and 10000.")
    walk.send(Text("1,200"))
    assert walk.conv.answers["team_size"] == "1200"
    assert walk.conv.step == "email"
    walk.send(Text("pat@"))
    assert "doesn't look like an email" in walk.says()[0].text
    walk.send(Text("Pat@Example.COM"))
    assert walk.conv.answers["email"] == "Pat@example.com"
    assert walk.conv.step == "checklist"


def reach(flow: CompiledFlow, step: str, cid: str = "telegram:1") -> Walk:
    walk = Walk(flow, cid=cid)
    script: list[Event] = [Start(), Text("yes please"), Text("Other"), Text("pat@example.com")]
    for event in script:
        if walk.conv.step == step:
            break
        walk.send(event)
    if step in ("webinar", "trial", "done") and walk.conv.step == "checklist":
        walk.send(LinkOpened("checklist"))
    if step in ("trial", "done") and walk.conv.step == "webinar":
        walk.send(Press("webinar", "slot0"))
    assert walk.conv.step == step
    return walk


def test_resource_link_opened_is_the_commitment(flow: CompiledFlow) -> None:
    walk = reach(flow, "checklist")
    link = walk.buttons()[0]
    assert isinstance(link, LinkButton)
    assert (link.label, link.url) == ("Open the checklist", "https://example.com/checklist.pdf")
    walk.send(Text("ok"))
    assert walk.says()[0].text.startswith("Tap the button above to open it.")
    walk.send(LinkOpened("checklist"))
    assert walk.conv.step == "webinar"
    assert walk.conv.commitments[-1].name == "resource_opened"


def test_webinar_booking_sends_invite_sets_reminders_and_alerts(flow: CompiledFlow) -> None:
    walk = reach(flow, "webinar")
    labels = [b.label for b in walk.buttons()]
    assert labels == [
        "Tue 12 Jan, 16:00 (CET)",
        "Thu 14 Jan, 10:00 (CET)",
        "None of these work",
    ]
    walk.send(Press("webinar", "slot0"))
    calendar = [a for a in walk.last.actions if isinstance(a, SendCalendar)]
    assert [(c.title, c.start, c.minutes) for c in calendar] == [
        ("Test ladder", "2027-01-12T15:00:00+00:00", 30)
    ]
    reminders = [t for t in walk.last.schedule if t.kind == "reminder"]
    assert [(t.id, t.due) for t in reminders] == [
        ("telegram:1:reminder:test-ladder:webinar:0", "2027-01-11T15:00:00+00:00"),
        ("telegram:1:reminder:test-ladder:webinar:1", "2027-01-12T14:00:00+00:00"),
    ]
    assert Alert("webinar_booked", "#leads") in walk.last.actions
    assert walk.conv.step == "trial"


def test_trial_then_end_completes_and_alerts(flow: CompiledFlow) -> None:
    walk = reach(flow, "trial")
    link = walk.buttons()[0]
    assert isinstance(link, LinkButton)
    assert link.url == "https://app.example.com/signup?ref=telegram:1"
    walk.send(LinkOpened("trial"))
    assert walk.conv.status == Status.COMPLETED
    assert walk.names[-3:] == ["step_reached", "completed", "alerted"]
    assert walk.says()[-1].text == "Thank you, Pat!"
    assert Alert("completed", "#leads") in walk.last.actions
    assert "telegram:1:nudge" in walk.last.cancel
    walk.send(Text("hello?"))
    assert walk.says()[0].text.startswith("We're all done here")


def test_score_threshold_alerts_once(flow: CompiledFlow) -> None:
    walk = reach(flow, "webinar")  # welcome 5 + role 5 + email 10 + checklist 10
    assert walk.conv.score == 30
    walk.send(Press("webinar", "slot1"))  # + 30 crosses 40
    assert Alert("score", "#leads") in walk.last.actions
    walk.send(LinkOpened("trial"))
    assert Alert("score", "#leads") not in walk.last.actions


@pytest.mark.parametrize("press", [Press("welcome", "yes-please"), Press("role", "no-such-choice")])
def test_stale_and_forged_presses_change_nothing(flow: CompiledFlow, press: Press) -> None:
    walk = reach(flow, "role")
    before = walk.conv
    walk.send(press)
    assert walk.names == ["stale_press"]
    assert walk.says()[0].text.startswith("That button belongs to an earlier question.")
    assert walk.conv.step == before.step
    assert walk.conv.answers == before.answers


def test_a_double_tapped_button_says_nothing_more_in_the_chat(flow: CompiledFlow) -> None:
    walk = reach(flow, "welcome")
    walk.send(Press("welcome", "yes-please"))
    assert walk.conv.step == "role"
    for _ in range(2):  # the second and third tap of the same button
        walk.send(Press("welcome", "yes-please"))
        assert walk.names == ["stale_press"]  # recorded, and the channel answers the press
        assert walk.says() == []
    assert walk.conv.step == "role"


def test_earlier_buttons_pressed_again_and_again_are_explained_once_per_step(
    flow: CompiledFlow,
) -> None:
    walk = reach(flow, "role")
    said = []
    for press in [Press("welcome", "not-now"), Press("welcome", "yes-please")] * 2:
        walk.send(press)
        assert walk.names == ["stale_press"]
        said += [s.text for s in walk.says()]
    assert len(said) == 1 and said[0].startswith("That button belongs to an earlier question.")
    walk.send(Press("role", "other"))  # a new step: an old button is explained again
    walk.send(Press("welcome", "not-now"))
    assert walk.says()[0].text.startswith("That button belongs to an earlier question.")


def test_a_second_tap_of_the_button_that_finished_the_ladder_says_nothing(
    flow: CompiledFlow,
) -> None:
    walk = reach(flow, "trial")
    walk.send(Press("trial", "skip"))
    assert walk.conv.status == Status.COMPLETED
    walk.send(Press("trial", "skip"))
    assert walk.names == ["stale_press"] and walk.says() == []


def test_link_opened_again_later_is_recorded_only(flow: CompiledFlow) -> None:
    walk = reach(flow, "webinar")
    before = walk.conv
    walk.send(LinkOpened("checklist"))
    assert walk.names == ["link_opened"]
    assert walk.conv.step == before.step and walk.conv.commitments == before.commitments


def test_stop_opts_out_and_cancels_every_follow_up(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    walk.send(Stop())
    assert walk.conv.status == Status.STOPPED
    assert walk.last.cancel_all
    assert walk.names == ["opted_out"]
    walk.send(Text("Founder"))
    assert walk.conv.step == "role"
    assert walk.says()[0].text.startswith("You're unsubscribed")
    due = Timer("telegram:1:nudge", "telegram:1", "nudge", "2026-12-02T09:00:00+00:00", "role", 1)
    walk.send(Due(due))
    assert walk.last.actions == () and walk.last.events == ()


def test_restart_begins_again(flow: CompiledFlow) -> None:
    walk = reach(flow, "email")
    walk.send(Restart())
    assert walk.names[:3] == ["restarted", "started", "step_reached"]
    assert walk.conv.step == "welcome"
    assert walk.last.cancel_all


def test_help_explains_and_reasks(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    walk.send(Help())
    assert "/restart" in walk.says()[0].text
    assert walk.says()[0].text.endswith("What's your role?")


def test_first_text_of_a_new_prospect_starts_the_flow(flow: CompiledFlow) -> None:
    walk = Walk(flow)
    walk.send(Text("hi"))
    assert walk.conv.step == "welcome"
    assert walk.names[0] == "started"


def test_waiting_step_schedules_a_nudge_outside_quiet_hours(flow: CompiledFlow) -> None:
    evening = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)  # 21:30 in Berlin: quiet
    walk = Walk(flow, now=evening)
    walk.send(Start())
    (timer,) = walk.last.schedule
    assert (timer.id, timer.kind, timer.seq) == ("telegram:1:nudge", "nudge", 1)
    assert timer.due == "2026-12-03T07:00:00+00:00"  # 08:00 Berlin, the end of quiet hours
    assert timer.stale_after == 12 * 3600


def test_nudges_then_drop(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    (first,) = walk.last.schedule
    walk.now = datetime.fromisoformat(first.due)
    walk.send(Due(first))
    assert walk.names == ["nudged"]
    assert walk.says()[0].text.startswith("Still there, Pat?")
    (second,) = walk.last.schedule
    assert second.seq == 2
    walk.send(Due(first))  # the same timer again (a redelivery) does nothing
    assert walk.last.events == ()
    walk.now = datetime.fromisoformat(second.due)
    walk.send(Due(second))
    assert walk.says()[0].text.startswith("Last nudge from me.")
    (drop,) = walk.last.schedule
    assert drop.kind == "drop"
    assert datetime.fromisoformat(drop.due) - walk.now == timedelta(hours=48)
    walk.now = datetime.fromisoformat(drop.due)
    walk.send(Due(drop))
    assert walk.conv.status == Status.DROPPED
    assert walk.names == ["dropped"]
    walk.send(Text("sorry, busy week. I'm a founder"))  # back after all: picks up again
    assert walk.names[:2] == ["returned", "answered"]
    assert walk.conv.status == Status.ACTIVE
    assert walk.conv.step == "size"


def go_quiet(walk: Walk) -> None:
    """Let every follow-up at the current step fire until the prospect is dropped."""
    while walk.conv.status == Status.ACTIVE:
        (timer,) = walk.last.schedule
        walk.now = datetime.fromisoformat(timer.due)
        walk.send(Due(timer))
    assert walk.names == ["dropped"]


def test_a_dropped_prospect_who_opens_the_link_commits_and_is_asked_the_next_step(
    flow: CompiledFlow,
) -> None:
    walk = reach(flow, "checklist")
    go_quiet(walk)
    walk.send(LinkOpened("checklist"))
    assert walk.names[:4] == ["link_opened", "returned", "committed", "step_reached"]
    assert walk.conv.status == Status.ACTIVE
    assert walk.conv.step == "webinar"
    assert walk.conv.commitments[-1].name == "resource_opened"
    assert walk.buttons()[-1].label == "None of these work"  # asked the webinar step


def test_a_reply_replaces_the_pending_nudge(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    (stale,) = walk.last.schedule
    walk.send(Text("Other"))
    assert walk.conv.step == "email"
    assert [t.id for t in walk.last.schedule] == [stale.id]  # same id: replaces it
    walk.send(Due(stale))  # had it fired anyway, the step moved on
    assert walk.last.events == ()


def test_a_late_nudge_past_stale_after_is_skipped_and_recorded(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    (first,) = walk.last.schedule
    walk.now = datetime.fromisoformat(first.due) + timedelta(hours=13)
    walk.send(Due(first))
    assert walk.names == ["follow_up_skipped"]
    assert walk.says() == []
    assert walk.last.schedule[0].seq == 2


def test_reminders_fire_only_for_the_booking_they_belong_to(flow: CompiledFlow) -> None:
    walk = reach(flow, "webinar")
    walk.send(Press("webinar", "slot0"))
    day_before, hour_before = (t for t in walk.last.schedule if t.kind == "reminder")
    walk.now = datetime.fromisoformat(hour_before.due)
    walk.send(Due(hour_before))
    assert (
        walk.says()[0].text
        == "Reminder: Test ladder starts in 60 minutes, Tue 12 Jan, 16:00 (CET)."
    )
    walk.send(Restart())
    walk.send(Due(day_before))
    assert walk.last.events == ()


def test_variants_are_sticky_and_recorded(flow: CompiledFlow) -> None:
    seen = set()
    for n in range(40):
        walk = reach(flow, "webinar", cid=f"telegram:{n}")
        variant = walk.conv.variants["webinar"]
        seen.add(variant)
        assert walk.last.events[-1].data["variant"] == variant
        again = reach(flow, "webinar", cid=f"telegram:{n}")
        assert again.conv.variants["webinar"] == variant
        asked = walk.says()[-1].text
        assert asked.endswith("live demo?" if variant == "a" else "live in 30 minutes?")
    assert seen == {"a", "b"}


def test_take_over_pauses_relays_and_hand_back_resumes(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    walk.send(TakeOver(by="U1"))
    assert walk.conv.status == Status.PAUSED
    assert walk.names == ["claimed", "paused"]  # taking over an unclaimed lead claims it
    assert (walk.conv.lead.claimed_by, walk.conv.lead.taken_by) == ("U1", "U1")
    assert "telegram:1:nudge" in walk.last.cancel
    walk.send(Text("Can I talk to a human?"))
    assert Relay("Can I talk to a human?") in walk.last.actions
    assert walk.conv.step == "role"
    walk.send(HandBack(by="U1"))
    assert walk.conv.status == Status.ACTIVE
    assert walk.says()[0].text == "What's your role?"
    assert walk.last.schedule[0].kind == "nudge"
    assert (walk.conv.lead.claimed_by, walk.conv.lead.taken_by) == ("U1", "")


def test_the_first_claim_wins_and_is_logged_once(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    walk.send(Claim(by="slack:U1"))
    assert walk.names == ["claimed"] and walk.last.events[0].data["by"] == "slack:U1"
    before = walk.conv
    for by in ("slack:U2", "slack:U1"):
        walk.send(Claim(by=by))
        assert walk.names == [] and walk.conv == before


@pytest.mark.parametrize(
    ("verdict", "name", "outcome"),
    [(NotAFit, "not_a_fit", "disqualified"), (Lost, "lost", "lost")],
)
def test_not_a_fit_and_lost_end_the_conversation_and_its_follow_ups(
    flow: CompiledFlow, verdict: type[NotAFit | Lost], name: str, outcome: str
) -> None:
    walk = reach(flow, "webinar")
    walk.send(Press("webinar", "slot0"))  # a booking: reminders are pending
    walk.send(verdict(by="slack:U1"))
    assert walk.names == [name] and walk.last.events[0].data["outcome"] == outcome
    assert walk.last.cancel_all  # nudges and webinar reminders
    assert (walk.conv.status, walk.conv.outcome, walk.conv.lead.verdict_by) == (
        Status.COMPLETED, outcome, "slack:U1"
    )  # fmt: skip
    walk.send(Won(by="slack:U2"))  # the first verdict stands
    assert walk.names == [] and walk.conv.outcome == outcome
    walk.send(Text("hello?"))
    assert walk.says()[0].text.startswith("We're all done here") and walk.last.schedule == ()


def test_won_records_the_outcome_and_the_ladder_goes_on(flow: CompiledFlow) -> None:
    walk = reach(flow, "role")
    walk.send(Won(by="slack:U1"))
    assert walk.names == ["won"] and not walk.last.cancel_all
    assert (walk.conv.status, walk.conv.outcome) == (Status.ACTIVE, "won")
    walk.send(Restart())  # a new run: no verdict yet, the claim (none here) stays
    assert walk.conv.outcome is None and walk.conv.lead.verdict_by == ""


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(max_size=40), max_size=12),
    presses=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=4),
)
def test_no_input_text_crashes_the_engine_or_corrupts_state(
    flow: CompiledFlow, texts: list[str], presses: list[tuple[str, str]]
) -> None:
    walk = Walk(flow)
    walk.send(Start())
    events: list[Event] = [Text(t) for t in texts] + [Press(s, c) for s, c in presses]
    for event in events:
        walk.send(event)
        assert walk.conv.step in flow.flow.by_id
        repeated_stale_press = walk.names == ["stale_press"]  # the channel answers the press
        assert walk.says() or walk.conv.status != Status.ACTIVE or repeated_stale_press
        assert all(e.conversation == "telegram:1" for e in walk.last.events)


def test_a_number_typed_at_a_number_input_is_the_answer_not_a_button(flow: CompiledFlow) -> None:
    walk = Walk(flow)
    for event in (Start(), Text("yes please"), Text("Founder")):
        walk.send(event)
    assert [b.label for b in walk.buttons()] == ["Rather not say"]
    walk.send(Text("1"))
    assert walk.conv.answers["team_size"] == "1"
    skipper = Walk(flow, cid="telegram:2")
    for event in (Start(), Text("yes please"), Text("Founder"), Text("rather not say")):
        skipper.send(event)
    assert skipper.conv.step == "email"
    assert "team_size" not in skipper.conv.answers


def test_every_event_the_engine_emits_is_a_known_domain_event() -> None:
    sources = [Path(engine.__file__), *Path(kinds.__file__).parent.glob("*.py")]
    emitted = {
        name
        for source in sources
        for name in re.findall(r'emit\(\s*"([a-z_]+)"', source.read_text())
    }
    assert emitted and emitted <= set(EventName)


@pytest.mark.parametrize(
    ("zone", "due"),
    [
        ("America/New_York", "2026-12-02T20:30:00+00:00"),  # 15:30 there: not quiet
        ("Mars/Olympus_Mons", "2026-12-03T07:00:00+00:00"),  # unknown: the flow's Berlin
    ],
)
def test_a_prospects_own_time_zone_decides_quiet_hours(
    flow: CompiledFlow, zone: str, due: str
) -> None:
    walk = Walk(flow, now=datetime(2026, 12, 1, 20, 30, tzinfo=UTC))
    walk.conv = walk.conv.with_(answers={"timezone": zone})
    walk.send(Start())
    assert walk.last.schedule[0].due == due


def test_webinar_times_are_shown_in_the_prospects_time_zone(flow: CompiledFlow) -> None:
    walk = reach(flow, "webinar")
    walk.conv = walk.conv.with_(profile=Profile(first_name="Pat", timezone="America/New_York"))
    walk.send(Help())
    assert [b.label for b in walk.buttons()][:2] == [
        "Tue 12 Jan, 10:00 (EST)",
        "Thu 14 Jan, 04:00 (EST)",
    ]


def test_a_run_of_message_steps_longer_than_validation_allows_never_fails_a_turn() -> None:
    """Built without the loader (which rejects it): 70 message steps in a row. The engine says
    MAX_MESSAGES_IN_A_ROW of them, rests at the next one, and goes on at the next message."""
    talk = [Step(f"m{i}", StepKind.MESSAGE, say=f"Note {i}") for i in range(70)]
    long_flow = compile_flow(
        Flow("talk", "Talk", (*talk, Step("done", StepKind.END, say="Bye")), version=1)
    )
    walk = Walk(long_flow)
    walk.send(Start())
    assert [s.text for s in walk.says()] == [f"Note {i}" for i in range(MAX_MESSAGES_IN_A_ROW)]
    assert walk.conv.step == f"m{MAX_MESSAGES_IN_A_ROW}"
    assert walk.conv.status == Status.ACTIVE
    walk.send(Text("and?"))
    assert [s.text for s in walk.says()] == [
        *(f"Note {i}" for i in range(MAX_MESSAGES_IN_A_ROW, 70)),
        "Bye",
    ]
    assert walk.conv.status == Status.COMPLETED


def test_a_message_loop_built_without_the_loader_never_fails_a_turn() -> None:
    loop = Flow(
        "loop",
        "Loop",
        (Step("a", StepKind.MESSAGE, say="A", routes=(Route("a"),)),),
        version=1,
    )
    walk = Walk(compile_flow(loop))
    walk.send(Start())
    assert len(walk.says()) == MAX_MESSAGES_IN_A_ROW
    walk.send(Text("hello"))
    assert len(walk.says()) == MAX_MESSAGES_IN_A_ROW
    assert walk.conv.step == "a"


def test_a_number_inside_a_sentence_is_taken_and_said_back(flow: CompiledFlow) -> None:
    """ "12 reps" at a number question: the answer is 12, and the bot says what it understood
    before asking on; two numbers are still a question back."""
    walk = Walk(flow)
    for event in (Start(), Text("yes please"), Text("Founder")):
        walk.send(event)
    walk.send(Text("12 or 13"))
    assert walk.conv.step == "size"
    assert walk.says()[0].text.startswith("Please answer with a number between 1 and 10000.")
    walk.send(Text("12 reps"))
    assert walk.conv.answers["team_size"] == "12"
    assert walk.conv.step == "email"
    assert [s.text for s in walk.says()] == [
        "Got it: 12.",
        "Where should we send it?",
    ]
    plain = Walk(flow, cid="telegram:2")
    for event in (Start(), Text("yes please"), Text("Founder"), Text("1,200")):
        plain.send(event)
    assert plain.conv.answers["team_size"] == "1200"
    assert [s.text for s in plain.says()] == ["Where should we send it?"]  # nothing to say back


def test_the_longest_run_validation_allows_is_said_in_one_turn() -> None:
    """Validation and engine agree: a run of exactly MAX_MESSAGES_IN_A_ROW message steps loads,
    and the engine says all of it and asks the step after it in the same turn."""
    notes = "".join(f"  - {{id: m{i}, say: 'Note {i}'}}\n" for i in range(MAX_MESSAGES_IN_A_ROW))
    text = f"flow: talk\nsteps:\n{notes}  - {{id: name, ask: 'Name?'}}\n  - {{id: d, kind: end}}\n"
    walk = Walk(compile_flow(replace(parse_flow(text), version=1)))
    walk.send(Start())
    assert [s.text for s in walk.says()] == [
        *(f"Note {i}" for i in range(MAX_MESSAGES_IN_A_ROW)),
        "Name?",
    ]
    assert walk.conv.step == "name"


# --- outcomes: what an end means, and which ends tell the sales team ---------------------------

SHIPPED = Path(__file__).parents[1] / "flows" / "webinar-ladder.yaml"


@pytest.fixture(scope="module")
def shipped() -> CompiledFlow:
    return compile_flow(replace(load_flow(SHIPPED), version=1))


def alerts(result: StepResult) -> list[str]:
    return [a.reason for a in result.actions if isinstance(a, Alert)]


def test_not_now_ends_declined_and_raises_no_completed_alert(shipped: CompiledFlow) -> None:
    walk = Walk(shipped)
    walk.send(Start())
    walk.send(Text("Not now"))
    assert (walk.conv.status, walk.conv.step, walk.conv.outcome) == (
        Status.COMPLETED, "later", "declined"
    )  # fmt: skip
    [completed] = [e for e in walk.last.events if e.name == "completed"]
    assert completed.data["outcome"] == "declined"
    assert alerts(walk.last) == []


def test_the_score_threshold_holds_for_every_alert_reason(shipped: CompiledFlow) -> None:
    """score_at_least: 60. A marketer who skips the email books with 50 points: the booking and
    the won ending are recorded, but no alert of any reason goes to the sales team."""
    walk = Walk(shipped)
    raised: list[str] = []
    for event in (Start(), Text("Yes please"), Text("Marketer"), Press("email", "skip"),
                  LinkOpened("checklist"), Press("webinar", "slot0")):  # fmt: skip
        raised += alerts(walk.send(event))
    assert (walk.conv.score, walk.conv.step, walk.conv.outcome) == (50, "done", "won")
    assert "webinar_booked" in [c.name for c in walk.conv.commitments]
    assert raised == []


def test_a_won_ending_over_the_threshold_alerts_once_per_reason(shipped: CompiledFlow) -> None:
    walk = Walk(shipped)
    raised: list[str] = []
    script = (Start(), Text("Yes please"), Text("Founder"), Text("12"), Text("pat@example.com"),
              LinkOpened("checklist"), Press("webinar", "slot0"))  # fmt: skip
    for event in script:
        raised += alerts(walk.send(event))
    assert walk.conv.outcome == "won" and walk.conv.score >= 60
    assert raised == ["webinar_booked", "score", "completed"]


def test_old_conversations_without_an_outcome_load() -> None:
    stored = (
        Conversation(id="telegram:9", flow="f", version=1).to_json().replace(',"outcome":null', "")
    )
    assert "outcome" not in stored
    assert Conversation.from_json(stored).outcome is None
