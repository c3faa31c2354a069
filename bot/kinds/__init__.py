"""The step kinds, one module each, registered in one table: `KINDS[step.kind]` is the kind's
grammar, validation, diagram shape and engine behaviour (see `bot.kinds.base.Kind`).

A new kind is a module here with a `Kind` subclass, its name in `StepKind`, one line below,
a section in docs/flows.md and a step in an example flow."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bot.flow.model import StepKind
from bot.kinds import contact, end, input, message, resource, survey, trial, webinar
from bot.kinds.base import Kind

KINDS: Mapping[StepKind, Kind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            survey.KIND,
            input.KIND,
            contact.KIND,
            resource.KIND,
            webinar.KIND,
            trial.KIND,
            message.KIND,
            end.KIND,
        )
    }
)
# Which kind sets a timer of each timer kind (and handles it when it is due).
TIMER_OWNERS: Mapping[str, Kind] = MappingProxyType(
    {timer: kind for kind in KINDS.values() for timer in kind.timers}
)
# Every word `kind:` accepts, and the kind it means.
KIND_WORDS: Mapping[str, StepKind] = MappingProxyType(
    {word: kind.name for kind in KINDS.values() for word in (kind.name.value, *kind.aliases)}
)

__all__ = ["KINDS", "KIND_WORDS", "TIMER_OWNERS", "Kind"]
