"""Helpers for flow tests: write a YAML snippet to a file and collect what the loader says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.flow.loader import load_flow
from bot.flow.model import Flow
from domain.errors import FlowErrors

EXAMPLES = sorted((Path(__file__).parents[2] / "flows").glob("*.yaml"))


@pytest.fixture
def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[str]]:
    """Load `text` as x.yaml; return every problem as 'x.yaml:line:col: message'."""
    monkeypatch.chdir(tmp_path)

    def load(text: str) -> list[str]:
        Path("x.yaml").write_text(text, encoding="utf-8")
        try:
            load_flow("x.yaml")
        except FlowErrors as exc:
            return [str(e) for e in exc.errors]
        return []

    return load


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Flow]:
    """Load `text` as x.yaml, which must be a good flow."""
    monkeypatch.chdir(tmp_path)

    def load(text: str) -> Flow:
        Path("x.yaml").write_text(text, encoding="utf-8")
        return load_flow("x.yaml")

    return load
