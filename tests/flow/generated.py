"""A large, valid flow written out as YAML, for the validation benchmark and tests."""

from __future__ import annotations


def ladder_yaml(steps: int) -> str:
    """About `steps` steps: repeated rungs of a survey, an input, a conditional message, a
    resource and a message, each saying answers saved earlier; then an end step."""
    rungs = max(1, steps // 5)
    lines = [
        "flow: big",
        "follow_up: {after: 1h, say: 'Still there, {first_name}?'}",
        "steps:",
    ]
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
    lines.append("  - {id: done, kind: end, say: 'Bye {first_name}'}")
    return "\n".join(lines) + "\n"
