"""Flow validation speed: `parse_flow` (YAML -> checked Flow, or every problem) on large
generated flows (tests/flow/generated.py).

    .venv/bin/python -m bench.validate [--steps 1000 5000] [--shapes mixed answers messages]

Shapes: "mixed" (rungs of survey, input, conditional message, resource, message, whose texts
use earlier answers), "answers" (every step saves an answer and says the one before: the
must-be-saved dataflow tracks as many answers as steps), "messages" (one run of message steps,
reported as too long). Every check runs over the whole graph. One process; each figure is the
best of 3 runs. Target (issue 9): a 5,000-step flow in under 2 s, growing about linearly.
"""

from __future__ import annotations

import argparse
import time

from bot.errors import FlowErrors
from bot.flow.loader import parse_flow
from tests.flow.generated import SHAPES, ladder_yaml

TARGET_SECONDS = 2.0  # for 5,000 steps


def validate(text: str) -> str:
    """What `ladder validate` would say, in short."""
    try:
        return f"ok, {len(parse_flow(text, 'big.yaml').steps)} steps"
    except FlowErrors as exc:
        return f"{len(exc.errors)} problem(s)"


def best_of(runs: int, text: str) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        validate(text)
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
            seconds = best_of(3, text)
            rows.append((size, seconds))
            print(
                f"{shape:<9} {size:>6} steps {len(text) / 1000:>6.0f} kB  {seconds:6.3f} s"
                f"  ({validate(text)})",
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
