"""Flow validation speed: `parse_flow` (YAML -> checked Flow, or every problem) on large
generated flows (tests/flow/generated.py).

    .venv/bin/python -m bench.validate [--steps 1000 5000] [--shapes mixed answers messages]

Shapes: "mixed" (rungs of survey, input, conditional message, resource, message, whose texts
use earlier answers), "answers" (every step saves an answer and says the one before: the
must-be-saved dataflow tracks as many answers as steps), "messages" (one run of message steps,
reported as too long). Every check runs over the whole graph. Baseline, measured in the same
run: composing the same YAML into nodes with libyaml (`yaml.compose`), which any reading of the
file costs. One process; each figure is the best of 3 runs. Target (issue 9): a 5,000-step flow
in under 2 s, growing about linearly.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import yaml

from bot.flow.loader import parse_flow
from domain.errors import FlowErrors
from tests.flow.generated import SHAPES, ladder_yaml

TARGET_SECONDS = 2.0  # for 5,000 steps


def validate(text: str) -> str:
    """What `ladder validate` would say, in short."""
    try:
        return f"ok, {len(parse_flow(text, 'big.yaml').steps)} steps"
    except FlowErrors as exc:
        return f"{len(exc.errors)} problem(s)"


def compose(text: str) -> object:
    return yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def best_of(runs: int, work: Callable[[str], object], text: str) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work(text)
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    args = parser.parse_args(argv)
    for shape in args.shapes:
        rows = []
        for size in args.steps:
            text = ladder_yaml(size, shape)
            baseline = best_of(3, compose, text)
            seconds = best_of(3, validate, text)
            rows.append((size, seconds))
            print(
                f"{shape:<9} {size:>6} steps {len(text) / 1000:>6.0f} kB  {seconds:6.3f} s"
                f"  ({seconds / baseline:4.1f} x baseline {baseline:.3f} s)  {validate(text)}",
                flush=True,
            )
        for size, seconds in rows:
            if size >= 5000:
                verdict = "ok" if seconds < TARGET_SECONDS else "MISSED"
                print(
                    f"  {size} steps in {seconds:.2f} s (target < {TARGET_SECONDS:g} s): {verdict}"
                )
        if len(rows) > 1:
            (small, t_small), (large, t_large) = rows[0], rows[-1]
            print(f"  time x{t_large / t_small:.1f} for steps x{large / small:.1f}")


if __name__ == "__main__":
    main()
