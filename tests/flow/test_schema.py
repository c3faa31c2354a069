"""bot/flow/schema.json: the JSON Schema editors use (YAML language server) accepts the
example flows and catches a typo'd key, the way an editor would read the YAML (YAML 1.2)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from yaml.nodes import MappingNode, Node, SequenceNode

from bot.flow import schema as flow_schema
from bot.flow.grammar import FLOW_KEYS
from bot.flow.loader import KEY_KINDS
from domain.model import Outcome
from tests.flow.conftest import EXAMPLES

_NUMBERS = {"tag:yaml.org,2002:int": int, "tag:yaml.org,2002:float": float}


def as_editor_sees_it(node: Node) -> Any:
    """YAML 1.2 core schema: only true/false are booleans; dates and `on` stay text."""
    if isinstance(node, MappingNode):
        return {k.value: as_editor_sees_it(v) for k, v in node.value}
    if isinstance(node, SequenceNode):
        return [as_editor_sees_it(v) for v in node.value]
    if node.tag == "tag:yaml.org,2002:null":
        return None
    if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() in ("true", "false"):
        return node.value.lower() == "true"
    if node.tag in _NUMBERS:
        return _NUMBERS[node.tag](node.value)
    return node.value


def load(text: str) -> Any:
    return as_editor_sees_it(yaml.compose(text, Loader=yaml.SafeLoader))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(resources.files("bot.flow").joinpath("schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_flows_match_the_schema(validator: Draft202012Validator, path: Path) -> None:
    errors = [e.message for e in validator.iter_errors(load(path.read_text(encoding="utf-8")))]
    assert errors == []


def test_a_typo_in_a_key_fails(validator: Draft202012Validator) -> None:
    text = EXAMPLES[0].read_text(encoding="utf-8").replace("    save_as:", "    saveas:", 1)
    errors = [(list(e.absolute_path), e.message) for e in validator.iter_errors(load(text))]
    assert errors == [
        (["steps", 0], "Additional properties are not allowed ('saveas' was unexpected)")
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("flow: Bad Name\nsteps: [{id: a, kind: end}]\n", "does not match"),
        ("flow: t\nsteps: [{id: a, kind: webinar, ask: x}]\n", "'slots' is a required property"),
        ("flow: t\nsteps: [{id: a, kind: input, ask: x, reminders: [1h]}]\n", "should not be"),
        ("flow: t\nfollow_up: {after: 24, say: x}\nsteps: [{id: a, kind: end}]\n", "24 is not of"),
        ("flow: t\nsteps: [{id: a, ask: x, go: [{if: {n: {gtee: 1}}, to: b}]}]\n", "gtee"),
    ],
)
def test_schema_catches_mistakes(validator: Draft202012Validator, text: str, problem: str) -> None:
    messages = [
        m
        for e in validator.iter_errors(load(text))
        for m in (e.message, *(c.message for c in e.context))
    ]
    assert any(problem in m for m in messages), messages


def test_the_schema_knows_the_keys_and_outcomes_the_loader_knows() -> None:
    schema = json.loads(resources.files("bot.flow").joinpath("schema.json").read_text("utf-8"))
    assert set(schema["properties"]) == set(FLOW_KEYS)
    assert set(schema["$defs"]["step"]["properties"]) == set(KEY_KINDS)
    assert schema["$defs"]["outcome"]["enum"] == [o.value for o in Outcome]


def test_an_outcome_outside_an_end_step_or_unknown_fails(validator: Draft202012Validator) -> None:
    wrong_kind = "flow: t\nsteps: [{id: a, ask: x, outcome: won}, {id: b, kind: end}]\n"
    unknown = "flow: t\nsteps: [{id: a, kind: end, outcome: sold}]\n"
    good = "flow: t\nsuccess: [won, nurture]\nsteps: [{id: a, kind: end, outcome: nurture}]\n"
    assert list(validator.iter_errors(load(wrong_kind))) != []
    assert list(validator.iter_errors(load(unknown))) != []
    assert list(validator.iter_errors(load(good))) == []


def test_the_committed_schema_is_the_one_the_grammar_makes() -> None:
    committed = resources.files("bot.flow").joinpath("schema.json").read_text("utf-8")
    assert committed == flow_schema.text(), "run `python -m bot.flow.schema` and commit it"
    assert flow_schema.main(["--check"]) == 0


def test_the_check_fails_when_the_schema_differs(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text(flow_schema.text().replace('"maxLength": 4096', '"maxLength": 4000'))
    assert flow_schema.main(["--check"], stale) == 1
    assert flow_schema.main([], stale) == 0
    assert flow_schema.main(["--check"], stale) == 0
