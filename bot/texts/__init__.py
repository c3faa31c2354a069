"""Built-in texts (what the bot says on its own, not from a flow), one small table per language,
and which language a prospect is spoken to in.

`text(Builtin.HELP, "de")` looks a text up; a language without a catalog falls back to English.
Each catalog module (en, de, es) maps every `Builtin` to its text; a test checks none is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from bot.texts import de, en, es


class Builtin(StrEnum):
    """The texts the bot says on its own; `{}` or `{name}` placeholders are filled by the caller."""

    HELP = "help"
    STALE_PRESS = "stale_press"
    STOPPED = "stopped"
    ALREADY_STOPPED = "already_stopped"
    FINISHED = "finished"
    PAUSED = "paused"
    WELCOME_BACK = "welcome_back"
    NOT_UNDERSTOOD = "not_understood"  # {labels}
    UNDERSTOOD = "understood"  # {}
    OPEN = "open"  # a link button's label when the step gives none
    LINK_HINT = "link_hint"
    BOOKED = "booked"  # {slot}
    REMINDER = "reminder"  # {title} {when} {slot}
    IN_MINUTES = "in_minutes"  # {n}
    IN_HOURS = "in_hours"  # {n}
    IN_DAYS = "in_days"  # {n}
    FORGET_ASK = "forget_ask"  # /forget's question, and its two buttons
    FORGET_YES = "forget_yes"
    FORGET_NO = "forget_no"
    FORGOTTEN = "forgotten"
    KEPT = "kept"
    EMAIL_INVALID = "email_invalid"  # typed answers that do not pass their step's check
    PHONE_INVALID = "phone_invalid"
    CONTACT_NOT_YOURS = "contact_not_yours"
    NUMBER_NEEDED = "number_needed"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    RANGE_BETWEEN = "range_between"  # {what} {low} {high}
    RANGE_AT_LEAST = "range_at_least"  # {what} {low}
    RANGE_AT_MOST = "range_at_most"  # {what} {high}
    RANGE_ANY = "range_any"  # {what}
    TEXT_EMPTY = "text_empty"
    TEXT_SHORT = "text_short"  # {n}
    TEXT_LONG = "text_long"  # {n}
    DATE_INVALID = "date_invalid"  # {example}
    DATE_BETWEEN = "date_between"  # {low} {high}
    DATE_AFTER = "date_after"  # {low}
    DATE_BEFORE = "date_before"  # {high}


DEFAULT_LANGUAGE = "en"
CATALOGS: dict[str, Mapping[str, str]] = {"en": en.TEXTS, "de": de.TEXTS, "es": es.TEXTS}


def text(key: Builtin, language: str) -> str:
    """The built-in text `key` in `language` (English when there is no catalog for it)."""
    return CATALOGS.get(language, CATALOGS[DEFAULT_LANGUAGE])[key]


def language_code(tag: str) -> str:
    """The primary language of a tag as Telegram sends it: 'de-AT' -> 'de', 'PT_br' -> 'pt'."""
    return tag.strip().replace("_", "-").split("-")[0].casefold()


def choose_language(wanted: Iterable[str], offered: Iterable[str], default: str) -> str:
    """The first of `wanted` (most preferred first: a saved `language` answer, then the
    channel's language) that is `offered`, else `default`."""
    offered = set(offered)
    for tag in wanted:
        if tag and (code := language_code(tag)) in offered:
            return code
    return default
