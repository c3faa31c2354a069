"""`{name}` placeholders in what the bot says: which ones a text uses, and filling them in."""

from __future__ import annotations

import string
from collections.abc import Mapping
from urllib.parse import quote

BUILTIN_VARIABLES = frozenset(
    {"first_name", "last_name", "username", "source", "conversation_id", "flow", "score"}
)
CONVERSATION_REF = "conversation_ref"  # only in a link step's url: the channel signs it (bot.refs)
CONVERSATION_REF_MARKER = "{" + CONVERSATION_REF + "}"  # what the engine fills in for it
_formatter = string.Formatter()
URL_SAFE = ":@"  # kept as they are in a value put into a URL (besides letters, digits, -._~)


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


def render_url(url: str, values: Mapping[str, str]) -> str:
    """Fill placeholders in a link: each value percent-encoded (so `&`, `#`, `=` or a space in
    a saved answer cannot change the URL), and a query parameter left empty is left out."""
    encoded = {name: quote(value, safe=URL_SAFE) for name, value in values.items()}
    filled = render(url, encoded)
    base, hash_, fragment = filled.partition("#")
    path, question, query = base.partition("?")
    kept = [pair for pair in query.split("&") if pair and not pair.endswith("=")]
    query_part = f"?{'&'.join(kept)}" if question and kept else ""
    return f"{path}{query_part}{hash_}{fragment}"
