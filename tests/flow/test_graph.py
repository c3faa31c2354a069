"""Drawing a flow: Mermaid text, DOT, and the pictures graphviz makes of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bot.flow.graph import dot, mermaid, render_graph
from bot.flow.loader import load_flow, parse_flow
from bot.flow.model import Flow
from domain.errors import FlowErrors, LadderError
from tests.flow.conftest import EXAMPLES
from tests.flow.strategies import flow_yaml

Load = Callable[[str], Flow]

SMALL = """\
flow: small
steps:
  - id: welcome
    ask: 'Want the "ROI" guide?'
    choices:
      - {label: "Yes <please>", go: size}
      - {label: "Not now", go: bye, commit: false}
  - id: size
    ask: "Team size?"
    save_as: size
    go: [{if: {size: {gte: 50}}, to: big}, {to: bye}]
  - {id: big, say: "Big team #1!", go: bye}
  - {id: bye, kind: end}
"""
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


def test_mermaid_of_a_small_flow(flow: Load) -> None:
    assert mermaid(flow(SMALL)) == (
        "flowchart TD\n"
        '    s0("welcome (survey)<br/>Want the #quot;ROI#quot; guide?")\n'
        '    s1("size (input)<br/>Team size?")\n'
        '    s2["big (message)<br/>Big team #35;1!"]\n'
        '    s3(["bye (end)"])\n'
        '    s0 -->|"Yes #lt;please#gt;"| s1\n'
        '    s0 -->|"Not now"| s3\n'
        '    s1 -->|"answered, if size ≥ 50"| s2\n'
        '    s1 -->|"answered"| s3\n'
        "    s2 --> s3\n"
    )


def test_dot_of_a_small_flow(flow: Load) -> None:
    text = dot(flow(SMALL))
    assert text.startswith('digraph "small" {\n')
    assert '    s0 [label="welcome (survey)\\nWant the \\"ROI\\" guide?", shape=box];' in text
    assert '    s3 [label="bye (end)", shape=box, peripheries=2];' in text
    assert '    s1 -> s2 [label="answered, if size ≥ 50"];' in text
    assert "    s2 -> s3;" in text
    assert text.endswith("}\n")


@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".png", ".jpg", ".jpeg", ".gif", ".pdf"])
def test_render_with_graphviz(tmp_path: Path, suffix: str) -> None:
    flow = load_flow(EXAMPLES[0])
    out = tmp_path / "pictures" / f"ladder{suffix}"
    rendered = render_graph(flow, out)
    assert rendered.files == (out.with_suffix(".mmd"), out)
    assert rendered.note is None
    assert out.with_suffix(".mmd").read_text(encoding="utf-8") == mermaid(flow)
    picture = out.read_bytes()
    if suffix == ".svg":
        assert picture.startswith(b"<?xml") and all(
            s.id.replace("-", "&#45;").encode() in picture for s in flow.steps
        )
    else:
        magic = {".png": b"\x89PNG", ".gif": b"GIF8", ".pdf": b"%PDF"}.get(suffix, b"\xff\xd8\xff")
        assert picture.startswith(magic)


def test_render_without_graphviz_writes_mermaid_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "ladder.mmd"
    rendered = render_graph(load_flow(EXAMPLES[0]), out)
    assert rendered.files == (out,)
    assert rendered.note == "graphviz `dot` is not on PATH, so no .svg was drawn"
    assert not out.with_suffix(".svg").exists()


@needs_dot
def test_render_reports_a_graphviz_failure(tmp_path: Path) -> None:
    taken = tmp_path / "ladder.svg"
    taken.mkdir()  # dot cannot write its picture over a folder
    rendered = render_graph(load_flow(EXAMPLES[0]), taken)
    assert rendered.files == (tmp_path / "ladder.mmd",)
    assert rendered.note is not None and rendered.note.startswith("graphviz `dot` failed: ")


def test_render_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LadderError, match=r"cannot write .*/file/x\.mmd: "):
        render_graph(load_flow(EXAMPLES[0]), blocker / "x.mmd")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_yaml())
def test_mermaid_mentions_every_step_of_any_loaded_flow(text: str) -> None:
    try:
        flow = parse_flow(text)
    except FlowErrors:
        return
    drawn = mermaid(flow)
    assert all(f"{s.id} ({s.kind})" in drawn for s in flow.steps)
    assert drawn.count("\n    s") >= len(flow.steps)


def test_a_suffix_graphviz_is_not_asked_for_is_refused_before_writing(tmp_path: Path) -> None:
    """`-o x.bmp` once wrote x.mmd and x.svg without a word; now it names what works."""
    with pytest.raises(LadderError) as refused:
        render_graph(load_flow(EXAMPLES[0]), tmp_path / "x.bmp")
    assert str(refused.value) == (
        "cannot draw x.bmp: end the file name in .mmd (Mermaid text and an SVG) or in one of"
        " .svg, .png, .jpg, .jpeg, .gif, .pdf"
    )
    assert list(tmp_path.iterdir()) == []
