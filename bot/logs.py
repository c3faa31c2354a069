"""Logging of the `ladder` command: quiet by default, LOG_LEVEL to raise, no secret in any line,
plain text or one JSON object a line (LOG_FORMAT=json).

By default the long-running commands (run, serve, worker) log INFO and the others WARNING, and
the chatty libraries (a `transitions` line per state change, a uvicorn access line per request,
an httpx line per API call) only their warnings. LOG_LEVEL sets the level of every logger,
those libraries included. Every line goes through one handler that blanks each secret value of
the settings and any `token=` query parameter (a dashboard link in an access line).

`record(logger, what, **fields)` logs one structured INFO line (an update handled, a delivery):
its fields follow the message as `key=value`, or are keys of the JSON object. Such lines name
the conversation by its id, never the prospect (no names, emails or phone numbers at INFO).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from domain.errors import ConfigError

CHATTY = ("transitions", "uvicorn.access", "httpx", "httpcore")
FORMAT = "%(levelname)s %(name)s: %(message)s"
HIDDEN = "[hidden]"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("plain", "json")
FIELDS = "fields"  # the LogRecord attribute holding a structured line's fields
_TOKEN_PARAMETER = re.compile(r"([?&]token=)[^&\s\"']*", re.IGNORECASE)


class Redact(logging.Filter):
    """Replaces the secret values (and `token=` query values) in a record's final text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # longest first, so a secret containing another is hidden whole
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        return _TOKEN_PARAMETER.sub(rf"\g<1>{HIDDEN}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        fields = getattr(record, FIELDS, None)
        if fields:
            setattr(record, FIELDS, {
                k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()
            })  # fmt: skip
        if record.exc_info:  # a traceback's text can hold a url with the bot token
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class Plain(logging.Formatter):
    """`LEVEL logger: message key=value ...`."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, FIELDS, None) or {}
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        head, newline, rest = text.partition("\n")  # a traceback stays below the line
        return f"{head} {pairs}{newline}{rest}" if pairs else text


class Json(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the fields, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **(getattr(record, FIELDS, None) or {}),
        }
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["error"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def record(logger: logging.Logger, what: str, **fields: object) -> None:
    """One structured INFO line: `what` happened, with `fields` (ids, names of things, result,
    milliseconds; never a prospect's personal data)."""
    if logger.isEnabledFor(logging.INFO):
        logger.info(what, extra={FIELDS: fields})


def configure(
    log_level: str | None, default: int, secrets: Iterable[str], log_format: str = "plain"
) -> None:
    """Log to stderr at LOG_LEVEL (DEBUG, INFO, ...; unset: `default`, and the chatty
    libraries at WARNING) as LOG_FORMAT (plain or json), hiding `secrets`."""
    if log_format not in FORMATS:
        raise ConfigError(f"LOG_FORMAT is {log_format!r}: use one of {', '.join(FORMATS)}")
    level = default
    if log_level is not None:
        name = log_level.strip().upper()
        if name not in LEVELS:
            raise ConfigError(f"LOG_LEVEL is {log_level!r}: use one of {', '.join(LEVELS)}")
        level = logging.getLevelNamesMapping()[name]
    handler = logging.StreamHandler()
    handler.setFormatter(Json() if log_format == "json" else Plain())
    handler.addFilter(Redact(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # Python's warnings are lines of this format too
    for name in CHATTY:
        logging.getLogger(name).setLevel(level if log_level else max(level, logging.WARNING))
