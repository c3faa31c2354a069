"""`{name}` placeholders in what the bot says: which ones a text uses, and filling them in."""

from __future__ import annotations

import string
from collections.abc import Mapping

BUILTIN_VARIABLES = frozenset(
    {"first_name", "last_name", "username", "source", "conversation_id", "flow", "score"}
)
_formatter = string.Formatter()


def variables(text: str) -> list[str]:
    """The placeholder names in `text`, in order (ValueError if braces are unbalanced)."""
    return [name for _, name, _, _ in _formatter.parse(text) if name is not None]


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill placeholders; an unknown or unanswered one becomes empty text."""
    out: list[str] = []
    for literal, name, _, _ in _formatter.parse(text):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, ""))
    return "".join(out)
