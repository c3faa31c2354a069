"""Reading composed YAML nodes with their positions: typed values (texts, names, numbers,
durations, lists, mappings) checked against the grammar's limits, every problem collected as a
`FlowError` at the line and column of the node it is about. `bot.flow.loader` reads the flow
and the shared step keys with it; each kind in `bot.kinds` reads its own keys with it."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.flow.grammar import (
    MAX_DURATION,
    MAX_LABEL,
    MAX_NAME,
    MAX_NUMBER,
    MAX_TEXT,
    STEP_ID,
    parse_duration,
)
from bot.flow.model import Pos
from domain.errors import FlowError

NULL = "tag:yaml.org,2002:null"
_INTEGER = re.compile(r"[-+]?\d+")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class TextUse:
    """A text the bot says with its {variables} filled in: at `step` (None: at any step)."""

    step: str | None
    field: str
    text: str
    pos: Pos
    where: str  # how a problem names its place, e.g. "step 'role'"


@dataclass(frozen=True)
class Key:
    """A mapping entry: the key's node (for 'unknown key') and the value's node."""

    key: Node
    value: Node


def suggest(word: str, options: Iterable[str]) -> str:
    """A " (did you mean ...?)" hint with the closest option, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL:
        return "nothing"
    return repr(str(node.value))


def _shown(value: str) -> str:
    """A value as a problem quotes it: whole, or its start when it is long."""
    return value if len(value) <= 24 else f"{value[:20]}…"


class Reader:
    """Typed values from YAML nodes, collecting every problem with its position, and every
    text said with {variables} (checked once the whole flow is read)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[FlowError] = []
        self.texts: list[TextUse] = []
        self.timezone = "UTC"

    # --- positions and problems ---------------------------------------------------------------

    def pos(self, node: Node) -> Pos:
        return Pos(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node, where: str, message: str) -> None:
        self.error_at(self.pos(node), where, message)

    def error_at(self, at: Pos, where: str, message: str) -> None:
        text = f"{where}: {message}" if where else message
        self.errors.append(FlowError(text, self.file, at.line, at.col))

    # --- typed values -------------------------------------------------------------------------

    def fields(
        self,
        node: Node,
        where: str,
        allowed: Collection[str],
        required: Iterable[str] = (),
    ) -> dict[str, Key] | None:
        """The entries of a mapping node; unknown, repeated and missing keys are problems."""
        if not isinstance(node, MappingNode):
            self.error(node, where, f"expected a mapping (key: value), got {describe(node)}")
            return None
        found: dict[str, Key] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == NULL:
                self.error(key, where, f"a key must be a word, not {describe(key)}")
                continue
            name = str(key.value)
            if name in found:
                self.error(key, where, f"key {name!r} is given twice")
            elif name not in allowed:
                self.error(key, where, f"unknown key {name!r}{suggest(name, allowed)}")
            else:
                found[name] = Key(key, value)
        for name in required:
            if name not in found:
                self.error(node, where, f"missing `{name}`")
        return found

    def scalar(self, node: Node, where: str, field: str, expected: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag != NULL:
            return str(node.value)
        self.error(node, where, f"`{field}` should be {expected}, got {describe(node)}")
        return None

    def filled(self, node: Node, where: str, field: str) -> str | None:
        """A text that is not empty (nor only spaces)."""
        value = self.scalar(node, where, field, "text")
        if value is not None and not value.strip():
            self.error(node, where, f"`{field}` is empty")
            return None
        return value

    def text(self, node: Node, where: str, field: str) -> str | None:
        """A text the bot sends: not empty, and short enough for one message."""
        value = self.filled(node, where, field)
        if value is not None and len(value) > MAX_TEXT:
            self.error(
                node, where, f"`{field}` is {len(value)} characters; Telegram allows {MAX_TEXT}"
            )
        return value

    def said(self, node: Node, where: str, field: str, step: str | None) -> str | None:
        """A text with {variables} filled in, said at `step` (None: at any step)."""
        value = self.text(node, where, field)
        if value is not None:
            self.texts.append(TextUse(step, field, value, self.pos(node), where))
        return value

    def label(self, node: Node, where: str, field: str) -> str | None:
        """A button's text: at most 64 characters."""
        value = self.filled(node, where, field)
        if value is not None and len(value) > MAX_LABEL:
            self.error(
                node,
                where,
                f"{field} {value[:20]!r}... is {len(value)} characters; a Telegram button "
                f"fits {MAX_LABEL}",
            )
        return value

    def name(
        self, node: Node, where: str, field: str, pattern: re.Pattern[str], rule: str
    ) -> str | None:
        value = self.scalar(node, where, field, "a name")
        if value is None:
            return None
        if not self.short(node, where, field, value, MAX_NAME):
            return None
        if not pattern.fullmatch(value):
            self.error(node, where, f"`{field}` {value!r} should be {rule}")
            return None
        return value

    def identifier(self, node: Node, where: str, field: str) -> str | None:
        """The id of a step, choice, variant or commitment (it goes into button data)."""
        return self.name(node, where, field, STEP_ID, "lowercase letters, digits, '_' or '-'")

    def integer(self, node: Node, where: str, field: str, least: int, most: int) -> int | None:
        value = self.scalar(node, where, field, "a whole number")
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):
            self.error(node, where, f"`{field}` should be a whole number, got {value!r}")
            return None
        return (
            int(value)
            if self.within(node, where, field, float(value), least=least, most=most)
            else None
        )

    def number(
        self,
        node: Node,
        where: str,
        field: str,
        least: float = -MAX_NUMBER,
        most: float = MAX_NUMBER,
    ) -> float | None:
        value = self.scalar(node, where, field, "a number")
        if value is None:
            return None
        if not _NUMBER.fullmatch(value) or not math.isfinite(float(value)):
            self.error(node, where, f"`{field}` should be a number, got {value!r}")
            return None
        number = float(value)
        return number if self.within(node, where, field, number, least=least, most=most) else None

    def within(
        self,
        node: Node,
        where: str,
        field: str,
        value: float,
        *,
        least: float,
        most: float,
    ) -> bool:
        """Is `value` between `least` and `most`? Else a problem that shows it as written."""
        shown = _shown(str(node.value))
        if value < least:
            self.error(node, where, f"`{field}` should be at least {least:g}, got {shown}")
            return False
        if value > most:
            self.error(node, where, f"`{field}` should be at most {most:g}, got {shown}")
            return False
        return True

    def short(self, node: Node, where: str, field: str, value: str, most: int) -> bool:
        """Is the text at most `most` characters? Else a problem."""
        if len(value) <= most:
            return True
        self.error(node, where, f"`{field}` is {len(value)} characters; at most {most} are allowed")
        return False

    def count(self, node: Node, where: str, field: str, items: list[Node], most: int) -> bool:
        """Does the list have at most `most` items? Else a problem, at the list."""
        if len(items) <= most:
            return True
        self.error(node, where, f"`{field}` has {len(items)} entries; at most {most} are allowed")
        return False

    def boolean(self, node: Node, where: str, field: str) -> bool | None:
        value = self.scalar(node, where, field, "true or false")
        if value is not None and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value is not None:
            self.error(node, where, f"`{field}` should be true or false, got {value!r}")
        return None

    def duration(self, node: Node, where: str, field: str) -> timedelta | None:
        value = self.scalar(node, where, field, "a duration like 24h")
        if value is None:
            return None
        found = parse_duration(value)
        if found is None:
            self.error(
                node,
                where,
                f"`{field}` {value!r} is not a duration: write a number with a unit, like "
                "30s, 15m, 24h, 2d, 1w or 1h30m",
            )
            return None
        if not found:
            self.error(node, where, f"`{field}` should be longer than zero")
            return None
        if found > MAX_DURATION:
            self.error(
                node,
                where,
                f"`{field}` {_shown(value)!r} is too long: durations in a flow are at most "
                f"{MAX_DURATION.days} days",
            )
            return None
        return found

    def items(self, node: Node, where: str, field: str) -> list[Node]:
        """A list's items (a single value counts as a list of one)."""
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, ScalarNode) and node.tag != NULL:
            return [node]
        self.error(node, where, f"`{field}` should be a list, got {describe(node)}")
        return []
