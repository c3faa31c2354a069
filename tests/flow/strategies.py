"""Hypothesis strategies for flows: YAML text of structurally plausible flows."""

from __future__ import annotations

import yaml
from hypothesis import strategies as st

_kinds = st.sampled_from(["survey", "question", "input", "resource", "webinar", "trial", "message"])
_good_texts = st.sampled_from(["Why?", "Hi {first_name}", "{answer}?"])
_bad_texts = st.sampled_from(["Oops {", "{who}?", "{}"])


@st.composite
def flow_yaml(draw: st.DrawFn) -> str:
    """Random steps, kinds, choices and (conditional) go targets. Half of the flows are
    "noisy": they may also have wrong targets and bad texts."""
    noisy = draw(st.booleans())
    ids = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=7, unique=True))
    targets = st.sampled_from([*ids, "zz"] if noisy else ids)
    texts = st.one_of(_good_texts, _bad_texts) if noisy else _good_texts
    steps = []
    for number, step_id in enumerate(ids):
        last = number == len(ids) - 1
        kind = "end" if last and (not noisy or draw(st.booleans())) else draw(_kinds)
        step: dict[str, object] = {"id": step_id, "kind": kind}
        if kind != "end" or draw(st.booleans()):
            step["ask" if kind != "message" else "say"] = draw(texts)
        extra = kind not in ("message", "end") and draw(st.integers(0, 4)) == 0
        if kind in ("survey", "question") or extra:
            labels = draw(st.lists(st.sampled_from(["Yes", "No", "Skip"]), min_size=1, unique=True))
            step["choices"] = [
                {"label": label, "go": draw(targets)} if draw(st.integers(0, 3)) == 0 else label
                for label in labels
            ]
        if kind != "end" and draw(st.integers(0, 3)) == 0:
            routes = st.lists(
                st.fixed_dictionaries({"to": targets}, optional={"if": st.just({"answer": "x"})}),
                min_size=1,
                max_size=3,
            )
            step["go"] = draw(st.one_of(targets, routes))
        if kind in ("survey", "question", "input") and draw(st.booleans()):
            step["save_as"] = "answer"
        if kind in ("resource", "trial"):
            step["url"] = "https://example.com/?c={conversation_id}"
        if kind == "webinar":
            step["slots"] = ["2027-01-01T10:00:00+00:00"]
        steps.append(step)
    return yaml.safe_dump({"flow": "gen", "steps": steps}, sort_keys=False)
