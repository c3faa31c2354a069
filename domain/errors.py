"""One exception hierarchy for everything ladderbot raises on purpose."""

from __future__ import annotations


class LadderError(Exception):
    """Root of every error ladderbot raises deliberately."""


class ConfigError(LadderError):
    """A setting (an environment variable) is missing or unsafe."""


class FlowError(LadderError):
    """A problem in a flow file, located at file:line:col (1-based)."""

    def __init__(self, message: str, file: str = "<flow>", line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class FlowErrors(LadderError):
    """Every problem found in one or more flow files; raised after validation finishes."""

    def __init__(self, errors: list[FlowError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class UnknownFlow(LadderError):
    """A flow name or version that is not published."""


class StorageError(LadderError):
    """Redis could not be reached or answered unexpectedly, after retries."""


class ConflictError(StorageError):
    """Another process changed the conversation first; the step must be recomputed."""


class DuplicateUpdate(LadderError):
    """This inbound update (Telegram update_id, Slack event_id) was processed before."""
