"""Large flows written out as YAML, for the validation benchmark (bench.validate) and tests.

Three shapes, each about `steps` steps long:
- "mixed": rungs of a survey, an input, a conditional message, a resource and a message, each
  saying answers saved earlier (a valid flow);
- "answers": input steps that each save an answer and say the one before (a valid flow whose
  must-be-saved dataflow tracks as many answers as there are steps);
- "messages": one run of message steps (invalid: longer than the engine says in one turn).
"""

from __future__ import annotations

SHAPES = ("mixed", "answers", "messages")


def ladder_yaml(steps: int, shape: str = "mixed") -> str:
    lines = [
        "flow: big",
        "follow_up: {after: 1h, say: 'Still there, {first_name}?'}",
        "steps:",
        *{"mixed": _mixed, "answers": _answers, "messages": _messages}[shape](steps),
        "  - {id: done, kind: end, say: 'Bye {first_name}'}",
    ]
    return "\n".join(lines) + "\n"


def _mixed(steps: int) -> list[str]:
    rungs = max(1, steps // 5)
    lines = []
    for i in range(rungs):
        following = f"role{i + 1}" if i + 1 < rungs else "done"
        lines += [
            f"  - {{id: role{i}, ask: 'Role {i}?', choices: [Founder, Other], save_as: role{i}}}",
            f"  - {{id: name{i}, ask: 'Your name as {{role{i}}}?', save_as: name{i}}}",
            f"  - id: thanks{i}",
            f"    say: 'Thanks {{name{i}}}'",
            f"    go: [{{if: {{role{i}: Founder}}, to: {following}}}, {{to: guide{i}}}]",
            f"  - {{id: guide{i}, kind: resource, ask: 'For {{name{i}}}', url: 'https://x.io/{i}'}}",
            f"  - {{id: again{i}, say: 'Again, {{role{i}}}', go: {following}}}",
        ]
    return lines


def _answers(steps: int) -> list[str]:
    return ["  - {id: a0, ask: 'First?', save_as: a0}"] + [
        f"  - {{id: a{i}, ask: 'After {{a{i - 1}}}?', save_as: a{i}}}" for i in range(1, steps)
    ]


def _messages(steps: int) -> list[str]:
    return [f"  - {{id: m{i}, say: 'Note {i}'}}" for i in range(steps)]
