"""The flow loader: every step kind and validator parses and is normalised; every structural
problem is reported at its file:line:col; any text gives a Flow or FlowErrors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent, indent

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.flow.grammar import parse_duration
from bot.flow.loader import load_flow, parse_flow, validate_paths
from bot.flow.model import Condition, Flow, FollowUp, Nudge, Route, StepKind, Validator, Variant
from bot.flow.steps import slug
from domain.errors import FlowErrors
from tests.flow.conftest import EXAMPLES
from tests.flow.strategies import flow_yaml

Problems = Callable[[str], list[str]]
Load = Callable[[str], Flow]

HEAD = "flow: t\nsteps:\n"  # steps then start on line 3


def with_steps(steps: str) -> str:
    """A flow `t` whose steps (written flush left) start on line 3, indented by two."""
    return HEAD + indent(dedent(steps), "  ")


# --- the example flows ----------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_flows_load(path: Path) -> None:
    flow = load_flow(path)
    assert flow.file == str(path)
    assert flow.source == path.read_text(encoding="utf-8")
    assert flow.alerts.slack_channel and flow.follow_up and flow.follow_up.nudges
    assert any(r.when for s in flow.steps for r in s.routes), "a conditional go"


def test_examples_use_every_step_kind() -> None:
    kinds = {s.kind for path in EXAMPLES for s in load_flow(path).steps}
    assert kinds == set(StepKind)
    assert {load_flow(p).name for p in EXAMPLES} == {"webinar-ladder", "free-trial"}


def test_example_webinar_slots_are_in_the_future() -> None:
    flow = load_flow(next(p for p in EXAMPLES if p.name == "webinar-ladder.yaml"))
    slots = [slot for s in flow.steps for slot in s.slots]
    assert slots and min(slots) > datetime(2026, 12, 31, tzinfo=UTC)


# --- every step kind, normalised ------------------------------------------------------------


def test_survey_choices_from_strings_and_mappings(flow: Load) -> None:
    loaded = flow(
        with_steps("""\
          - id: welcome
            kind: question
            ask: "Want our checklist?"
            choices:
              - Yes please!
              - {label: "Not now", id: later, value: no, go: bye, commit: false}
              - "Café crème, s'il vous plaît — a very long label indeed"
            save_as: interest
          - id: bye
            kind: end
        """)
    )
    welcome = loaded.step("welcome")
    assert welcome.kind == StepKind.SURVEY
    yes, later, cafe = welcome.choices
    assert (yes.id, yes.label, yes.value, yes.commits, yes.routes) == (
        "yes-please", "Yes please!", "Yes please!", True, ()
    )  # fmt: skip
    assert (later.id, later.value, later.commits) == ("later", "no", False)
    assert later.routes == (Route("bye"),)
    assert cafe.id == "cafe-creme-s-il-vous-pla"  # accents dropped, 24 characters at most
    assert (welcome.commitment, welcome.score, welcome.save_as) == (
        "welcome_answered",
        5,
        "interest",
    )
    assert loaded.title == "t" and loaded.timezone == "UTC"


def test_default_kinds(flow: Load) -> None:
    loaded = flow(
        with_steps("""\
          - {id: a, ask: "Pick one", choices: [x, y]}
          - {id: b, ask: "Your name?"}
          - {id: c, say: "Thanks!"}
          - {id: d, kind: end}
        """)
    )
    assert [s.kind for s in loaded.steps] == [
        StepKind.SURVEY, StepKind.INPUT, StepKind.MESSAGE, StepKind.END
    ]  # fmt: skip
    assert loaded.step("b").validator == Validator("text")
    assert (loaded.step("b").commitment, loaded.step("b").score) == ("b_given", 10)
    assert (loaded.step("c").commitment, loaded.step("c").score) == (None, 0)


def test_input_validators(flow: Load) -> None:
    loaded = flow(
        with_steps("""\
          - {id: email, ask: "Email?", validate: email, save_as: email}
          - {id: phone, ask: "Phone?", validate: phone}
          - {id: size, ask: "Team size?", validate: {type: number, min: 1, max: 500, hint: "1-500"}}
          - {id: about, ask: "Tell me", validate: {type: text, min: 2, max: 200}}
          - {id: plain, ask: "Anything", validate: text}
          - {id: done, kind: end}
        """)
    )
    validators = [s.validator for s in loaded.steps[:5]]
    assert validators == [
        Validator("email"),
        Validator("phone"),
        Validator("number", 1, 500, "1-500"),
        Validator("text", 2, 200),
        Validator("text"),
    ]
    assert loaded.step("email").commitment == "email_given"  # named after save_as
    assert loaded.step("phone").commitment == "phone_given"


def test_resource_trial_webinar(flow: Load, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "guide.pdf").write_bytes(b"%PDF-1.4")
    loaded = flow(
        with_steps("""\
          - id: guide
            kind: resource
            ask: "Here it is"
            url: https://example.com/guide.pdf
            document: files/guide.pdf
            choices: [{label: Skip, id: skip}]
          - id: demo
            kind: webinar
            ask: "Join the demo?"
            slots: [2027-03-04T16:00:00+01:00, "2027-03-05 10:00:00Z"]
            duration: 1h30m
            reminders: [1h, 24h]
          - id: trial
            kind: trial
            ask: "Start a trial?"
            url: "https://app.example.com/signup?ref={conversation_id}"
            button: Start now
          - {id: done, kind: end, say: "Bye {first_name}"}
        """)
    )
    guide, demo, trial, done = loaded.steps
    assert (guide.url, guide.button, guide.document) == (
        "https://example.com/guide.pdf", None, "files/guide.pdf"
    )  # fmt: skip
    assert (guide.commitment, guide.score) == ("resource_opened", 10)
    assert guide.choices[0].commits is False  # an extra way on records no commitment
    assert demo.slots == (
        datetime(2027, 3, 4, 15, tzinfo=UTC),
        datetime(2027, 3, 5, 10, tzinfo=UTC),
    )
    assert demo.duration == timedelta(minutes=90)
    assert demo.reminders == (timedelta(hours=24), timedelta(hours=1))  # latest first
    assert (demo.commitment, demo.score) == ("webinar_booked", 30)
    assert (trial.button, trial.commitment, trial.score) == ("Start now", "trial_started", 40)
    assert done.say == "Bye {first_name}"


def test_conditional_go(flow: Load) -> None:
    loaded = flow(
        with_steps("""\
          - {id: role, ask: "Role?", choices: [Founder, Other], save_as: role}
          - id: size
            ask: "Size?"
            save_as: size
            go:
              - {if: {role: Founder, size: {gte: 50, lt: 1000}}, to: big}
              - {if: {role: [Founder, CEO]}, to: small}
              - {if: {size: {set: false}}, to: small}
              - to: big
          - {id: small, kind: end, outcome: nurture}
          - {id: big, kind: end, outcome: won}
        """)
    )
    routes = loaded.step("size").routes
    assert [r.to for r in routes] == ["big", "small", "small", "big"]
    assert routes[0].when == (
        Condition("role", "eq", "Founder"),
        Condition("size", "gte", 50.0),
        Condition("size", "lt", 1000.0),
    )
    assert routes[1].when == (Condition("role", "in", ("Founder", "CEO")),)
    assert routes[2].when == (Condition("size", "set", False),)
    assert routes[0].pos.line == 8 and routes[0].pos.col == 62  # the `to` value


def test_follow_up_short_form_becomes_nudges(flow: Load) -> None:
    loaded = flow(
        dedent("""\
        flow: t
        timezone: Europe/Berlin
        follow_up:
          after: 1h30m
          max: 3
          say: ["one", "two"]
          quiet_hours: "21:00-08:00"
          stale_after: 2h
        steps:
          - {id: a, ask: "Name?"}
          - {id: b, ask: "Email?", follow_up: {after: 10m, say: "still there?"}}
          - {id: c, ask: "Phone?", follow_up: false}
          - {id: d, kind: end}
        """)
    )
    hour = timedelta(minutes=90)
    assert loaded.follow_up == FollowUp(
        nudges=(Nudge(hour, "one"), Nudge(hour, "two"), Nudge(hour, "one")),
        drop_after=hour,
        quiet_hours=(21 * 60, 8 * 60),
        timezone="Europe/Berlin",
        stale_after=timedelta(hours=2),
    )
    assert loaded.step("a").follow_up is None  # the flow's applies
    assert loaded.step("b").follow_up == FollowUp(
        nudges=(Nudge(timedelta(minutes=10), "still there?"),),
        drop_after=timedelta(minutes=10),
        quiet_hours=(21 * 60, 8 * 60),  # kept from the flow's
        timezone="Europe/Berlin",
        stale_after=timedelta(hours=2),
    )
    assert loaded.step("c").follow_up == FollowUp(timezone="Europe/Berlin")  # switched off


def test_follow_up_long_form_and_variants(flow: Load) -> None:
    loaded = flow(
        dedent("""\
        flow: t
        follow_up:
          nudges: [{after: 1d, say: "a"}, {after: 3d, say: "b"}]
          drop_after: 1w
        migrate: {old: a}
        steps:
          - id: a
            ask: "Name?"
            variants: [{id: short, ask: "Name?"}, {id: long, ask: "What's your name?", weight: 3}]
          - {id: d, kind: end}
        """)
    )
    assert loaded.follow_up is not None
    assert loaded.follow_up.nudges == (
        Nudge(timedelta(days=1), "a"),
        Nudge(timedelta(days=3), "b"),
    )
    assert loaded.follow_up.drop_after == timedelta(weeks=1)
    assert loaded.migrate == {"old": "a"}
    assert loaded.step("a").variants == (
        Variant("short", "Name?"),
        Variant("long", "What's your name?", 3.0),
    )


def test_yaml_words_stay_text(flow: Load) -> None:
    """`yes`, `no`, `on` and numbers are labels as written, not booleans or integers."""
    loaded = flow(
        with_steps("""\
          - {id: a, ask: "Ready?", choices: [yes, no, on, 1.0, 2027-01-01]}
          - {id: d, kind: end}
        """)
    )
    assert [c.label for c in loaded.step("a").choices] == ["yes", "no", "on", "1.0", "2027-01-01"]


def test_helpers() -> None:
    assert parse_duration("1w2d3h4m5s") == timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)
    assert parse_duration("1h 30m") == timedelta(minutes=90)
    assert parse_duration("") is None
    assert parse_duration("24") is None
    assert parse_duration("3m1h") is None  # units largest first
    assert slug("🚀", "c1") == "c1"
    assert slug("  Sales lead ", "c1") == "sales-lead"


# --- structural problems, each at its exact place --------------------------------------------


def test_yaml_syntax_error(problems: Problems) -> None:
    assert problems("flow: t\nsteps:\n  - id: a\n   ask: x\n") == [
        "x.yaml:4:4: YAML syntax: expected <block end>, but found '<block mapping start>'"
    ]
    assert problems("flow: [t\n") == [
        "x.yaml:2:1: YAML syntax: expected ',' or ']', but got '<stream end>'"
    ]


def test_not_a_flow(problems: Problems) -> None:
    assert problems("") == ["x.yaml:1:1: the file is empty: a flow needs `flow:` and `steps:`"]
    assert problems("- a\n- b\n") == ["x.yaml:1:1: expected a mapping (key: value), got a list"]
    assert problems("title: x\n") == [
        "x.yaml:1:1: missing `flow`",
        "x.yaml:1:1: missing `steps`",
    ]
    assert problems("flow: t\nsteps: []\n") == [
        "x.yaml:2:8: `steps` should be a list of steps, got a list"
    ]


def test_unknown_keys_with_suggestions(problems: Problems) -> None:
    text = dedent("""\
        flow: t
        titel: T
        steps:
          - id: a
            ask: "Name?"
            sav_as: name
          - {id: b, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:2:1: unknown key 'titel' (did you mean 'title'?)",
        "x.yaml:6:5: step 'a': unknown key 'sav_as' (did you mean 'save_as'?)",
    ]


def test_flow_level_values(problems: Problems) -> None:
    text = dedent("""\
        flow: Webinar_Ladder
        flow: again
        timezone: Europe/Berlinn
        alerts: {slack_channel: "#x", on: [completd], score_at_least: -1}
        follow_up: {after: 24, say: hi, quiet_hours: "25:00-08:00", drop_after: 0m}
        migrate: {gone: nowhere, a: a}
        steps:
          - {id: a, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:1:7: `flow` 'Webinar_Ladder' should be 1 to 32 lowercase letters, digits or '-'"
        " (it goes into /start links)",
        "x.yaml:2:1: key 'flow' is given twice",
        "x.yaml:3:11: unknown time zone 'Europe/Berlinn' (did you mean 'Europe/Berlin'?)",
        "x.yaml:4:36: alerts: 'completd' is neither an event nor a commitment of this flow"
        " (did you mean 'completed'?)",
        "x.yaml:4:63: alerts: `score_at_least` should be at least 0, got -1",
        "x.yaml:5:20: follow_up: `after` '24' is not a duration: write a number with a unit,"
        " like 30s, 15m, 24h, 2d, 1w or 1h30m",
        "x.yaml:5:46: follow_up: `quiet_hours` '25:00-08:00' should be two different times like"
        ' "21:00-08:00" (24-hour clock, from-to)',
        "x.yaml:5:73: follow_up: `drop_after` should be longer than zero",
        "x.yaml:6:17: migrate: 'gone' moves to 'nowhere', which is not a step",
        "x.yaml:6:26: migrate: 'a' is still a step; only removed steps move",
    ]


def test_step_problems(problems: Problems) -> None:
    text = with_steps("""\
          - id: Welcome
          - id: a
            kind: surveyy
            ask: [not, text]
            choices: [x]
          - id: a
            kind: end
          - kind: end
          - id: b
            url: https://example.com
            reminders: [1h]
          - {id: c, kind: webinar, ask: "When?", slots: ["2027-01-01T10:00:00"]}
          - {id: d, kind: trial, ask: "Go?", url: "ftp://x"}
          - {id: e, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:3:9: step 1: `id` 'Welcome' should be lowercase letters, digits, '_' or '-'",
        "x.yaml:5:11: step 'a': unknown kind 'surveyy' (did you mean 'survey'?); use one of"
        " survey, input, contact, resource, webinar, trial, message, end",
        "x.yaml:6:10: step 'a': `ask` should be text, got a list",
        "x.yaml:8:5: step 'a': this id is used by an earlier step too",
        "x.yaml:10:5: step 4: missing `id`",
        "x.yaml:11:5: step 'b': a message step needs `say` or `ask` (what it sends)",
        "x.yaml:12:5: step 'b': `url` only applies to resource or trial steps (without `kind:`"
        " this is a message step)",
        "x.yaml:13:5: step 'b': `reminders` only applies to webinar steps (without `kind:` this"
        " is a message step)",
        "x.yaml:14:50: step 'c': slot '2027-01-01T10:00:00' has no time zone: add one, like"
        " 2027-01-01T10:00:00+01:00",
        "x.yaml:15:43: step 'd': url 'ftp://x' should start with https://",
    ]


def test_missing_keys_per_kind(problems: Problems) -> None:
    text = with_steps("""\
          - {id: b, kind: input}
          - {id: c, kind: resource, ask: "Here"}
          - {id: d, kind: webinar, ask: "When?"}
          - {id: e, kind: trial}
          - {id: f, kind: message}
          - {id: g, kind: end}
          - {id: a, kind: survey, ask: "?"}
        """)
    assert problems(text) == [
        "x.yaml:3:5: step 'b': an input step needs `ask`",
        "x.yaml:4:5: step 'c': a resource step needs `url`",
        "x.yaml:5:5: step 'd': a webinar step needs `slots`",
        "x.yaml:6:5: step 'e': a trial step needs `ask`",
        "x.yaml:6:5: step 'e': a trial step needs `url`",
        "x.yaml:7:5: step 'f': a message step needs `say` or `ask` (what it sends)",
        "x.yaml:9:5: step 'a': a survey step needs `choices`",
        "x.yaml:9:10: step 'a' is unreachable: no choice or go leads to it from 'b'",
    ]


def test_choice_problems(problems: Problems) -> None:
    long = "A label far too long for one Telegram button, it goes on and on and on"
    long_id = "x" * 40
    text = with_steps(f"""\
          - id: question-with-a-long-id
            ask: "Pick"
            choices:
              - Yes
              - "yes"
              - {{label: Sure, id: "yes"}}
              - "{long}"
              - {{label: Fine, id: {long_id}}}
              - {{label: Okay, id: "Bad Id"}}
          - id: email
            kind: input
            ask: "Email?"
            choices: [{{label: Skip, commit: true}}]
          - id: w
            kind: webinar
            ask: "?"
            slots: ["2027-01-01T10:00Z"]
            choices: [{{label: x, id: slot-x}}]
          - {{id: e, kind: end}}
        """)
    assert problems(text) == [
        "x.yaml:7:9: step 'question-with-a-long-id': choice 'yes' is listed twice in this step",
        "x.yaml:8:9: step 'question-with-a-long-id': choice id 'yes' is used twice in this step"
        " (give one an `id`)",
        "x.yaml:9:9: step 'question-with-a-long-id': choice 'A label far too long'... is 70"
        " characters; a Telegram button fits 64",
        "x.yaml:10:27: step 'question-with-a-long-id': step id + choice id"
        f" '{long_id}' are 63 bytes; a Telegram button fits 52 (shorten one, or set the choice's"
        " `id`)",
        "x.yaml:11:27: step 'question-with-a-long-id': `choice id` 'Bad Id' should be lowercase"
        " letters, digits, '_' or '-'",
        "x.yaml:15:37: step 'email': choice 'Skip': buttons on this kind of step are extra ways"
        ' on (like "Skip") and record no commitment; remove `commit: true`',
        "x.yaml:20:15: step 'w': choice id 'slot-x': ids starting with 'slot' are kept for the"
        " webinar's slots",
    ]


def test_value_types(problems: Problems) -> None:
    text = with_steps("""\
          - id: a
            ask: "Size?"
            validate: {type: numbr, min: x}
            score: lots
            commitment: Big Yes
            save_as: first_name
          - id: b
            ask: "Name?"
            validate: {type: text, min: 5, max: 2.5}
            follow_up: {after: 1h, say: hi, max: 0, nudges: []}
          - id: c
            ask: "Email?"
            validate: {type: email, max: 3}
            variants: [{id: v, ask: "Mail?", weight: 0}, {id: v, ask: "E-mail?"}]
            save_as: email
          - id: d
            kind: webinar
            ask: "When?"
            slots: [tomorrow, "2027-01-01T10:00Z", "2027-01-01T11:00+01:00"]
            duration: forever
            reminders: [1x]
          - {id: e, kind: end, go: a}
        """)
    assert problems(text) == [
        "x.yaml:5:22: step 'a': unknown validator 'numbr' (did you mean 'number'?); use one of"
        " date, email, number, phone, text",
        "x.yaml:5:34: step 'a': `min` should be a number, got 'x'",
        "x.yaml:6:12: step 'a': `score` should be a whole number, got 'lots'",
        "x.yaml:7:17: step 'a': `commitment` 'Big Yes' should be lowercase letters, digits, '_'"
        " or '-'",
        "x.yaml:8:14: step 'a': 'first_name' is a built-in variable: save under another name",
        "x.yaml:11:41: step 'b': `max` of a text is a length: a whole number of characters, 0 or"
        " more",
        "x.yaml:12:17: step 'b': follow_up: `after` and `nudges` do not mix: use one",
        "x.yaml:12:28: step 'b': follow_up: `say` and `nudges` do not mix: use one",
        "x.yaml:12:37: step 'b': follow_up: `max` and `nudges` do not mix: use one",
        "x.yaml:12:53: step 'b': follow_up: `nudges` is empty",
        "x.yaml:15:29: step 'c': `max` only applies to number, text and date",
        "x.yaml:16:46: step 'c': `weight` should be above zero",
        "x.yaml:16:55: step 'c': variant id 'v' is used twice",
        "x.yaml:21:13: step 'd': slot 'tomorrow' is not a date and time like"
        " 2027-03-04T16:00:00+01:00",
        "x.yaml:21:44: step 'd': slot '2027-01-01T11:00+01:00' is listed twice",
        "x.yaml:22:15: step 'd': `duration` 'forever' is not a duration: write a number with a"
        " unit, like 30s, 15m, 24h, 2d, 1w or 1h30m",
        "x.yaml:23:17: step 'd': `reminders` '1x' is not a duration: write a number with a unit,"
        " like 30s, 15m, 24h, 2d, 1w or 1h30m",
        "x.yaml:24:24: step 'e': `go` only applies to survey, input, contact, resource, webinar,"
        " trial or message steps",
    ]


def test_text_too_long(problems: Problems) -> None:
    text = HEAD + f'  - {{id: a, say: "{"x" * 4097}"}}\n  - {{id: b, kind: end}}\n'
    assert problems(text) == [
        "x.yaml:3:18: step 'a': `say` is 4097 characters; Telegram allows 4096"
    ]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FlowErrors) as missing:
        load_flow(tmp_path / "nope.yaml")
    assert (
        str(missing.value)
        == f"{tmp_path / 'nope.yaml'}:1:1: cannot read the file: No such file or directory"
    )
    with pytest.raises(FlowErrors) as folder:
        load_flow(tmp_path)
    assert str(folder.value) == f"{tmp_path}:1:1: is a folder, not a flow file"
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00flow")
    with pytest.raises(FlowErrors) as undecodable:
        load_flow(binary)
    assert str(undecodable.value) == f"{binary}:1:1: cannot read the file: it is not UTF-8 text"


def test_document_must_exist_and_stay_inside(problems: Problems) -> None:
    text = with_steps("""\
          - {id: a, kind: resource, ask: "Here", url: "https://x.io", document: files/a.pdf}
          - {id: b, kind: resource, ask: "Here", url: "https://x.io", document: ../secret.pdf}
          - {id: e, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:4:73: step 'b': document '../secret.pdf' should be a path inside the flow's"
        " folder, like files/checklist.pdf",
    ]
    fixed = text.replace("document: ../secret.pdf", "go: e")
    assert problems(fixed) == [
        "x.yaml:3:10: step 'a': document 'files/a.pdf' does not exist next to the flow file"
    ]


MORE_PROBLEMS = (
    "flow: t\n"
    "alerts: [x]\n"
    "follow_up: {max: 2}\n"
    "migrate: [a]\n"
    "steps:\n"
    "  - id: a\n"
    '    say: ""\n'
    "    go: {x: y}\n"
    "  - id: b\n"
    '    ask: "Pick"\n'
    "    choices: {x: y}\n"
    "  - id: c\n"
    '    ask: "Pick"\n'
    "    choices:\n"
    '      - ""\n'
    "      - {label: Ok, commit: yes, go: []}\n"
    "      - {label: No, go: [{if: [x], to: d}, {go: d}]}\n"
    "      - {label: Maybe, go: [{if: {x: {}}, to: d}, {if: {x: {set: maybe}}, to: d},"
    " {if: {x: {gtee: 1}}, to: d}, {to: d}]}\n"
    "    save_as: Bad-Name\n"
    "  - id: d\n"
    "    kind: webinar\n"
    '    ask: "When?"\n'
    "    slots: []\n"
    "  - id: e\n"
    '    ask: "Size"\n'
    "    validate: {min: 3}\n"
    "  - id: f\n"
    '    ask: "Size"\n'
    "    validate: {type: number, min: 30, max: 3}\n"
    '    follow_up: {nudges: [{after: 1h}], quiet_hours: "08:00-08:00"}\n'
    "  - {[x]: y, id: g, kind: end}\n"
)


def test_more_problems(problems: Problems) -> None:
    """Wrong shapes and empty values everywhere a flow can have them."""
    assert problems(MORE_PROBLEMS) == [
        "x.yaml:2:9: alerts: expected a mapping (key: value), got a list",
        "x.yaml:3:12: follow_up: needs `after` and `say` (or a `nudges` list)",
        "x.yaml:4:10: migrate: expected a mapping old-step: new-step, got a list",
        "x.yaml:7:10: step 'a': `say` is empty",
        "x.yaml:8:9: step 'a': `go` should be a step id or a list of {if, to}, got a mapping",
        "x.yaml:11:14: step 'b': `choices` should be a list, got a mapping",
        "x.yaml:12:9: step 'c' is unreachable: no choice or go leads to it from 'a'",
        "x.yaml:15:9: step 'c': `choice` is empty",
        "x.yaml:16:29: step 'c': `commit` should be true or false, got 'yes'",
        "x.yaml:16:38: step 'c': `go` should be a step id or a list of {if, to}, got an empty list",
        "x.yaml:17:31: step 'c': `if` should be a mapping like {role: Founder}, got a list",
        "x.yaml:17:44: step 'c': go: missing `to`",
        "x.yaml:17:45: step 'c': go: unknown key 'go'",
        "x.yaml:18:38: step 'c': `x`: say how to compare, like {gte: 50}",
        "x.yaml:18:66: step 'c': `set` should be true or false, got 'maybe'",
        "x.yaml:18:93: step 'c': if x: unknown key 'gtee' (did you mean 'gte'?)",
        "x.yaml:19:14: step 'c': `save_as` 'Bad-Name' should be a variable name: lowercase letters,"
        " digits and '_', starting with a letter",
        "x.yaml:20:9: step 'd' is unreachable: no choice or go leads to it from 'a'",
        "x.yaml:23:12: step 'd': `slots` is empty: a webinar step needs at least one",
        "x.yaml:24:9: step 'e' is unreachable: no choice or go leads to it from 'a'",
        "x.yaml:26:15: step 'e': validate: missing `type`",
        "x.yaml:27:9: step 'f' is unreachable: no choice or go leads to it from 'a'",
        "x.yaml:29:35: step 'f': `min` (30) is more than `max` (3)",
        "x.yaml:30:26: step 'f': follow_up: nudge: missing `say`",
        "x.yaml:30:53: step 'f': follow_up: `quiet_hours` '08:00-08:00' should be two different"
        ' times like "21:00-08:00" (24-hour clock, from-to)',
        "x.yaml:31:6: step 'g': a key must be a word, not a list",
        "x.yaml:31:18: step 'g' is unreachable: no choice or go leads to it from 'a'",
    ]


def test_yaml_reader_and_nesting_problems() -> None:
    for text, problem in [
        ("flow: t\x07", "<flow>:1:8: YAML syntax: character U+0007 is not allowed"),
        ("[" * 5000, "<flow>:1:1: YAML nests too deeply to read"),
    ]:
        with pytest.raises(FlowErrors) as caught:
            parse_flow(text)
        assert str(caught.value) == problem


def test_short_forms(flow: Load) -> None:
    loaded = flow(
        "flow: t\nalerts: {on: completed}\nfollow_up: false\nsteps:\n  - {id: a, kind: end}\n"
    )
    assert loaded.alerts.on == ("completed",)
    assert loaded.follow_up is None


# --- `ladder validate` ----------------------------------------------------------------------


def test_validate_paths_reports_good_and_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(HEAD + "  - {id: a, ask: Name}\n  - {id: b, kind: end}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "  - {id: a, ask: Name, go: c}\n")
    twin = tmp_path / "sub" / "twin.yml"
    twin.parent.mkdir()
    twin.write_text(good.read_text())
    code, report = validate_paths([good, bad, twin.parent], default_channel="#leads")
    assert code == 1
    assert report.splitlines() == [
        f"ok: {good} (t, 2 steps)",
        f"{bad}:3:28: step 'a': go target 'c' is not a step",
        f"{twin}:1:1: flow name 't' is also used by {good}",
    ]
    assert validate_paths([good], default_channel="#leads") == (0, f"ok: {good} (t, 2 steps)")
    assert validate_paths([tmp_path / "empty-dir"]) == (
        1,
        f"{tmp_path / 'empty-dir'}:1:1: cannot read the file: No such file or directory",
    )
    (tmp_path / "none").mkdir()
    assert validate_paths([tmp_path / "none"]) == (
        1,
        "no flow files found (looked for *.yaml and *.yml)",
    )


# --- properties: any input gives a Flow or FlowErrors ----------------------------------------

_EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]


def _parse_or_errors(text: str) -> Flow | FlowErrors:
    try:
        return parse_flow(text, "f.yaml")
    except FlowErrors as exc:
        assert exc.errors, "FlowErrors always says what is wrong"
        assert all(e.line >= 1 and e.col >= 1 and e.file == "f.yaml" for e in exc.errors)
        return exc


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_gives_a_flow_or_flow_errors(text: str) -> None:
    _parse_or_errors(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_EXAMPLE_TEXTS),
    st.integers(0, 10_000),
    st.integers(0, 40),
    st.text(alphabet=st.sampled_from(list(" \n-:{}[]'\"#&*!|>?,0aZ_é")), max_size=8),
)
def test_damaged_example_gives_a_flow_or_flow_errors(
    source: str, at: int, cut: int, insert: str
) -> None:
    """Cut a span out of a real flow and put some YAML punctuation there instead."""
    at %= len(source)
    _parse_or_errors(source[:at] + insert + source[at + cut :])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_yaml())
def test_generated_flows_load_or_point_at_their_problems(text: str) -> None:
    result = _parse_or_errors(text)
    if isinstance(result, Flow):
        ids = result.by_id
        assert all(r.to in ids for s in result.steps for r in s.routes)
        assert all(r.to in ids for s in result.steps for c in s.choices for r in c.routes)


def test_the_flow_in_the_reference_loads() -> None:
    """docs/flows.md shows a whole small flow; it must stay a good one."""
    reference = (Path(__file__).parents[2] / "docs" / "flows.md").read_text(encoding="utf-8")
    blocks = [b for b in reference.split("```yaml\n")[1:] if b.startswith("flow:")]
    assert blocks
    for block in blocks:
        assert parse_flow(block.split("```", 1)[0], "docs/flows.md").steps


def test_numbers_must_be_finite(problems: Problems) -> None:
    text = with_steps(
        "- {id: a, ask: x, validate: {type: number, max: 1e999}}\n- {id: b, kind: end}\n"
    )
    assert problems(text) == ["x.yaml:3:51: step 'a': `max` should be a number, got '1e999'"]


# --- bounds: no number or size in a file makes the loader or the bot work without end ---------


def test_a_huge_follow_up_max_fails_fast_at_its_place(problems: Problems) -> None:
    """Before the bound, the loader built `max` nudges: this ran until memory ran out."""
    text = "flow: t\nfollow_up: {after: 1h, max: 1000000000000000000, say: hi}\n" + (
        "steps:\n  - {id: a, ask: 'Name?'}\n  - {id: d, kind: end}\n"
    )
    assert problems(text) == [
        "x.yaml:2:29: follow_up: `max` should be at most 20, got 1000000000000000000",
    ]


def test_every_number_and_size_is_bounded(problems: Problems) -> None:
    far = "9" * 5000
    text = with_steps(f"""\
        - id: a
          ask: "Age?"
          save_as: age
          validate: {{type: number, min: -1e16, max: 1e300}}
          score: 1001
          follow_up:
            nudges: [{", ".join(["{after: 1h, say: x}"] * 21)}]
          variants: [{{id: v, ask: "A?", weight: 1001}}]
        - id: b
          ask: "Name?"
          validate: {{type: text, max: 5000}}
          follow_up: {{after: {far}h, say: x, stale_after: 367d, drop_after: 99999999999999w}}
        - id: c
          kind: webinar
          ask: When?
          slots: ["1999-12-31T10:00Z", "3000-01-01T10:00Z"]
          duration: 400d
          reminders: [{", ".join(f"{h}h" for h in range(1, 12))}]
        - id: d
          ask: Pick
          choices: [{", ".join(f"c{i}" for i in range(101))}]
          go: [{{if: {{age: {{gte: 1e16}}}}, to: e}}, {{to: e}}]
        - id: {"x" * 65}
          say: hi
        - {{id: e, kind: end}}
        """)
    found = problems(text)
    assert found == [
        "x.yaml:6:35: step 'a': `min` should be at least -1e+15, got -1e16",
        "x.yaml:6:47: step 'a': `max` should be at most 1e+15, got 1e300",
        "x.yaml:7:12: step 'a': `score` should be at most 1000, got 1001",
        "x.yaml:9:15: step 'a': follow_up: `nudges` has 21 entries; at most 20 are allowed",
        "x.yaml:10:43: step 'a': `weight` should be at most 1000, got 1001",
        "x.yaml:13:33: step 'b': `max` of a text should be at most 4096 (Telegram's"
        " longest message)",
        f"x.yaml:14:24: step 'b': follow_up: `after` '{far[:20]}…' is too long: durations"
        " in a flow are at most 366 days",
        "x.yaml:14:5048: step 'b': follow_up: `stale_after` '367d' is too long:"
        " durations in a flow are at most 366 days",
        "x.yaml:14:5066: step 'b': follow_up: `drop_after` '99999999999999w' is too"
        " long: durations in a flow are at most 366 days",
        "x.yaml:18:13: step 'c': slot '1999-12-31T10:00Z' should be in the years 2000 to 2999",
        "x.yaml:18:34: step 'c': slot '3000-01-01T10:00Z' should be in the years 2000 to 2999",
        "x.yaml:19:15: step 'c': `duration` '400d' is too long: durations in a flow are"
        " at most 366 days",
        "x.yaml:20:16: step 'c': `reminders` has 11 entries; at most 10 are allowed",
        "x.yaml:23:14: step 'd': `choices` (101) make too many buttons: a Telegram"
        " message holds at most 100",
        "x.yaml:24:27: step 'd': `gte` should be at most 1e+15, got 1e16",
        f"x.yaml:25:9: step '{'x' * 65}': `id` is 65 characters; at most 64 are allowed",
    ]


def test_the_number_of_steps_and_the_file_size_are_bounded(problems: Problems) -> None:
    many = with_steps("".join(f"- {{id: s{i}, say: hi}}\n" for i in range(10_001)))
    assert problems(many) == ["x.yaml:3:3: `steps` has 10001 entries; at most 10000 are allowed"]
    huge = with_steps(f"- {{id: a, say: '{'x' * 4_000_000}'}}\n")
    assert problems(huge) == [
        "x.yaml:1:1: the file is over 4,000,000 characters: split it into several flows"
    ]


def test_links_must_be_https(problems: Problems) -> None:
    """docs/flows.md says https: a plain http:// link is refused like any other scheme."""
    text = with_steps("""\
        - {id: a, kind: resource, ask: "Read", url: "http://example.com/guide"}
        - {id: b, kind: trial, ask: "Try", url: "HTTP://example.com/signup"}
        - {id: c, kind: resource, ask: "Read", url: "https://example.com/guide"}
        - {id: d, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:3:47: step 'a': url 'http://example.com/guide' should start with https://",
        "x.yaml:4:43: step 'b': url 'HTTP://example.com/signup' should start with https://",
    ]


def test_a_webinar_whose_slots_are_all_past_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    """A flow does not turn invalid as time passes, so validate still says ok (exit 0), but
    warns at the step: prospects there would find no time left to book."""
    path = tmp_path / "w.yaml"
    path.write_text(  # alerts go somewhere: no warning about them
        "flow: t\nalerts: {slack_channel: '#sales'}\nsteps:\n  - id: demo\n"
        "    kind: webinar\n"
        "    ask: When?\n"
        '    slots: ["2027-03-04T16:00:00+01:00", "2027-03-09T10:00:00+01:00"]\n'
        "  - {id: d, kind: end}\n"
    )
    before = datetime(2027, 3, 9, 8, 59, tzinfo=UTC)
    assert validate_paths([path], now=before) == (0, f"ok: {path} (t, 2 steps)")
    after = datetime(2027, 3, 9, 9, 0, tzinfo=UTC)  # 10:00 in Berlin: the last slot
    assert validate_paths([path], now=after) == (
        0,
        f"ok: {path} (t, 2 steps)\n"
        f"{path}:4:9: warning: step 'demo': every slot is in the past (the last was"
        " 2027-03-09T10:00:00+01:00), so prospects have no time to book; add upcoming `slots`",
    )


def test_texts_that_are_not_said_are_bounded_too(problems: Problems) -> None:
    text = (
        f"flow: t\ntitle: {'T' * 257}\nalerts: {{slack_channel: '{'c' * 81}'}}\nsteps:\n"
        f"  - {{id: a, ask: Pick, choices: [{{label: A, value: '{'v' * 4097}'}}]}}\n"
        f"  - {{id: b, kind: resource, ask: Read, url: 'https://x.io', document: '{'d' * 256}'}}\n"
        "  - {id: e, kind: end}\n"
    )
    assert problems(text) == [
        "x.yaml:2:8: `title` is 257 characters; at most 256 are allowed",
        "x.yaml:3:25: alerts: `slack_channel` is 81 characters; at most 80 are allowed",
        "x.yaml:5:52: step 'a': `value` is 4097 characters; at most 4096 are allowed",
        "x.yaml:6:71: step 'b': `document` is 256 characters; at most 255 are allowed",
    ]


def test_a_version_published_before_outcomes_still_loads() -> None:
    text = with_steps("""\
        - {id: a, ask: "Ok?", choices: [{label: Yes, go: b}, {label: Later, go: c}]}
        - {id: b, kind: end}
        - {id: c, kind: end}
        """)
    with pytest.raises(FlowErrors):
        parse_flow(text)
    old = parse_flow(text, require_outcomes=False)
    assert [s.outcome for s in old.steps] == [None, None, None]
