"""The flow grammar, defined once: limits, name patterns, and the JSON Schema fragment of every
key a flow or a step can have. The loader checks against these limits and patterns, and
`bot.flow.schema` builds schema.json from these fragments and the step kinds of `bot.kinds`
(each kind adds the keys only it reads and says which keys it takes and needs)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from bot.flow.model import COMPARISONS, Op
from domain.model import Outcome

Schema = dict[str, Any]

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_LABEL = 64  # a button's text
MAX_CALLBACK_IDS = 52  # bytes of step id + choice id in a button's callback data
MAX_SLUG = 24  # a choice id made from its label
# Bounds on every number and size a flow can give, so no file can make the loader or the bot
# build, wait or count without end (docs/flows.md, "Limits").
MAX_FLOW_CHARS = 4_000_000  # the whole file
MAX_STEPS = 10_000
MAX_NAME = 64  # step, choice, variant and commitment ids, variable names
MAX_TITLE = 256
MAX_CHANNEL = 80  # a Slack channel name
MAX_BUTTONS = 100  # a Telegram message's buttons: a step's choices and webinar slots together
MAX_NUDGES = 20  # follow-up messages at one step
MAX_VARIANTS = 20
MAX_DURATION = timedelta(days=366)  # the longest a flow waits (follow-ups, reminders, ...)
MAX_SCORE = 1_000  # lead score points of one commitment
MAX_ALERT_SCORE = 1_000_000  # alerts.score_at_least
MAX_MEDIA_SOURCE = 1024  # a `media` URL or path
MAX_CAPTION = 1024  # Telegram's longest media caption
MAX_NUMBER = 1e15  # validator bounds and `if` comparisons: whole numbers stay exact
MAX_WEIGHT = 1_000.0  # a variant's weight

FLOW_NAME = re.compile(r"[a-z0-9-]{1,32}")
STEP_ID = re.compile(r"[a-z0-9_-]+")
VARIABLE = re.compile(r"[a-z][a-z0-9_]*")
DURATION = re.compile(
    r"\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?"
    r"\s*(?:(\d+)\s*s)?\s*"
)
LANGUAGE = re.compile(r"[a-z]{2,3}")  # ISO 639 code: en, de, es
QUIET_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")

FOLLOW_UP_KEYS = ("after", "max", "say", "nudges", "quiet_hours", "drop_after", "stale_after")
ALERT_KEYS = ("slack_channel", "on", "score_at_least")
CHOICE_KEYS = ("label", "id", "value", "go", "commit")
ROUTE_KEYS = ("if", "to")
VARIANT_KEYS = ("id", "ask", "weight")


def parse_duration(text: str) -> timedelta | None:
    """'30s', '15m', '24h', '2d', '1w' or combinations like '1h30m'; None if not one;
    `timedelta.max` for one too long to represent."""
    match = DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        return None
    if any(len(g) > 12 for g in match.groups() if g):  # int() of a huge digit string is slow
        return timedelta.max
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        return timedelta.max


def pattern(regex: re.Pattern[str]) -> str:
    """A loader pattern as JSON Schema writes it (anchored: the loader uses fullmatch)."""
    return f"^{regex.pattern}$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def one_or_list(item: Schema) -> Schema:
    return {"oneOf": [item, {"type": "array", "minItems": 1, "items": item}]}


def strict(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these keys (and these required)."""
    found: Schema = {"type": "object", "additionalProperties": False}
    if required:
        found["required"] = list(required)
    found["properties"] = properties
    return found


_DURATION_SCHEMA = (
    r"^(?=.*[0-9])\s*(?:[0-9]+\s*w)?\s*(?:[0-9]+\s*d)?\s*(?:[0-9]+\s*h)?\s*(?:[0-9]+\s*m)?"
    r"\s*(?:[0-9]+\s*s)?\s*$"
)
_FOLLOW_UP: Schema = {
    "description": "Nudges for a prospect who went quiet: after/max/say, or a nudges list.",
    **strict(
        {
            "after": ref("duration"),
            "max": {"type": "integer", "minimum": 1, "maximum": MAX_NUDGES},
            "say": one_or_list(ref("text")),
            "nudges": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_NUDGES,
                "items": strict({"after": ref("duration"), "say": ref("text")}, ("after", "say")),
            },
            "quiet_hours": {
                "description": 'From-to, local time, e.g. "21:00-08:00".',
                "type": "string",
                "pattern": r"^\s*[0-9]{1,2}:[0-9]{2}\s*-\s*[0-9]{1,2}:[0-9]{2}\s*$",
            },
            "drop_after": ref("duration"),
            "stale_after": ref("duration"),
        }
    ),
    "oneOf": [
        {"required": ["after", "say"], "not": {"required": ["nudges"]}},
        {
            "required": ["nudges"],
            "not": {"anyOf": [{"required": [k]} for k in ("after", "say", "max")]},
        },
    ],
}
_COMPARE = {op.value: {"type": "boolean" if op == Op.SET else "number"} for op in COMPARISONS}

# Shared pieces, written once and referred to from the flow's and the kinds' keys.
DEFS: dict[str, Schema] = {
    "text": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TEXT,
        "description": "Text the bot sends; {first_name}, {source}... and saved answers are "
        "filled in.",
    },
    "label": {
        "description": f"A button's text (at most {MAX_LABEL} characters).",
        "type": ["string", "number"],
        "minLength": 1,
        "maxLength": MAX_LABEL,
    },
    "id": {"type": "string", "pattern": pattern(STEP_ID), "maxLength": MAX_NAME},
    "duration": {
        "description": "30s, 15m, 24h, 2d, 1w or combinations like 1h30m.",
        "type": "string",
        "pattern": _DURATION_SCHEMA,
    },
    "alerts": {
        "description": "When to tell the sales team in Slack.",
        **strict(
            {
                "slack_channel": {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL},
                "on": {
                    "description": "Domain events (completed, dropped...) or commitment names "
                    "(webinar_booked...).",
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                },
                "score_at_least": {"type": "integer", "minimum": 0, "maximum": MAX_ALERT_SCORE},
            }
        ),
    },
    "follow_up": _FOLLOW_UP,
    "condition": {
        "description": "answer: value (equals, any case) | [a, b] (one of) | {gte: 50} | "
        "{set: true}.",
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {
            "oneOf": [
                {"type": ["string", "number", "boolean"]},
                {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}},
                {"type": "object", "minProperties": 1, **strict(_COMPARE)},
            ]
        },
    },
    "go": {
        "description": "The next step's id, or a list tried in order: [{if: {...}, to: id}, ..., "
        "{to: id}].",
        "oneOf": [
            ref("id"),
            {
                "type": "array",
                "minItems": 1,
                "items": strict({"if": ref("condition"), "to": ref("id")}, ("to",)),
            },
        ],
    },
    "choice": {
        "oneOf": [
            ref("label"),
            strict(
                {
                    "label": ref("label"),
                    "id": ref("id"),
                    "value": {"type": ["string", "number"]},
                    "go": ref("go"),
                    "commit": {"type": "boolean"},
                },
                ("label",),
            ),
        ]
    },
    "language": {"type": "string", "pattern": pattern(LANGUAGE)},
    "step_texts": {
        "description": "A step's texts in one language: choices and follow_up in the order "
        "written, variants by id.",
        **strict(
            {
                "say": ref("text"),
                "ask": ref("text"),
                "choices": {"type": "array", "minItems": 1, "items": ref("label")},
                "button": ref("label"),
                "hint": ref("text"),
                "variants": {"type": "object", "additionalProperties": ref("text")},
                "follow_up": {"type": "array", "minItems": 1, "items": ref("text")},
            }
        ),
    },
    "outcome": {
        "description": "What reaching an end means: won (the goal), declined (said no), "
        "disqualified (not a fit), nurture (not ready yet), lost (set by sales).",
        "enum": [o.value for o in Outcome],
    },
}

FLOW_KEYS: dict[str, Schema] = {
    "flow": {
        "description": "The flow's name; it goes into /start deep links.",
        "type": "string",
        "pattern": pattern(FLOW_NAME),
    },
    "title": {
        "description": "Shown in reminders and calendar invitations (default: the name).",
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TITLE,
    },
    "timezone": {
        "description": "IANA time zone for quiet hours and webinar times, e.g. Europe/Berlin "
        "(default UTC).",
        "type": "string",
        "minLength": 1,
    },
    "success": {
        "description": "The outcomes that count as a conversion (default [won]).",
        **one_or_list(ref("outcome")),
    },
    "alerts": ref("alerts"),
    "follow_up": {"oneOf": [ref("follow_up"), {"const": False}]},
    "migrate": {
        "description": "Removed step id -> the step where its in-flight prospects continue.",
        "type": "object",
        "propertyNames": {"pattern": pattern(STEP_ID)},
        "additionalProperties": {"type": "string", "pattern": pattern(STEP_ID)},
    },
    "default_language": {
        "description": "The language the steps are written in, e.g. en (default en).",
        **ref("language"),
    },
    "languages": {
        "description": "Every language the flow speaks, e.g. [en, de]; each other than the "
        "default has its texts under `translations`.",
        "type": "array",
        "minItems": 1,
        "items": ref("language"),
    },
    "translations": {
        "description": "Per language: the flow's follow-ups and, per step id, its texts.",
        "type": "object",
        "propertyNames": {"pattern": pattern(LANGUAGE)},
        "additionalProperties": strict(
            {
                "follow_up": {"type": "array", "minItems": 1, "items": ref("text")},
                "steps": {
                    "type": "object",
                    "propertyNames": {"pattern": pattern(STEP_ID)},
                    "additionalProperties": ref("step_texts"),
                },
            }
        ),
    },
    "steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": ref("step")},
}
FLOW_REQUIRED = ("flow", "steps")

# The keys every kind's steps may share; a kind says which of them it takes (`bot.kinds.base`)
# and defines the keys only it reads. `kind` is filled in by the schema from the kinds.
STEP_KEYS: dict[str, Schema] = {
    "id": ref("id"),
    "kind": {},
    "say": ref("text"),
    "ask": ref("text"),
    "go": ref("go"),
    "choices": {"type": "array", "minItems": 1, "maxItems": MAX_BUTTONS, "items": ref("choice")},
    "save_as": {"type": "string", "pattern": pattern(VARIABLE), "maxLength": MAX_NAME},
    "commitment": ref("id"),
    "score": {"type": "integer", "minimum": 0, "maximum": MAX_SCORE},
    "follow_up": {"oneOf": [ref("follow_up"), {"const": False}]},
    "media": {
        **strict(
            {
                "image": {"type": "string", "minLength": 1, "maxLength": MAX_MEDIA_SOURCE},
                "video": {"type": "string", "minLength": 1, "maxLength": MAX_MEDIA_SOURCE},
                "document": {"type": "string", "minLength": 1, "maxLength": MAX_MEDIA_SOURCE},
                "caption": ref("text"),
            }
        ),
        "description": "An image, video or document sent before the step's text: an https URL "
        "or a file in the flows folder (media/intro.png), with an optional caption.",
        "minProperties": 1,
    },
    "variants": {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_VARIANTS,
        "items": strict(
            {
                "id": ref("id"),
                "ask": ref("text"),
                "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WEIGHT},
            },
            ("id", "ask"),
        ),
    },
}
