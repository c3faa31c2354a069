"""The step kinds: one module each in one table; the loader and schema.json take and need the
same keys of each kind (both come from the kind's definition); the core stays pure."""

from __future__ import annotations

import ast
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

import bot
from bot.flow.loader import KEY_KINDS, parse_flow
from bot.flow.model import StepKind
from bot.kinds import KIND_WORDS, KINDS, TIMER_OWNERS
from domain.errors import FlowErrors
from tests.flow.test_schema import as_editor_sees_it

# A value each step key accepts, as the loader and an editor read it.
SAMPLES = {
    "say": "Hello",
    "ask": "Which one?",
    "go": "done",
    "choices": ["Yes", "No"],
    "save_as": "answer",
    "commitment": "said_yes",
    "score": 3,
    "follow_up": {"after": "1h", "say": "Still there?"},
    "variants": [{"id": "v1", "ask": "Which, then?"}],
    "validate": "email",
    "url": "https://example.com/start?ref={conversation_ref}",
    "button": "Open",
    "wait_for": "trial_started",
    "document": "files/guide.pdf",
    "slots": ["2031-03-04T16:00:00+01:00"],
    "duration": "45m",
    "reminders": ["1h"],
    "outcome": "won",
    "media": {"image": "https://example.com/intro.png", "caption": "Our dashboard"},
}


@pytest.fixture(scope="module")
def schema() -> Draft202012Validator:
    text = resources.files("bot.flow").joinpath("schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def a_step(kind: StepKind, **extra: Any) -> dict[str, Any]:
    """The smallest step of `kind` with what it needs, plus `extra`."""
    definition = KINDS[kind]
    step: dict[str, Any] = {"id": "a", "kind": kind.value}
    step.update({key: SAMPLES[key] for key in definition.needs})
    if definition.needs_text:
        step.setdefault("say", SAMPLES["say"])
    return {**step, **extra}


def flow_text(step: dict[str, Any]) -> str:
    steps = [step] if step["kind"] == "end" else [step, {"id": "done", "kind": "end"}]
    return yaml.safe_dump({"flow": "t", "steps": steps}, sort_keys=False)


def loader_problems(text: str) -> list[str]:
    try:
        parse_flow(text, "x.yaml")
    except FlowErrors as exc:
        return [e.message for e in exc.errors]
    return []


def schema_problems(schema: Draft202012Validator, text: str) -> list[str]:
    document = as_editor_sees_it(yaml.compose(text, Loader=yaml.SafeLoader))
    return [e.message for e in schema.iter_errors(document)]


def test_every_kind_is_defined_once_in_the_table() -> None:
    assert list(KINDS) == list(StepKind)
    assert all(kind.name == name for name, kind in KINDS.items())
    modules = {p.stem for p in Path(bot.__file__).parent.joinpath("kinds").glob("*.py")}
    defined = {type(kind).__module__.rsplit(".", 1)[1] for kind in KINDS.values()}
    assert defined == modules - {"__init__", "base", "link"}  # link: resource's and trial's
    assert len(set(map(id, KINDS.values()))) == len(KINDS)


def test_each_timer_kind_has_one_owner() -> None:
    assert {t: k.name for t, k in TIMER_OWNERS.items()} == {
        "reminder": StepKind.WEBINAR,
        "wait": StepKind.TRIAL,  # trial and resource share the link kinds' wait
    }
    assert type(KINDS[StepKind.RESOURCE]).on_timer is type(KINDS[StepKind.TRIAL]).on_timer


def test_the_smallest_step_of_each_kind_is_good_for_both(schema: Draft202012Validator) -> None:
    for kind in StepKind:
        text = flow_text(a_step(kind))
        assert loader_problems(text) == [], kind
        assert schema_problems(schema, text) == [], kind


@pytest.mark.parametrize("kind", list(StepKind))
def test_the_loader_and_the_schema_take_the_same_keys(
    schema: Draft202012Validator, kind: StepKind
) -> None:
    assert set(SAMPLES) | {"id", "kind"} == set(KEY_KINDS)
    for key, value in SAMPLES.items():
        text = flow_text(a_step(kind, **{key: value}))
        refused_by_loader = any(f"`{key}` only applies to" in p for p in loader_problems(text))
        refused_by_schema = schema_problems(schema, text) != []
        assert refused_by_loader == refused_by_schema == (key not in KINDS[kind].keys), (kind, key)


@pytest.mark.parametrize("kind", list(StepKind))
def test_the_loader_and_the_schema_need_the_same_keys(
    schema: Draft202012Validator, kind: StepKind
) -> None:
    for key in KINDS[kind].needs:
        step = a_step(kind)
        del step[key]
        text = flow_text(step)
        assert f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} step needs `{key}`" in " ".join(
            loader_problems(text)
        )
        assert f"'{key}' is a required property" in schema_problems(schema, text)


def test_without_kind_the_loader_infers_one_the_schema_allows(
    schema: Draft202012Validator,
) -> None:
    for step, kind in (
        ({"id": "a", "ask": "Q?", "choices": ["Yes"]}, StepKind.SURVEY),
        ({"id": "a", "ask": "Q?"}, StepKind.INPUT),
        ({"id": "a", "say": "Hi"}, StepKind.MESSAGE),
    ):
        text = yaml.safe_dump({"flow": "t", "steps": [step, {"id": "done", "kind": "end"}]})
        assert parse_flow(text).steps[0].kind == kind
        assert schema_problems(schema, text) == []
    slots = {"id": "a", "ask": "When?", "slots": SAMPLES["slots"]}
    text = yaml.safe_dump({"flow": "t", "steps": [slots, {"id": "done", "kind": "end"}]})
    assert any("`slots` only applies to webinar steps" in p for p in loader_problems(text))
    assert schema_problems(schema, text) != []


def test_every_word_for_a_kind_is_one_the_schema_knows(schema: Draft202012Validator) -> None:
    step_schema = schema.schema["$defs"]["step"]
    assert step_schema["properties"]["kind"]["enum"] == list(KIND_WORDS)
    assert KIND_WORDS["question"] == StepKind.SURVEY


_IMPURE = ("redis", "httpx", "aiohttp", "telegram", "slack_sdk", "storage", "bot.channels")
_ABOVE = ("bot.service", "bot.delivery", "bot.worker", "bot.web", "bot.app", "bot.cli")


def test_the_core_imports_no_channel_redis_or_network() -> None:
    """bot/flow, bot/kinds and bot/engine.py: pure, below the service and the channels."""
    root = Path(bot.__file__).parent
    core = [*root.joinpath("flow").glob("*.py"), *root.joinpath("kinds").glob("*.py")]
    for path in [*core, root / "engine.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(_IMPURE + _ABOVE), f"{path.name} imports {name}"
