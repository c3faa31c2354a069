"""The link kinds (resource and trial): a tracked link button; opening it is the commitment,
unless the step waits for the product to report an event (`wait_for`), with a timeout."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yaml.nodes import MappingNode, Node

from bot.flow.grammar import Schema, ref, strict
from bot.flow.model import Choice, Route, Step, WaitFor
from bot.flow.nodes import Key, suggest
from bot.flow.steps import StepReader
from bot.flow.template import CONVERSATION_REF_MARKER, render_url
from bot.kinds.base import WAITING, Get, Kind, Turn
from bot.texts import Builtin
from domain.model import LinkButton, ProductEvent, Reported, Status, Timer, iso

PRODUCT_EVENTS = tuple(e.value for e in ProductEvent)
WAIT_FOR_KEYS = ("event", "timeout", "then")
_EVENT: Schema = {"enum": list(PRODUCT_EVENTS)}
LINK_KEYS: dict[str, Schema] = {
    "url": {"type": "string", "pattern": "^https://"},
    "button": ref("label"),
    "wait_for": {
        "description": "Resource and trial steps: wait for the product to report this event "
        "(POST /api/events) instead of taking the click; with `timeout` and `then`, go on after "
        "that long without it.",
        "oneOf": [
            _EVENT,
            strict({"event": _EVENT, "timeout": ref("duration"), "then": ref("id")}, ("event",)),
        ],
    },
}


class LinkKind(Kind):
    keys = WAITING | set(LINK_KEYS)
    answer = "opened"
    shape = ("[/", "/]")
    dot_shape = 'shape=box, style="rounded,bold"'
    timers = frozenset({"wait"})

    def read(self, reader: StepReader, get: Get, where: str, step_id: str) -> dict[str, Any]:
        url = None
        if (url_node := get("url")) is not None:
            url = reader.said(url_node, where, "url", step_id)
            if url is not None and url[:8].lower() != "https://":
                reader.error(url_node, where, f"url {url!r} should start with https://")
        button = get("button")
        return {
            "url": url,
            "button": reader.label(button, where, "button") if button is not None else None,
            "wait_for": wait_for(reader, get("wait_for"), where, url),
        }

    def enter(self, turn: Turn, step: Step) -> str | None:
        turn.present(step, intro=step.say)
        self.sent_with(turn, step)
        turn.follow_up(step, seq=1)
        wait = step.wait_for
        if wait is not None and wait.timeout is not None:
            turn.schedule.append(turn.timer("wait", "wait", turn.now + wait.timeout, step, 0))
        return None

    def sent_with(self, turn: Turn, step: Step) -> None:
        """What goes out with the link (a resource's document)."""

    def link_button(self, turn: Turn, step: Step) -> LinkButton | None:
        if not step.url:
            return None
        url = render_url(step.url, turn.values())
        return LinkButton(step.button or turn.text(Builtin.OPEN), step.id, url)

    def on_text(self, turn: Turn, step: Step, text: str, choices: tuple[Choice, ...]) -> None:
        turn.reject(step, turn.text(Builtin.LINK_HINT))

    def on_link(self, turn: Turn, step: Step) -> None:
        if step.wait_for is None:
            turn.revive()
            turn.commit(step)
            turn.go_on(step)

    def on_reported(self, turn: Turn, step: Step, event: Reported) -> bool:
        if step.wait_for is None or step.wait_for.event != event.event:
            return False
        turn.revive()
        turn.cancel.append(turn.timer_id("wait"))
        turn.commit(step, name=event.event.value)
        turn.go_on(step)
        return True

    def on_timer(self, turn: Turn, timer: Timer) -> None:
        """The product did not report in time: go to the `then` step."""
        conv = turn.conv
        if conv.status not in (Status.ACTIVE, Status.DROPPED) or conv.step != timer.step:
            return
        wait = turn.current().wait_for
        if wait is None or wait.timeout is None or wait.then is None:
            return
        if iso(datetime.fromisoformat(conv.step_at) + wait.timeout) != timer.due:
            return  # a timer of an earlier visit to the step
        turn.revive()
        turn.emit("wait_timed_out", event=wait.event.value)
        turn.enter(wait.then.to)


def wait_for(reader: StepReader, node: Node | None, where: str, url: str | None) -> WaitFor | None:
    """`wait_for: trial_started`, or `{event: trial_started, timeout: 3d, then: step}`."""
    if node is None:
        return None
    fields: dict[str, Key] | None = {}
    if isinstance(node, MappingNode):
        fields = reader.fields(node, f"{where}: wait_for", WAIT_FOR_KEYS, required=("event",))
        if fields is None or "event" not in fields:
            return None
        event_node = fields["event"].value
    else:
        event_node = node
    assert fields is not None
    value = reader.scalar(event_node, where, "wait_for", "a product event")
    if value is None:
        return None
    if value not in PRODUCT_EVENTS:
        reader.error(
            event_node,
            where,
            f"`wait_for` {value!r} is not a product event{suggest(value, PRODUCT_EVENTS)}; "
            "use one of " + ", ".join(PRODUCT_EVENTS),
        )
        return None
    if url is not None and CONVERSATION_REF_MARKER not in url:
        reader.error(
            event_node,
            where,
            "a step that waits for the product needs {conversation_ref} in its `url`: "
            "the product names the prospect with it",
        )
    timeout = None
    if "timeout" in fields:
        timeout = reader.duration(fields["timeout"].value, where, "timeout")
    then = None
    if "then" in fields:
        target = reader.scalar(fields["then"].value, where, "then", "a step id")
        then = Route(target, pos=reader.pos(fields["then"].value)) if target else None
    if ("timeout" in fields) != ("then" in fields):
        reader.error(node, where, "`wait_for` needs both `timeout` and `then` (where to go after)")
    return WaitFor(ProductEvent(value), timeout, then)
