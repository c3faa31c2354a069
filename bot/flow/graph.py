"""Draw a flow: Mermaid text (renders on GitHub and in most editors) and, when graphviz's `dot`
is installed, a picture (SVG, PNG, JPEG, GIF or PDF, by the output file's suffix). The edges
are `bot.flow.validate.ways`, so the picture shows exactly the paths the validator checks."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.flow.model import Condition, Flow, Op, Step
from bot.flow.validate import Way, ways
from bot.kinds import KINDS
from domain.errors import LadderError

# A picture's suffix -> graphviz's output format; `.mmd` (or none) draws Mermaid text and an SVG.
IMAGE_FORMATS = {
    ".svg": "svg",
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".gif": "gif",
    ".pdf": "pdf",
}
TEXT_SUFFIXES = ("", ".mmd")
_OPS = {Op.EQ: "=", Op.IN: "in", Op.GT: ">", Op.GTE: "≥", Op.LT: "<", Op.LTE: "≤"}
_PREVIEW = 40


@dataclass(frozen=True)
class Rendered:
    """What `render_graph` wrote, and why there is no picture if there is none."""

    files: tuple[Path, ...]
    note: str | None = None


def mermaid(flow: Flow) -> str:
    """The flow as a Mermaid flowchart: one node per step, one edge per way on."""
    node = {s.id: f"s{i}" for i, s in enumerate(flow.steps)}
    lines = ["flowchart TD"]
    for step in flow.steps:
        opening, closing = KINDS[step.kind].shape
        lines.append(f'    {node[step.id]}{opening}"{_mermaid_text(_caption(step))}"{closing}')
    for way, label in _edges(flow):
        arrow = f'-->|"{_mermaid_text(label)}"|' if label else "-->"
        lines.append(f"    {node[way.source]} {arrow} {node[way.to]}")
    return "\n".join(lines) + "\n"


def dot(flow: Flow) -> str:
    """The flow in graphviz's DOT language, for an SVG or PNG picture."""
    node = {s.id: f"s{i}" for i, s in enumerate(flow.steps)}
    lines = [
        f"digraph {_dot_text(flow.name)} {{",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for step in flow.steps:
        shape = KINDS[step.kind].dot_shape
        label = _dot_text(_caption(step))
        lines.append(f"    {node[step.id]} [label={label}, {shape}];")
    for way, label in _edges(flow):
        attrs = f" [label={_dot_text(label)}]" if label else ""
        lines.append(f"    {node[way.source]} -> {node[way.to]}{attrs};")
    return "\n".join([*lines, "}"]) + "\n"


def render_graph(flow: Flow, out: Path) -> Rendered:
    """Write `<out>.mmd`, and the picture `out` (`<out>.svg` for .mmd) when `dot` is on PATH.
    Another suffix is refused before anything is written, naming the ones that work."""
    out = Path(out)
    if out.suffix.lower() not in IMAGE_FORMATS and out.suffix not in TEXT_SUFFIXES:
        raise LadderError(
            f"cannot draw {out.name}: end the file name in .mmd (Mermaid text and an SVG) "
            f"or in one of {', '.join(IMAGE_FORMATS)}"
        )
    text_file = out.with_suffix(".mmd")
    try:
        text_file.parent.mkdir(parents=True, exist_ok=True)
        text_file.write_text(mermaid(flow), encoding="utf-8")
    except OSError as exc:
        raise LadderError(f"cannot write {text_file}: {exc.strerror}") from exc
    image = out if out.suffix.lower() in IMAGE_FORMATS else out.with_suffix(".svg")
    program = shutil.which("dot")
    if program is None:
        return Rendered(
            (text_file,), f"graphviz `dot` is not on PATH, so no {image.suffix} was drawn"
        )
    done = subprocess.run(
        [program, f"-T{IMAGE_FORMATS[image.suffix.lower()]}", "-o", str(image)],
        input=dot(flow),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return Rendered((text_file,), f"graphviz `dot` failed: {done.stderr.strip()}")
    return Rendered((text_file, image))


def _edges(flow: Flow) -> list[tuple[Way, str]]:
    """Every way on with its label, once: a survey's choices that take the step's way on are
    drawn as that one way."""
    found: dict[tuple[str, str, str], Way] = {}
    for step in flow.steps:
        for way in ways(flow, step):
            shown = "" if way.shared and KINDS[step.kind].answer is None else way.label
            found.setdefault((way.source, way.to, _edge_label(shown, way.when)), way)
    return [(way, label) for (_, _, label), way in found.items()]


def _caption(step: Step) -> str:
    text = " ".join((step.ask or step.say or "").split())
    short = text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
    return f"{step.id} ({step.kind})\n{short}" if short else f"{step.id} ({step.kind})"


def _edge_label(label: str, when: tuple[Condition, ...]) -> str:
    conditions = " and ".join(_condition(c) for c in when)
    if label and conditions:
        return f"{label}, if {conditions}"
    return label or (f"if {conditions}" if conditions else "")


def _condition(condition: Condition) -> str:
    if condition.op == Op.SET:
        return f"{condition.var} {'set' if condition.value else 'not set'}"
    value = condition.value
    if isinstance(value, tuple):
        shown = " / ".join(value)
    else:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{condition.var} {_OPS[condition.op]} {shown}"


def _mermaid_text(text: str) -> str:
    """Mermaid labels are quoted; quotes and angle brackets go in as entities."""
    return (
        text.replace("#", "#35;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", "<br/>")
    )


def _dot_text(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
