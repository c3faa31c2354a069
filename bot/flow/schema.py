"""bot/flow/schema.json, the JSON Schema editors use, made from the grammar (`bot.flow.grammar`)
and the step kinds (`bot.kinds`): the same keys, limits and names the loader checks.

`python -m bot.flow.schema` writes it; `python -m bot.flow.schema --check` exits 1 when the
committed file differs from what the grammar makes (a test checks the same)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.flow.grammar import DEFS, FLOW_KEYS, FLOW_REQUIRED, STEP_KEYS, Schema
from bot.kinds import KIND_WORDS, KINDS

PATH = Path(__file__).with_name("schema.json")


def _none_of(keys: list[str]) -> Schema:
    return {"not": {"anyOf": [{"required": [key]} for key in keys]}}


def _step() -> Schema:
    """A step: every key any kind takes, and per kind the keys it needs and refuses."""
    properties: dict[str, Schema] = {**STEP_KEYS, "kind": {"enum": list(KIND_WORDS)}}
    for kind in KINDS.values():
        properties.update(kind.own)
    rules: list[Schema] = []
    for kind in KINDS.values():
        words = [w for w, k in KIND_WORDS.items() if k == kind.name]
        then: Schema = {}
        if kind.needs:
            then["required"] = list(kind.needs)
        if refused := [key for key in properties if key not in kind.keys]:
            then.update(_none_of(refused))
        if kind.needs_text:
            then["anyOf"] = [{"required": ["say"]}, {"required": ["ask"]}]
        written = {"enum": words} if len(words) > 1 else {"const": words[0]}
        rules.append({"if": {"required": ["kind"], "properties": {"kind": written}}, "then": then})
    # Without `kind:` the loader infers one of the kinds some key implies: keys none of them
    # takes need a `kind:`.
    implied = [k for k in KINDS.values() if k.implied_by is not None]
    if unset := [key for key in properties if not any(key in k.keys for k in implied)]:
        rules.append({"if": {"not": {"required": ["kind"]}}, "then": _none_of(unset)})
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id"],
        "properties": properties,
        "allOf": rules,
    }


def build() -> Schema:
    """The whole schema, as schema.json holds it."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ladderbot flow",
        "description": "A ladder of micro-commitments for prospects. Reference: docs/flows.md. "
        "`ladder validate` checks more than this schema can (targets, reachability, variables). "
        "Made by `python -m bot.flow.schema`: do not edit by hand.",
        "type": "object",
        "additionalProperties": False,
        "required": list(FLOW_REQUIRED),
        "properties": FLOW_KEYS,
        "$defs": {**DEFS, "step": _step()},
    }


def text() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str], path: Path = PATH) -> int:
    """Write the schema to `path`, or with `--check` say whether `path` holds it."""
    made = text()
    if argv == ["--check"]:
        if path.read_text(encoding="utf-8") == made:
            return 0
        print(f"{path} is out of date: run `python -m bot.flow.schema`", file=sys.stderr)
        return 1
    if argv:
        print("usage: python -m bot.flow.schema [--check]", file=sys.stderr)
        return 2
    path.write_text(made, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
