"""Flow validation speed: `parse_flow` (YAML -> checked Flow) on large generated flows.

    .venv/bin/python -m bench.validate [--steps 1000 5000]

Each flow repeats a rung of five steps (survey, input, conditional message, resource, message)
whose texts use answers saved earlier, so every check runs over the whole graph: reachability,
dead ends, message loops and runs, and the must-be-saved dataflow for {variables}. One process;
each figure is the best of 3 runs. Target: a 5,000-step flow in under 2 s, and time growing
about linearly with the number of steps.
"""

from __future__ import annotations

import argparse
import time

from bot.flow.loader import parse_flow
from tests.flow.generated import ladder_yaml

TARGET_SECONDS = 2.0  # for 5,000 steps (issue 9)


def best_of(runs: int, text: str) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        parse_flow(text, "big.yaml")
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 5000])
    sizes = parser.parse_args(argv).steps
    rows = []
    for size in sizes:
        text = ladder_yaml(size)
        seconds = best_of(3, text)
        steps = len(parse_flow(text).steps)
        rows.append((steps, seconds))
        print(f"{steps:>6} steps  {len(text) / 1000:>7.0f} kB  {seconds:6.3f} s", flush=True)
    for steps, seconds in rows:
        if steps >= 5000:
            verdict = "ok" if seconds < TARGET_SECONDS else "MISSED"
            print(f"{steps} steps in {seconds:.2f} s (target < {TARGET_SECONDS:g} s): {verdict}")
    if len(rows) > 1:
        (small, t_small), (large, t_large) = rows[0], rows[-1]
        print(
            f"time x{t_large / t_small:.1f} for steps x{large / small:.1f} (linear: about the same)"
        )


if __name__ == "__main__":
    main()
