"""resource: a link (tracked) to something of value, and optionally a document to send; the
click is the commitment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yaml.nodes import Node

from bot.flow.model import Step, StepKind
from bot.flow.steps import StepReader
from bot.kinds.base import Get, Turn
from bot.kinds.link import LINK_KEYS, LinkKind
from domain.model import SendDocument

MAX_PATH = 255  # a `document` path


class Resource(LinkKind):
    name = StepKind.RESOURCE
    keys = LinkKind.keys | {"document"}
    own = {**LINK_KEYS, "document": {"type": "string", "minLength": 1, "maxLength": MAX_PATH}}
    needs = ("url",)
    needs_text = True
    commitment = ("resource_opened", 10)

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        return {
            **super().read(reader, get, where, step_id),
            "document": document(reader, get("document"), where),
        }

    def sent_with(self, turn: Turn, step: Step) -> None:
        if step.document:
            turn.actions.append(SendDocument(step.document, step.button or ""))


def document(reader: StepReader, node: Node | None, where: str) -> str | None:
    if node is None:
        return None
    value = reader.scalar(node, where, "document", "a file path")
    if value is None or not reader.short(node, where, "document", value, MAX_PATH):
        return None
    if Path(value).is_absolute() or ".." in Path(value).parts or "\\" in value:
        reader.error(
            node,
            where,
            f"document {value!r} should be a path inside the flow's "
            "folder, like files/checklist.pdf",
        )
        return None
    return value


KIND = Resource()
