"""`ladder validate` and `ladder graph`, run as the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.flow.loader import load_flow
from tests.flow.conftest import EXAMPLES

ROOT = Path(__file__).parents[2]


def ladder(*args: str, cwd: Path = ROOT, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`ladder <args>` with the environment changed by `env` (None: unset)."""
    changed = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=changed,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_the_example_flows() -> None:
    done = ladder("validate", "flows")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok: flows/free-trial.yaml (free-trial, 11 steps)",
        "ok: flows/webinar-ladder.yaml (webinar-ladder, 13 steps)",
    ]


def test_validate_warns_of_alerts_without_a_slack_channel(tmp_path: Path) -> None:
    """A warning, not an error (exit 0); SLACK_CHANNEL or the flow's own channel silence it,
    as does a flow that raises no alerts."""
    steps = "steps:\n  - {id: done, kind: end, say: Bye}\n"
    (tmp_path / "nowhere.yaml").write_text("flow: nowhere\n" + steps)
    (tmp_path / "own.yaml").write_text('flow: own\nalerts: {slack_channel: "#leads"}\n' + steps)
    (tmp_path / "silent.yaml").write_text("flow: silent\nalerts: {on: []}\n" + steps)
    done = ladder("validate", str(tmp_path), SLACK_CHANNEL=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"ok: {tmp_path}/nowhere.yaml (nowhere, 1 steps)",
        f"{tmp_path}/nowhere.yaml:1:1: warning: flow 'nowhere' alerts nowhere: it has no "
        "alerts.slack_channel and SLACK_CHANNEL is not set, so the Slack app cannot post its "
        "alerts",
        f"ok: {tmp_path}/own.yaml (own, 1 steps)",
        f"ok: {tmp_path}/silent.yaml (silent, 1 steps)",
    ]
    routed = ladder("validate", str(tmp_path), SLACK_CHANNEL="#sales")
    assert routed.returncode == 0 and "warning" not in routed.stdout


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "flow: bad\n"
        "steps:\n"
        "  - id: role\n"
        '    ask: "Role?"\n'
        "    choices: [{label: Founder, go: rol}]\n"
        "    save_as: role\n"
        "  - {id: next, kind: end, say: 'Bye {nmae}', after: 1h}\n"
    )
    done = ladder("validate", str(bad), *map(str, EXAMPLES))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{bad}:5:36: step 'role': go target 'rol' is not a step (did you mean 'role'?)",
        f"{bad}:7:10: step 'next' is unreachable: no choice or go leads to it from 'role'",
        f"{bad}:7:32: step 'next': `say` uses {{nmae}}, which is not built in and no step saves",
        f"{bad}:7:46: step 'next': unknown key 'after'",
        *(
            f"ok: {path} ({load_flow(path).name}, {len(load_flow(path).steps)} steps)"
            for path in EXAMPLES
        ),
    ]


def test_graph_writes_mermaid(tmp_path: Path) -> None:
    done = ladder("graph", str(EXAMPLES[0]), "-o", str(tmp_path / "ladder.mmd"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"wrote {tmp_path / 'ladder.mmd'}"
    assert (tmp_path / "ladder.mmd").read_text(encoding="utf-8").startswith("flowchart TD\n")


def test_graph_defaults_to_the_flow_name_and_rejects_a_bad_flow(tmp_path: Path) -> None:
    done = ladder("graph", str(EXAMPLES[0].resolve()), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "free-trial.mmd").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: x\nsteps: nope\n")
    failed = ladder("graph", str(bad), cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr == f"{bad}:2:8: `steps` should be a list of steps, got 'nope'\n"


def test_graph_refuses_a_picture_format_it_cannot_draw(tmp_path: Path) -> None:
    done = ladder("graph", str(EXAMPLES[0]), "-o", str(tmp_path / "x.webm"))
    assert done.returncode == 1
    assert done.stderr.startswith("ladder: cannot draw x.webm: end the file name in .mmd")
    assert list(tmp_path.iterdir()) == []


def test_validate_warns_about_a_webinar_in_the_past_and_still_passes(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(
        "flow: old\nalerts: {slack_channel: '#sales'}\nsteps:\n"
        "  - {id: demo, kind: webinar, ask: When?, slots: ['2001-05-01T10:00:00+00:00']}\n"
        "  - {id: done, kind: end}\n"
    )
    done = ladder("validate", str(old))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"ok: {old} (old, 2 steps)",
        f"{old}:4:10: warning: step 'demo': every slot is in the past (the last was"
        " 2001-05-01T10:00:00+00:00), so prospects have no time to book; add upcoming `slots`",
    ]
