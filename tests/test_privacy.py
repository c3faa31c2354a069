"""One prospect through every feature (Telegram ladder, keyboard, tracked link, product event,
Slack alert, claim, take over, relays, a dead letter, hand back, follow-up), on a real
redis-server, a real web process, and the fake Telegram and Slack APIs: `ladder export` lists
every kind of record bot.privacy knows, and /forget leaves no key or value naming them but the
documented markers."""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.channels.product import SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER, signature
from bot.channels.slack import blocks as slack
from bot.texts import Builtin, text
from domain.model import Conversation, DomainEvent, Status
from storage import keys
from storage.base import StepWrite
from storage.outbox import Outbox, OutboxPolicy
from storage.prospects import ProspectRecords
from storage.redis import RedisConversationStore
from tests import sharded
from tests.channels.conftest import CONV, WebProcess, stored, telegram_settings, web_process
from tests.fakes.http import listening_socket
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack, button_press, sign
from tests.fakes.telegram_api import FakeTelegram
from tests.test_analytics import ladder_cli

FORGET_YES = text(Builtin.FORGET_YES, "en")
FORGOTTEN = text(Builtin.FORGOTTEN, "en")

SOURCE_SECRET = "billing-secret-that-is-long-enough-0123456789"
SALES = "U0SALES"
FLOW = """\
flow: everything
title: Every feature
alerts: {slack_channel: "#sales-leads", on: [email_given]}
follow_up: {after: 1h, say: "Still there?"}
steps:
  - id: welcome
    ask: "Want our checklist?"
    choices: [{label: "Yes please", go: email}, {label: "Not now", go: later, commit: false}]
  - id: email
    kind: input
    ask: "Where should we send it?"
    validate: email
    save_as: email
  - id: checklist
    kind: resource
    ask: "Here it is."
    url: "https://example.com/checklist.pdf"
    button: "Open the checklist"
  - id: trial
    kind: trial
    ask: "Start your trial here."
    url: "https://app.example.com/signup?ref={conversation_ref}"
    button: "Start the trial"
    wait_for: {event: trial_started, timeout: 2d, then: later}
  - id: feedback
    ask: "How is it going?"
    choices: [Great, Stuck]
    save_as: feedback
  - id: later
    kind: end
    outcome: declined
"""


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    (tmp_path / "everything.yaml").write_text(FLOW)
    return tmp_path


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


async def product_event(web: WebProcess, ref: str) -> int:
    raw = json.dumps({"id": "evt_1", "event": "trial_started", "ref": ref}).encode()
    stamp = str(int(time.time()))
    headers = {SOURCE_HEADER: "billing", TIMESTAMP_HEADER: stamp,
               SIGNATURE_HEADER: signature(SOURCE_SECRET, stamp, raw),
               "Content-Type": "application/json"}  # fmt: skip
    response = await web.http.post(f"{web.url}/api/events", content=raw, headers=headers)
    return response.status_code


async def press_in_slack(web: WebProcess, body: bytes) -> int:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    response = await web.http.post(f"{web.url}/slack/events", content=body, headers=headers)
    return response.status_code


async def deliver(web: WebProcess, policy: OutboxPolicy) -> int:
    """One outbox pass, as the worker's (prospect messages and Slack items)."""
    services = web.services
    return await Outbox(services.redis, "test", policy).deliver_once(services.deliveries())


async def mentions(redis: Redis, needle: str) -> list[str]:
    """Every key whose name or content names `needle`."""
    found = []
    async for key in redis.scan_iter(count=1000):
        kind = await redis.type(key)
        if kind == "string":
            content = [await redis.get(key)]
        elif kind == "hash":
            content = [*(await redis.hgetall(key)).items()]
        elif kind == "list":
            content = await redis.lrange(key, 0, -1)
        elif kind == "set":
            content = [*(await redis.smembers(key))]
        elif kind == "zset":
            content = await redis.zrange(key, 0, -1)
        else:
            content = await redis.xrange(key)
        if needle in key or needle in json.dumps(content):
            found.append(key)
    return found


def documented(key: str) -> bool:
    """A key bot.privacy.KEPT names (`<...>` parts are any text)."""
    return CONV in key and any(
        fnmatch.fnmatchcase(key, re.sub(r"<[^>]*>", "*", pattern)) for pattern, _ in privacy.KEPT
    )


async def test_export_lists_every_record_kind_and_forget_erases_each(
    telegram_api: FakeTelegram,
    fake_slack: FakeSlack,
    flows_dir: Path,
    redis_url: str,
    redis: Redis,
) -> None:
    sock, url = listening_socket()
    settings = telegram_settings(
        telegram_api, flows_dir, redis_url, public_url=url,
        product_event_secrets={"billing": SOURCE_SECRET}, slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.url,
    )  # fmt: skip
    ada, bob = telegram_api.prospect(42), telegram_api.prospect(7, "Bob")
    async with web_process(settings, sock) as web:
        await web.post(bob.text("/start"))
        await web.post(ada.text("/start"))
        await web.post(ada.press("Yes please"))
        await web.post(ada.text("ada@example.com"))  # the email_given alert waits in the outbox
        await deliver(web, OutboxPolicy())
        [alert] = fake_slack.messages("#sales-leads")
        link = ada.last.button("Open the checklist")["url"].removeprefix(url)
        assert (await web.get(link)).status_code == 302  # the tracked link: on to the trial
        await deliver(web, OutboxPolicy())
        trial = ada.last.button("Start the trial")["url"].removeprefix(url)
        signup = (await web.get(trial)).headers["location"]
        ref = parse_qs(urlsplit(signup).query)["ref"][0]
        assert await product_event(web, ref) == 200  # trial_started: on to feedback
        assert await press_in_slack(web, button_press(alert, slack.CLAIM, SALES)) == 200
        assert await press_in_slack(web, button_press(alert, slack.TAKE_OVER, SALES)) == 200
        await web.post(ada.text("hello?"))  # relayed to the alert's thread...
        fake_slack.fail_next("chat.postMessage")
        await deliver(web, OutboxPolicy(max_attempts=1))  # ...given up on: a dead letter
        await web.post(ada.text("anyone there?"))  # relayed, not delivered yet
        assert await press_in_slack(web, button_press(alert, slack.HAND_BACK, SALES)) == 200
        conv = await stored(redis)
        assert conv is not None and (conv.step, conv.status) == ("feedback", Status.ACTIVE)

        exported = json.loads((await privacy.export(redis, CONV)).to_json())
        assert list(exported) == [kind.name for kind in privacy.RECORDS]
        assert set(exported) == {"conversation", "timers", "events", "outbox", "dead_letters",
                                 "links", "telegram_keyboard", "slack_lead"}  # fmt: skip
        assert [name for name, data in exported.items() if not data] == []
        assert exported["conversation"]["answers"]["email"] == "ada@example.com"
        names = [e["name"] for e in exported["events"]]
        assert {"started", "claimed", "paused", "reported", "resumed"} <= set(names)
        assert [t["kind"] for t in exported["timers"]] == ["nudge"]
        assert [i["body"]["text"] for i in exported["outbox"] if i["kind"] == "relay"] == [
            "anyone there?"
        ]
        assert [d["body"]["text"] for d in exported["dead_letters"]] == ["hello?"]
        assert sorted(link["step"] for link in exported["links"]) == ["checklist", "trial"]
        assert exported["slack_lead"]["ts"] == alert.ts
        assert exported["slack_lead"]["thread_ts"] == alert.ts
        assert isinstance(exported["telegram_keyboard"], int)

        await web.post(ada.text("/forget"))
        await web.post(ada.press(FORGET_YES))
        assert ada.last.text == FORGOTTEN

        with pytest.raises(privacy.UnknownProspect):
            await privacy.export(redis, CONV)
        left = [key for key in await mentions(redis, CONV) if not documented(key)]
        assert left == []
        assert [key for key in await mentions(redis, "chat:42") if "flood" not in key] == []
        assert (await web.get(link)).status_code == 404
        assert await stored(redis, "telegram:7") is not None  # others are untouched
        assert (await privacy.export(redis, "telegram:7")).records["events"]
        await deliver(web, OutboxPolicy())  # nothing more reaches Slack about them
        relayed = [c.args.get("text", "") for c in fake_slack.calls("chat.postMessage")]
        assert not [text for text in relayed if "anyone there?" in text]


async def test_events_export_archives_the_log_written_in_a_period_as_json_lines(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    written = {"2026-09-01": "a", "2026-09-20": "b", "2026-10-02": "c"}
    for day, conversation in written.items():
        ms = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
        event = DomainEvent("started", f"telegram:{conversation}", "f", 1, "s", f"{day}T00:00Z")
        await redis.xadd(
            keys.events(keys.shard_of(event.conversation)), event.fields(), id=f"{ms}-0"
        )  # type: ignore[arg-type]
    out = tmp_path / "events.jsonl"
    argv = ["events", "export", "--since", "2026-09-15", "--until", "2026-10-02", "-o", str(out)]
    assert await ladder_cli(monkeypatch, redis_url, *argv) == 0
    assert "1 event(s) exported" in capsys.readouterr().err
    [line] = out.read_text().splitlines()
    assert json.loads(line) | {"id": ""} == {
        "id": "", "name": "started", "conversation": "telegram:b", "flow": "f", "version": 1,
        "step": "s", "at": "2026-09-20T00:00Z", "data": {},
    }  # fmt: skip
    assert (
        await ladder_cli(monkeypatch, redis_url, "events", "export", "--since", "2026-08-31") == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["conversation"] for line in lines] == ["telegram:a", "telegram:b",
                                                                    "telegram:c"]  # fmt: skip
    with pytest.raises(SystemExit):
        await ladder_cli(monkeypatch, redis_url, "events", "export", "--since", "soon")


async def test_events_logged_before_the_upgrade_are_indexed_once_and_then_erased(
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = RedisConversationStore(redis)
    conv = Conversation(id=CONV, flow="f", version=1, step="s")

    def logged(name: str, conversation: str = CONV) -> DomainEvent:
        return DomainEvent(name, conversation, "f", 1, "s", "2026-12-01T09:00:00+00:00")

    async def unindexed(event: DomainEvent) -> None:  # as versions without indexes wrote them
        await redis.xadd(keys.events(keys.shard_of(event.conversation)), event.fields())  # type: ignore[arg-type]

    await unindexed(logged("started"))
    await unindexed(logged("started", "telegram:gone"))  # a conversation that expired
    conv = (await store.commit(StepWrite(conv, events=(logged("step_reached"),)))).conversation
    await unindexed(logged("answered"))  # an old process, during a rolling upgrade
    await store.commit(StepWrite(conv, events=(logged("committed"),)))
    records = ProspectRecords(redis)
    assert [e.name for e in await records.events(CONV)] == ["step_reached", "committed"]

    assert await ladder_cli(monkeypatch, redis_url, "events", "index") == 0
    assert capsys.readouterr().out == "3 event(s) indexed\n"
    assert [e.name for e in await records.events(CONV)] == [
        "started", "step_reached", "answered", "committed"
    ]  # fmt: skip
    assert 0 < await redis.ttl(keys.conversation_events("telegram:gone")) <= keys.EVENTS_RETENTION
    assert await ladder_cli(monkeypatch, redis_url, "events", "index") == 0
    assert capsys.readouterr().out == "0 event(s) indexed\n"

    await privacy.forget(redis, CONV)
    assert {f["conversation"] for _, f in await sharded.entries(redis, keys.events)} == {
        "telegram:gone"
    }
