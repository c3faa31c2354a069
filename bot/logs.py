"""Logging of the `ladder` command: quiet by default, LOG_LEVEL to raise, no secret in any line.

By default the long-running commands (run, serve, worker) log INFO and the others WARNING, and
the chatty libraries (a `transitions` line per state change, a uvicorn access line per request,
an httpx line per API call) only their warnings. LOG_LEVEL sets the level of every logger,
those libraries included. Every line goes through one handler that blanks each secret value of
the settings and any `token=` query parameter (a dashboard link in an access line).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.errors import ConfigError

CHATTY = ("transitions", "uvicorn.access", "httpx", "httpcore")
FORMAT = "%(levelname)s %(name)s: %(message)s"
HIDDEN = "[hidden]"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
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
        if record.exc_info:  # a traceback's text can hold a url with the bot token
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure(log_level: str | None, default: int, secrets: Iterable[str]) -> None:
    """Log to stderr at LOG_LEVEL (DEBUG, INFO, ...; unset: `default`, and the chatty
    libraries at WARNING), hiding `secrets`."""
    level = default
    if log_level is not None:
        name = log_level.strip().upper()
        if name not in LEVELS:
            raise ConfigError(f"LOG_LEVEL is {log_level!r}: use one of {', '.join(LEVELS)}")
        level = logging.getLevelNamesMapping()[name]
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(Redact(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in CHATTY:
        logging.getLogger(name).setLevel(level if log_level else max(level, logging.WARNING))
