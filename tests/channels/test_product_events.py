"""POST /api/events on a real web process and a real Redis: the product reports a commitment
for the prospect its link's {conversation_ref} named; forged, stale, unknown and replayed
requests change nothing (a replay answers 200)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.asyncio import Redis

from bot import engine, refs
from bot.channels.product import (
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)
from bot.config import product_event_secrets
from bot.flow.compile import compile_flow
from bot.flow.loader import parse_flow
from domain.clock import ManualClock
from domain.errors import ConfigError, FlowErrors
from domain.model import (
    Conversation,
    Due,
    LinkOpened,
    Press,
    ProductEvent,
    Reported,
    Start,
    Status,
)
from storage import keys
from tests import sharded
from tests.channels.conftest import CONV, WebProcess, stored, telegram_settings, web_process
from tests.fakes.telegram_api import FakeTelegram

SOURCE_SECRET = "billing-secret-that-is-long-enough-0123456789"
FLOW = """\
flow: trial-wait
title: Trial that really starts
alerts: {on: [trial_started]}
steps:
  - id: welcome
    ask: "Try the product?"
    choices: [{label: "Yes", go: trial}, {label: "No", go: later, commit: false}]
  - id: trial
    kind: trial
    ask: "Start your trial here."
    url: "https://app.example.com/signup?ref={conversation_ref}"
    button: "Start the trial"
    wait_for: {event: trial_started, timeout: 2d, then: stuck}
  - id: started
    kind: end
    outcome: won
    say: "Your trial is running."
  - id: stuck
    kind: end
    outcome: nurture
    say: "Need a hand with the sign-up?"
  - id: later
    kind: end
    outcome: declined
"""


@pytest.fixture
def trial_dir(tmp_path: Path) -> Path:
    (tmp_path / "trial-wait.yaml").write_text(FLOW)
    return tmp_path


async def post(
    web: WebProcess,
    body: dict[str, str],
    *,
    secret: str = SOURCE_SECRET,
    source: str = "billing",
    at: float | None = None,
) -> tuple[int, dict[str, object]]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time() if at is None else at))
    headers = {
        SOURCE_HEADER: source,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, stamp, raw),
        "Content-Type": "application/json",
    }
    response = await web.http.post(f"{web.url}/api/events", content=raw, headers=headers)
    return response.status_code, response.json()


async def log_names(redis: Redis) -> list[str]:
    logged = await sharded.entries(redis, keys.events)
    return [f["name"] for _, f in logged if f["conversation"] == CONV]


async def test_signed_events_advance_the_ladder_once_and_bad_ones_change_nothing(
    telegram_api: FakeTelegram, trial_dir: Path, redis_url: str, redis: Redis
) -> None:
    settings = telegram_settings(
        telegram_api,
        trial_dir,
        redis_url,
        product_event_secrets={"billing": SOURCE_SECRET},
    )
    ada = telegram_api.prospect(42, "Ada")
    async with web_process(settings) as web:
        assert await web.post(ada.text("/start")) == 200
        assert await web.post(ada.press("Yes")) == 200
        link = ada.last.button("Start the trial")["url"]
        ref = parse_qs(urlsplit(link).query)["ref"][0]
        assert CONV not in link and refs.verify(settings.secret, ref) == CONV

        before = await stored(redis)
        assert before is not None and before.step == "trial"
        logged = await log_names(redis)
        event = {"id": "evt_1", "event": "trial_started", "ref": ref}
        bad = [
            (dict(secret="forged-secret-forged-secret-forged-00"), 401, "bad signature"),
            (dict(source="nobody"), 401, "unknown source"),
            (dict(at=time.time() - 3600), 401, "stale timestamp"),
        ]
        for changes, status, message in bad:
            code, answer = await post(web, event, **changes)  # type: ignore[arg-type]
            assert (code, message in str(answer["error"])) == (status, True)
        unknown_event = {**event, "event": "trial_exploded"}
        assert (await post(web, unknown_event))[0] == 422
        forged_ref = {**event, "ref": refs.sign("another-secret", CONV)}
        assert (await post(web, forged_ref))[0] == 404
        nobody = {**event, "ref": refs.sign(settings.secret, "telegram:999")}
        assert (await post(web, nobody))[0] == 404
        assert await stored(redis) == before
        assert await log_names(redis) == logged
        assert await redis.exists(keys.seen(CONV, "product:billing:evt_1")) == 0

        assert await post(web, event) == (200, {"ok": True, "duplicate": False})
        after = await stored(redis)
        assert after is not None
        assert (after.step, after.status, after.outcome.value if after.outcome else None) == (
            "started",
            Status.COMPLETED,
            "won",
        )
        assert [c.name for c in after.commitments] == ["welcome_answered", "trial_started"]
        new = (await log_names(redis))[len(logged) :]
        assert new[:3] == ["reported", "committed", "alerted"]
        assert "completed" in new

        assert await post(web, event) == (200, {"ok": True, "duplicate": True})
        assert await stored(redis) == after
        assert (await log_names(redis))[len(logged) :] == new
        outbox = [json.loads(f["body"]) for _, f in await sharded.entries(redis, keys.outbox)]
        reasons = [b.get("reasons") for b in outbox if "reasons" in b]
        assert reasons == [["trial_started"]]


def test_a_wait_times_out_to_its_follow_up_and_a_click_does_not_count() -> None:
    flow = compile_flow(replace(parse_flow(FLOW, "trial-wait.yaml"), version=1))
    clock = ManualClock()
    conv = Conversation(id=CONV, flow="trial-wait", version=1)
    conv = engine.step(flow, conv, Start(), clock.now()).conversation
    at_trial = engine.step(flow, conv, Press("welcome", "yes"), clock.now())
    [wait] = [t for t in at_trial.schedule if t.kind == "wait"]
    assert wait.due == (clock.now() + timedelta(days=2)).isoformat(timespec="seconds")
    clicked = engine.step(flow, at_trial.conversation, LinkOpened("trial"), clock.now())
    assert clicked.conversation.step == "trial"
    assert clicked.conversation.commitments == at_trial.conversation.commitments

    clock.advance(timedelta(days=2))
    timed_out = engine.step(flow, clicked.conversation, Due(wait), clock.now())
    assert timed_out.conversation.step == "stuck"
    assert timed_out.conversation.outcome is not None
    assert timed_out.conversation.outcome.value == "nurture"
    assert [e.name for e in timed_out.events][:1] == ["wait_timed_out"]
    again = engine.step(flow, timed_out.conversation, Due(wait), clock.now())
    assert not again.events  # handled: a second firing does nothing

    late = engine.step(
        flow, timed_out.conversation, Reported(ProductEvent.TRIAL_STARTED, "billing"), clock.now()
    )
    assert late.conversation.step == "stuck"  # no longer waiting: recorded, not moved
    assert [c.name for c in late.conversation.commitments][-1] == "trial_started"


def test_a_waiting_step_needs_the_ref_in_its_url() -> None:
    text = FLOW.replace("?ref={conversation_ref}", "")
    with pytest.raises(FlowErrors, match=r"needs \{conversation_ref\} in its `url`"):
        parse_flow(text, "trial-wait.yaml")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("billing=short", "at least 32"),
        (f"={SOURCE_SECRET}", "source=secret pairs"),
        (SOURCE_SECRET, "source=secret pairs"),
    ],
)
def test_guessable_or_malformed_product_secrets_are_refused(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        product_event_secrets(value)
    assert product_event_secrets(f"billing={SOURCE_SECRET}, webinars={SOURCE_SECRET}x") == {
        "billing": SOURCE_SECRET,
        "webinars": f"{SOURCE_SECRET}x",
    }
