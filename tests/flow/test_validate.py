"""Checks over the step graph: each problem with its exact file:line:col and message."""

from __future__ import annotations

from collections.abc import Callable
from textwrap import dedent, indent

from bot.flow.model import MAX_MESSAGES_IN_A_ROW, Flow
from bot.flow.validate import Way, saved_variables, ways
from tests.flow.generated import ladder_yaml

Problems = Callable[[str], list[str]]
Load = Callable[[str], Flow]


def with_steps(steps: str, head: str = "flow: t\nsteps:\n") -> str:
    """A flow whose steps (written flush left) follow `head`, indented by two."""
    return head + indent(dedent(steps), "  ")


def test_unknown_go_targets_with_suggestions(problems: Problems) -> None:
    text = with_steps("""\
        - id: welcome
          ask: "Want it?"
          choices:
            - {label: "Yes", go: rol}
            - {label: "No", go: [{if: {role: x}, to: bye}, {to: nowhere}]}
        - id: role
          ask: "Role?"
          choices: [Founder, Other]
          save_as: role
          go: donne
        - {id: bye, kind: end, outcome: declined}
        - {id: done, kind: end, outcome: won}
        """)
    assert problems(text) == [
        "x.yaml:6:28: step 'welcome': go target 'rol' is not a step (did you mean 'role'?)",
        "x.yaml:7:59: step 'welcome': go target 'nowhere' is not a step",
        "x.yaml:8:9: step 'role' is unreachable: no choice or go leads to it from 'welcome'",
        "x.yaml:12:9: step 'role': go target 'donne' is not a step (did you mean 'done'?)",
        "x.yaml:14:10: step 'done' is unreachable: no choice or go leads to it from 'welcome'",
    ]


def test_conditional_go_needs_a_fallback(problems: Problems) -> None:
    text = with_steps("""\
        - {id: role, ask: "Role?", choices: [Founder, Other], save_as: role}
        - id: route
          say: "Let's see"
          go:
            - {if: {role: Founder}, to: founder}
            - {if: {role: Other}, to: other}
        - {id: founder, kind: end, outcome: won}
        - {id: other, kind: end, outcome: nurture}
        """)
    assert problems(text) == [
        "x.yaml:8:33: step 'route': every `go` entry has an `if`, so a prospect matching none"
        " is stuck: end the list with a plain `- to: <step>`",
    ]


def test_dead_ends(problems: Problems) -> None:
    text = with_steps("""\
        - id: pick
          ask: "Pick"
          choices:
            - {label: A, go: more}
            - B
        - id: more
          ask: "Anything else?"
        """)
    assert problems(text) == [
        "x.yaml:8:9: step 'more' is a dead end: it is not an `end` step and nothing follows"
        " it (add `go:`, or an end step after it)",
    ]


def test_a_choice_without_go_is_a_dead_end_when_nothing_follows(problems: Problems) -> None:
    text = with_steps("""\
        - {id: intro, say: "Hi", go: pick}
        - {id: done, kind: end}
        - id: pick
          ask: "Pick"
          choices:
            - {label: A, go: done}
            - B
        """)
    assert problems(text) == [
        "x.yaml:5:9: step 'pick' is a dead end: it is not an `end` step and nothing follows it"
        " (add `go:`, or an end step after it)",
    ]


def test_unreachable_step(problems: Problems) -> None:
    text = with_steps("""\
        - {id: a, ask: "Name?", go: c}
        - {id: b, say: "Never said"}
        - {id: c, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:4:10: step 'b' is unreachable: no choice or go leads to it from 'a'",
    ]


def test_message_loops(problems: Problems) -> None:
    text = with_steps("""\
        - {id: a, say: "One", go: b}
        - {id: b, say: "Two", go: [{if: {x: "1"}, to: a}, {to: c}]}
        - {id: c, say: "Three", go: c}
        - {id: x, ask: "Never asked", save_as: x, go: a}
        """)
    assert problems(text) == [
        "x.yaml:3:10: message steps 'a', 'b' loop forever: none of them waits for the prospect"
        " (ask something on the way, or `go` elsewhere)",
        "x.yaml:5:10: message step 'c' loops forever: none of them waits for the prospect"
        " (ask something on the way, or `go` elsewhere)",
        "x.yaml:6:10: step 'x' is unreachable: no choice or go leads to it from 'a'",
    ]


def test_a_loop_through_a_waiting_step_is_fine(flow: Load) -> None:
    loaded = flow(
        with_steps("""\
        - {id: a, say: "Hello again"}
        - {id: b, ask: "More?", choices: [{label: Again, go: a}, {label: Stop, go: c}]}
        - {id: c, kind: end}
        """)
    )
    assert [s.id for s in loaded.steps] == ["a", "b", "c"]


def test_condition_on_an_unsaved_answer(problems: Problems) -> None:
    text = with_steps("""\
        - {id: role, ask: "Role?", choices: [Founder, Other], save_as: role}
        - {id: next, say: "Ok", go: [{if: {rol: Founder}, to: done}, {to: done}]}
        - {id: done, kind: end}
        """)
    assert problems(text) == [
        "x.yaml:4:57: step 'next': `if` tests 'rol', which no step saves (did you mean 'role'?)",
    ]


def test_undefined_variables_and_bad_braces(problems: Problems) -> None:
    text = with_steps(
        """\
        - id: company
          ask: "Hi {first_name}, which company?"
          save_as: company
        - id: thanks
          say: "Thanks {first_name} from {compnay}!"
          ask: "Your {role}? {"
          follow_up: {after: 1h, say: "Still there, {}?"}
        - id: done
          kind: end
          say: "Bye {company} {0}"
        """,
        head="flow: t\nfollow_up: {after: 1d, say: 'Hello {who}'}\nsteps:\n",
    )
    assert problems(text) == [
        "x.yaml:2:29: follow_up: `say` uses {who}, which is not built in and no step saves",
        "x.yaml:8:10: step 'thanks': `say` uses {compnay}, which is not built in and no step"
        " saves (did you mean 'company'?)",
        "x.yaml:9:10: step 'thanks': `ask` has an unbalanced { or } (write {{ or }} for a brace"
        " itself)",
        "x.yaml:10:33: step 'thanks': follow_up: `say` has {}, not a variable name",
        "x.yaml:13:10: step 'done': `say` has {0}, not a variable name",
    ]


def test_variable_not_saved_on_every_path(problems: Problems) -> None:
    text = with_steps("""\
        - id: welcome
          ask: "Want the guide?"
          choices:
            - {label: "Yes", go: email}
            - {label: "Later", go: done, commit: false}
        - {id: email, ask: "Email?", validate: email, save_as: email}
        - {id: done, kind: end, say: "Sent to {email}. Bye {first_name}!"}
        """)
    assert problems(text) == [
        "x.yaml:9:32: step 'done': `say` uses {email}, which may not be saved yet at step"
        " 'done' (e.g. welcome → done)",
    ]


def test_saved_on_every_path_through_loops_and_conditions(flow: Load) -> None:
    """Conditions that need an answer prove it is saved; loops reach a fixed point."""
    loaded = flow(
        with_steps("""\
        - id: welcome
          ask: "Ready?"
          choices:
            - {label: "Email me", go: email}
            - {label: "Skip", go: route}
        - {id: email, ask: "Email?", validate: email, save_as: email}
        - id: route
          say: "Checking"
          go:
            - {if: {email: {set: true}}, to: mailed}
            - {if: {email: {set: false}}, to: welcome}
            - {to: welcome}
        - {id: mailed, say: "Sent to {email}", go: more}
        - id: more
          ask: "Another one, {email}?"
          choices: [{label: "Yes", go: mailed}, {label: "No", go: done}]
        - {id: done, kind: end}
        """)
    )
    assert loaded.step("mailed").say == "Sent to {email}"


def test_webinar_booking_is_saved_only_when_a_slot_is_picked(problems: Problems) -> None:
    text = with_steps("""\
        - id: demo
          kind: webinar
          ask: "Join?"
          slots: ["2027-03-04T16:00:00+01:00"]
          choices: [{label: "None work", id: none}]
        - {id: done, kind: end, say: "See you at {demo_slot}"}
        """)
    assert problems(text) == [
        "x.yaml:8:32: step 'done': `say` uses {demo_slot}, which may not be saved yet at step"
        " 'done' (e.g. demo → done)",
    ]
    saved = text.replace('choices: [{label: "None work", id: none}]', "save_as: booked")
    assert problems(saved.replace("{demo_slot}", "{booked}")) == []


def test_flow_follow_up_variables_must_be_saved_where_it_nudges(problems: Problems) -> None:
    text = with_steps(
        """\
        - {id: company, ask: "Company?", save_as: company}
        - {id: size, ask: "Size?", save_as: size}
        - {id: done, kind: end}
        """,
        head="flow: t\nfollow_up: {after: 1d, say: 'Still there, {company}?'}\nsteps:\n",
    )
    assert problems(text) == [
        "x.yaml:2:29: follow_up: `say` uses {company}, which may not be saved yet at step"
        " 'company' (the first step)",
    ]
    own = text.replace("save_as: company}", "save_as: company, follow_up: false}")
    assert problems(own) == []


def test_ways_and_saved_variables(flow: Load) -> None:
    loaded = flow(
        with_steps("""\
        - id: demo
          kind: webinar
          ask: "Join?"
          slots: ["2027-03-04T16:00:00+01:00"]
          choices: [{label: "None work", id: none, go: done}]
        - {id: done, kind: end}
        """)
    )
    demo = loaded.step("demo")
    assert ways(loaded, demo) == [
        Way("demo", "done", "booked", (), frozenset({"demo_slot"})),
        Way("demo", "done", "None work", (), frozenset()),
    ]
    assert ways(loaded, loaded.step("done")) == []
    assert saved_variables(loaded) == {"demo_slot"}


def message_run(count: int, then: str = "- {id: done, kind: end}") -> str:
    """A flow: a question, then `count` message steps in a row, then `then`."""
    lines = ["- {id: name, ask: 'Name?', save_as: name}"]
    lines += [f"- {{id: m{i}, say: 'Note {i}'}}" for i in range(count)]
    return with_steps("\n".join([*lines, then]) + "\n")


def test_a_run_of_more_message_steps_than_the_engine_says_at_once_is_reported(
    problems: Problems, flow: Load
) -> None:
    assert MAX_MESSAGES_IN_A_ROW == 64
    assert flow(message_run(64)).steps[-1].id == "done"
    assert problems(message_run(65)) == [
        "x.yaml:4:10: 65 message steps in a row ('m0' → 'm1' → … → 'm64'): the bot says at"
        " most 64 messages before it waits for the prospect (ask something on the way, or say"
        " more in fewer messages)",
    ]


def test_the_longest_run_through_conditional_branches_is_reported_once(
    problems: Problems,
) -> None:
    """m0 may go to m1 (a run of 66) or straight to the end; the run is reported at its start,
    not again at each step inside it."""
    text = message_run(66).replace(
        "{id: m0, say: 'Note 0'}",
        "{id: m0, say: 'Note 0', go: [{if: {name: x}, to: done}, {to: m1}]}",
    )
    assert problems(text) == [
        "x.yaml:4:10: 66 message steps in a row ('m0' → 'm1' → … → 'm65'): the bot says at"
        " most 64 messages before it waits for the prospect (ask something on the way, or say"
        " more in fewer messages)",
    ]


def test_a_large_flow_is_checked_in_full(problems: Problems, flow: Load) -> None:
    """5,000 steps: every step is built, and a variable used before it is saved is still
    found on the long path (the benchmark bench.validate measures how fast)."""
    text = ladder_yaml(5000)
    loaded = flow(text)
    assert len(loaded.steps) == 5001
    assert loaded.step("again999").routes[0].to == "done"
    early = text.replace("'Your name as {role0}?'", "'Your name as {name900}?'")
    found = problems(early)
    assert len(found) == 1
    assert "`ask` uses {name900}, which may not be saved yet at step 'name0'" in found[0]
    late = text.replace("'Bye {first_name}'", "'Bye {name500}'")  # every path saves it
    assert problems(late) == []


# --- outcomes ---------------------------------------------------------------------------------

OFFER = """\
- id: offer
  ask: "Book a demo?"
  choices:
    - {label: "Yes", go: booked}
    - {label: "Maybe later", go: later}
    - {label: "No thanks", go: bye, commit: false}
"""


def test_an_end_step_whose_outcome_cannot_be_told_needs_one(problems: Problems) -> None:
    text = with_steps(OFFER + "- {id: booked, kind: end, outcome: won}\n- {id: later, kind: end}\n"
                      "- {id: bye, kind: end}\n")  # fmt: skip
    assert problems(text) == [
        "x.yaml:10:10: step 'later' ends the flow: say what reaching it means with `outcome:` "
        "(won, declined, disqualified, nurture, lost)",
    ]


def test_outcomes_are_inferred_only_where_the_flow_says_so(flow: Load) -> None:
    declared = flow(with_steps(OFFER + "- {id: booked, kind: end, outcome: won}\n"
                               "- {id: later, kind: end, outcome: nurture}\n"
                               "- {id: bye, kind: end}\n"))  # fmt: skip
    assert declared.outcomes == {"booked": "won", "later": "nurture", "bye": "declined"}
    assert declared.success == ("won",)
    single = flow(
        with_steps('- {id: a, ask: "Ok?", choices: [Yes, "No"]}\n- {id: end, kind: end}\n')
    )
    assert single.outcomes == {"end": "won"}


def test_unknown_outcomes_and_outcomes_off_an_end_step_are_named(problems: Problems) -> None:
    text = with_steps("- {id: a, ask: Name, outcome: won}\n- {id: b, kind: end, outcome: wn}\n",
                      head="flow: t\nsuccess: [won, sold]\nsteps:\n")  # fmt: skip
    assert problems(text) == [
        "x.yaml:2:16: unknown outcome 'sold'; use one of won, declined, disqualified, nurture, "
        "lost",
        "x.yaml:4:24: step 'a': `outcome` only applies to end steps (without `kind:` this is an "
        "input step)",
        "x.yaml:5:33: step 'b': unknown outcome 'wn' (did you mean 'won'?); use one of won, "
        "declined, disqualified, nurture, lost",
    ]
