"""Flows in several languages: `languages`, `default_language` and `translations` are read into
per-language texts with the same steps, choice ids and values; every missing or unusable
translation is a problem at its file:line:col, also through `ladder validate`."""

from __future__ import annotations

from pathlib import Path

from bot.flow.grammar import MAX_LABEL
from bot.flow.loader import validate_paths
from tests.flow.conftest import EXAMPLES
from tests.flow.test_loader import Load, Problems

FLOW = """\
flow: t
default_language: en
languages: [en, de]
follow_up: {after: 1h, say: "Still there?"}
steps:
  - id: role
    say: "Hi {first_name}!"
    ask: "Your role?"
    choices: [Founder, {label: Other, id: other, value: else}]
    save_as: role
  - id: mail
    kind: input
    ask: "Your email?"
    validate: {type: email, hint: "Like a@b.c"}
  - id: done
    kind: end
    outcome: won
    say: "Thanks!"
translations:
  de:
    follow_up: ["Noch da?"]
    steps:
      role:
        say: "Hallo {first_name}!"
        ask: "Deine Rolle?"
        choices: [Gründer, Anderes]
      mail:
        ask: "Deine E-Mail?"
        hint: "Etwa a@b.c"
      done:
        say: "Danke!"
"""


def test_a_translation_keeps_steps_ids_and_values(flow: Load) -> None:
    two = flow(FLOW)
    assert two.languages == ("en", "de")
    german = two.in_language("de")
    assert [s.id for s in german.steps] == [s.id for s in two.steps]
    role = german.step("role")
    assert (role.say, role.ask) == ("Hallo {first_name}!", "Deine Rolle?")
    assert [(c.id, c.label, c.value) for c in role.choices] == [
        ("founder", "Gründer", "Founder"),
        ("other", "Anderes", "else"),
    ]
    validator = german.step("mail").validator
    assert validator is not None and validator.hint == "Etwa a@b.c"
    assert german.follow_up is not None and german.follow_up.nudges[0].say == "Noch da?"
    assert two.in_language("en") is two and two.in_language("fr") is two
    assert two.step("role").ask == "Your role?"


def test_a_missing_translation_is_reported_at_its_line(problems: Problems) -> None:
    without_hint = FLOW.replace('        hint: "Etwa a@b.c"\n', "")
    assert problems(without_hint) == ["x.yaml:27:7: translations.de: step 'mail': missing `hint`"]
    without_step = FLOW.replace('      done:\n        say: "Danke!"\n', "")
    assert problems(without_step) == ["x.yaml:23:7: translations.de: step 'done': missing (say)"]
    without_language = FLOW.replace("languages: [en, de]", "languages: [en, de, es]")
    assert problems(without_language) == [
        "x.yaml:3:21: language 'es': has no texts under `translations:`"
    ]


def test_translated_texts_are_checked_like_the_default(problems: Problems) -> None:
    long = "x" * (MAX_LABEL + 1)
    assert problems(FLOW.replace("[Gründer, Anderes]", f"[Gründer, {long}]")) == [
        f"x.yaml:26:28: translations.de: step 'role': choice label 'xxxxxxxxxxxxxxxxxxxx'... "
        f"is {MAX_LABEL + 1} characters; a Telegram button fits {MAX_LABEL}"
    ]
    assert problems(FLOW.replace("[Gründer, Anderes]", "[Gründer]")) == [
        "x.yaml:26:18: translations.de: step 'role': `choices` has 1; the step's choices: 2"
    ]
    assert problems(FLOW.replace('["Noch da?"]', '["Noch da?", "Hallo?"]')) == [
        "x.yaml:21:16: translations.de: `follow_up` has 2; different texts: 1"
    ]
    found = problems(FLOW.replace('"Hallo {first_name}!"', '"Hallo {vorname}!"'))
    assert len(found) == 1 and found[0].startswith("x.yaml:24:14:") and "vorname" in found[0]
    assert problems(FLOW.replace("      mail:\n", "      mial:\n      mail:\n")) == [
        "x.yaml:27:7: translations.de.steps: unknown key 'mial' (did you mean 'mail'?)"
    ]
    assert problems(FLOW.replace("languages: [en, de]", "languages: [en, Deutsch]")) == [
        "x.yaml:3:17: 'Deutsch' is not a language code like en, de or es"
    ]
    assert problems(FLOW.replace("languages: [en, de]\n", "")) == [
        "x.yaml:18:1: `translations` needs `languages: [...]` to list them"
    ]


def test_ladder_validate_names_the_missing_translation(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(FLOW.replace('        ask: "Deine Rolle?"\n', ""), encoding="utf-8")
    code, report = validate_paths([path])
    assert code == 1
    assert report == f"{path}:23:7: translations.de: step 'role': missing `ask`"


def test_the_shipped_examples_speak_german_everywhere() -> None:
    webinar = next(p for p in EXAMPLES if p.name == "webinar-ladder.yaml")
    code, report = validate_paths([webinar])
    assert code == 0, report
