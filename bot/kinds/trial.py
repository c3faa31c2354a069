"""trial: a sign-up link (tracked); the click is the commitment, or the product's report of the
sign-up (`wait_for: trial_started`)."""

from __future__ import annotations

from bot.flow.model import StepKind
from bot.kinds.link import LINK_KEYS, LinkKind


class Trial(LinkKind):
    name = StepKind.TRIAL
    own = LINK_KEYS
    needs = ("ask", "url")
    commitment = ("trial_started", 40)


KIND = Trial()
