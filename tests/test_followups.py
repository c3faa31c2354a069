"""Follow-ups and reminders over days of a ManualClock, in seconds: the real engine,
the real `Conversations` on a real redis-server, and the worker moving the clock from one due
timer to the next."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.app import Services, build
from bot.config import Settings
from bot.delivery import Deliveries
from bot.worker import Worker
from domain.clock import ManualClock
from domain.model import (
    Action,
    Conversation,
    DomainEvent,
    Due,
    Press,
    Profile,
    Say,
    Start,
    Status,
    Stop,
    Timer,
    iso,
)
from storage import keys
from storage.scheduler import Ack
from tests import sharded

FLOW = """\
flow: followups
title: Demo day
timezone: Europe/Berlin
follow_up:
  after: 24h
  max: 2
  say: ["Still keen, {first_name}?", "Last call, {first_name}!"]
  quiet_hours: "21:00-08:00"
  drop_after: 48h
  stale_after: 12h
steps:
  - id: welcome
    ask: "Want the checklist?"
    choices:
      - {label: "Yes please", id: "yes", go: webinar}
      - {label: "Not now", id: "no", go: later, commit: false}
  - id: webinar
    kind: webinar
    ask: "Join the demo?"
    slots: ["2026-12-10T16:00:00+01:00"]
    reminders: [24h, 1h]
  - id: trial
    kind: trial
    ask: "Start a trial?"
    url: "https://example.com/signup"
    follow_up:
      nudges: [{after: 2h, say: "Questions about the trial, {first_name}?"}]
      drop_after: 6h
  - id: done
    kind: end
    outcome: won
    say: "Thanks!"
  - id: later
    kind: end
    outcome: declined
    say: "OK, bye"
"""

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
ALEX = Profile(first_name="Alex")
H = timedelta(hours=1)


@dataclass
class Recorder:
    """A Sender that keeps each action it was asked to deliver, with the clock's time."""

    clock: ManualClock
    sent: list[tuple[str, datetime, Action]] = field(default_factory=list)

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        self.sent.extend((conversation.id, self.clock.now(), a) for a in actions)

    def said(self, conversation: str, since: datetime = T0) -> list[tuple[datetime, str]]:
        """(time, first line) of each message to `conversation` sent at or after `since`."""
        return [
            (at, a.text.splitlines()[0])
            for conv, at, a in self.sent
            if conv == conversation and isinstance(a, Say) and at >= since
        ]


@dataclass
class Harness:
    services: Services
    clock: ManualClock
    recorder: Recorder
    worker: Worker

    async def send(self, conversation: str, event: Start | Press | Stop, **kw: Profile) -> None:
        """What the Telegram adapter does for an inbound update: handle, then deliver."""
        outcome = await self.services.conversations.handle(
            conversation, event, deliver_now=True, **kw
        )
        await Deliveries(self.services.conversations, {"telegram": self.recorder}).now(outcome)

    async def until(self, moment: datetime) -> None:
        await self.worker.fast_forward(self.clock, moment)

    async def events(self, conversation: str) -> list[DomainEvent]:
        entries = await sharded.entries(self.services.redis, keys.events)
        found = [DomainEvent.from_fields(fields) for _, fields in entries]
        return [e for e in found if e.conversation == conversation]

    async def names(self, conversation: str) -> list[str]:
        return [e.name for e in await self.events(conversation)]

    async def conversation(self, conversation: str) -> Conversation:
        found = await self.services.conversations.store.load(conversation)
        assert found is not None
        return found


@pytest.fixture
async def ladder(redis: Redis, tmp_path: Path) -> AsyncIterator[Harness]:
    flow = tmp_path / "followups.yaml"
    flow.write_text(FLOW)
    clock = ManualClock(T0)
    services = await build(Settings.from_env(), clock=clock, redis=redis, paths=[flow])
    recorder = Recorder(clock)
    services.senders["telegram"] = recorder
    yield Harness(
        services, clock, recorder, Worker(services.conversations, services.senders, clock)
    )


async def book_the_webinar(ladder: Harness) -> None:
    """telegram:1 says yes and books the slot (then waits at the trial step)."""
    await ladder.send("telegram:1", Start(), profile=ALEX)
    await ladder.send("telegram:1", Press("welcome", "yes"))
    await ladder.send("telegram:1", Press("webinar", "slot0"))


async def test_a_quiet_prospect_gets_each_nudge_then_is_dropped(ladder: Harness) -> None:
    await ladder.send("telegram:1", Start(), profile=ALEX)

    await ladder.until(T0 + timedelta(days=10))

    assert ladder.recorder.said("telegram:1", since=T0 + H) == [
        (T0 + 24 * H, "Still keen, Alex?"),
        (T0 + 48 * H, "Last call, Alex!"),
    ]
    names = await ladder.names("telegram:1")
    assert names[-3:] == ["nudged", "nudged", "dropped"]
    dropped = (await ladder.events("telegram:1"))[-1]
    assert dropped.at == (T0 + 96 * H).isoformat()  # 48h after the last nudge
    assert (await ladder.conversation("telegram:1")).status == Status.DROPPED
    assert await sharded.total(ladder.services.redis.zcard, keys.timers_due) == 0
    assert await sharded.total(ladder.services.redis.hlen, keys.timers_body) == 0


async def test_quiet_hours_hold_nudges_in_the_flow_zone_or_the_prospects(
    ladder: Harness,
) -> None:
    evening = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)  # 21:30 in Berlin, 15:30 in New York
    ladder.clock.set(evening)
    await ladder.send("telegram:berlin", Start(), profile=ALEX)
    new_york = Profile(first_name="Sam", timezone="America/New_York")
    await ladder.send("telegram:ny", Start(), profile=new_york)

    await ladder.until(evening + timedelta(days=3))

    assert ladder.recorder.said("telegram:berlin", since=evening + H) == [
        (datetime(2026, 12, 3, 7, 0, tzinfo=UTC), "Still keen, Alex?"),  # 08:00 in Berlin
        (datetime(2026, 12, 4, 7, 0, tzinfo=UTC), "Last call, Alex!"),
    ]
    assert ladder.recorder.said("telegram:ny", since=evening + H) == [
        (evening + 24 * H, "Still keen, Sam?"),
        (evening + 48 * H, "Last call, Sam!"),
    ]


async def test_webinar_reminders_come_a_day_and_an_hour_before_the_slot(
    ladder: Harness,
) -> None:
    await book_the_webinar(ladder)
    slot = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)  # 16:00 in Berlin

    await ladder.until(slot + timedelta(days=1))

    said = ladder.recorder.said("telegram:1")
    reminders = [(at, text) for at, text in said if text.startswith("Reminder")]
    assert reminders == [
        (slot - 24 * H, "Reminder: Demo day starts in 24 hours, Thu 10 Dec, 16:00 (CET)."),
        (slot - H, "Reminder: Demo day starts in 60 minutes, Thu 10 Dec, 16:00 (CET)."),
    ]
    names = await ladder.names("telegram:1")
    assert names.count("reminded") == 2
    assert names.count("nudged") == 1  # the trial step's own nudge, then the drop
    assert "dropped" in names


async def test_reminders_due_while_no_worker_ran_are_skipped_once_the_slot_has_passed(
    ladder: Harness,
) -> None:
    await book_the_webinar(ladder)
    ladder.clock.set(datetime(2026, 12, 10, 15, 30, tzinfo=UTC))  # the webinar is under way

    while await ladder.worker.tick():
        pass

    said = ladder.recorder.said("telegram:1", since=T0 + timedelta(seconds=1))
    assert [text for _, text in said if text.startswith("Reminder")] == []
    skipped = [e for e in await ladder.events("telegram:1") if e.name == "follow_up_skipped"]
    reminders = sorted(e.data["seq"] for e in skipped if e.data["kind"] == "reminder")
    assert reminders == ["0", "1"]


async def test_a_booking_keeps_its_reminders_and_score_when_the_prospect_starts_again(
    ladder: Harness,
) -> None:
    await book_the_webinar(ladder)
    await ladder.until(T0 + timedelta(days=1))  # quiet at the trial step: dropped
    booked = await ladder.conversation("telegram:1")
    assert booked.status == Status.DROPPED and booked.score > 0
    await ladder.send("telegram:1", Start())  # a new walk of the ladder
    again = await ladder.conversation("telegram:1")
    assert (again.step, again.commitments) == ("welcome", ())
    assert (again.score, again.bookings) == (booked.score, booked.bookings)
    slot = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)

    await ladder.until(slot + timedelta(days=1))

    said = ladder.recorder.said("telegram:1")
    assert [(at, text) for at, text in said if text.startswith("Reminder")] == [
        (slot - 24 * H, "Reminder: Demo day starts in 24 hours, Thu 10 Dec, 16:00 (CET)."),
        (slot - H, "Reminder: Demo day starts in 60 minutes, Thu 10 Dec, 16:00 (CET)."),
    ]
    assert (await ladder.conversation("telegram:1")).bookings[0].reminders == ()  # all sent


async def test_a_conversation_stored_before_bookings_were_kept_loads_and_is_reminded(
    ladder: Harness,
) -> None:
    slot = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    old = {
        "id": "telegram:1", "flow": "followups", "version": 1, "step": "trial",
        "status": "active", "answers": {"webinar_slot": iso(slot), "_score": "35",
        "_reminder:webinar:0": iso(slot - 24 * H)}, "commitments": [], "profile": {
        "first_name": "Alex", "last_name": "", "username": "", "language": "",
        "timezone": ""}, "source": "", "variants": {}, "invalid": 0, "nudges": 0,
        "started_at": iso(T0), "updated_at": iso(T0), "step_at": iso(T0),
    }  # fmt: skip
    await ladder.services.redis.hset(
        keys.conversation("telegram:1"), mapping={"v": 1, "doc": json.dumps(old)}
    )
    await ladder.services.conversations.handle(
        "telegram:1",
        Due(Timer("telegram:1:reminder:1", "telegram:1", "reminder", iso(slot - H), "webinar", 1)),
    )
    loaded = await ladder.conversation("telegram:1")
    assert loaded.score == 35 and loaded.answers == {"webinar_slot": iso(slot)}
    assert loaded.bookings[0].slot == iso(slot) and loaded.bookings[0].reminders == ()
    assert "reminded" in await ladder.names("telegram:1")


async def test_a_step_with_its_own_follow_up_overrides_the_flows(ladder: Harness) -> None:
    await ladder.send("telegram:1", Start(), profile=ALEX)
    await ladder.send("telegram:1", Press("welcome", "yes"))
    await ladder.send("telegram:1", Press("webinar", "slot0"))  # now at the trial step

    await ladder.until(T0 + timedelta(days=2))

    assert ladder.recorder.said("telegram:1", since=T0 + timedelta(seconds=1)) == [
        (T0 + 2 * H, "Questions about the trial, Alex?")
    ]
    dropped = (await ladder.events("telegram:1"))[-1]
    assert (dropped.name, dropped.step, dropped.at) == ("dropped", "trial", iso(T0 + 8 * H))


async def test_after_stop_no_nudge_or_reminder_is_ever_sent(ladder: Harness) -> None:
    await book_the_webinar(ladder)
    ladder.clock.advance(H)
    await ladder.send("telegram:1", Stop())
    stopped_at = ladder.clock.now()

    await ladder.until(T0 + timedelta(days=30))

    assert ladder.recorder.said("telegram:1", since=stopped_at + timedelta(seconds=1)) == []
    names = await ladder.names("telegram:1")
    assert names[-1] == "opted_out"
    assert not {"nudged", "reminded", "follow_up_skipped"} & set(names)
    assert await sharded.total(ladder.services.redis.zcard, keys.timers_due) == 0


async def test_a_reply_cancels_the_pending_nudge_of_that_step(ladder: Harness) -> None:
    await ladder.send("telegram:1", Start(), profile=ALEX)
    ladder.clock.advance(23 * H)
    await ladder.send("telegram:1", Press("welcome", "yes"))  # now at the webinar step

    await ladder.until(T0 + 47 * H - timedelta(seconds=1))
    assert ladder.recorder.said("telegram:1", since=T0 + 23 * H + timedelta(seconds=1)) == []
    await ladder.until(T0 + 47 * H)

    assert ladder.recorder.said("telegram:1", since=T0 + 24 * H) == [
        (T0 + 47 * H, "Still keen, Alex?")  # the webinar step's nudge, 24h after the reply
    ]
    [nudged] = [e for e in await ladder.events("telegram:1") if e.name == "nudged"]
    assert nudged.step == "webinar"


async def test_a_timer_claimed_just_before_the_reply_sends_nothing(ladder: Harness) -> None:
    await ladder.send("telegram:1", Start(), profile=ALEX)
    ladder.clock.advance(24 * H)
    [claim] = await ladder.worker.scheduler.claim(ladder.clock.now(), 10, timedelta(minutes=1))
    await ladder.send("telegram:1", Press("welcome", "yes"))
    sent = len(ladder.recorder.sent)

    await ladder.worker.fire(claim)

    assert len(ladder.recorder.sent) == sent
    assert "nudged" not in await ladder.names("telegram:1")
    body = await ladder.services.redis.hget(
        keys.timers_body(keys.shard_of(claim.timer.conversation)), claim.timer.id
    )
    assert Timer.from_json(body).step == "webinar"  # the new step's nudge survived the ack
    assert await ladder.worker.scheduler.ack(claim) is Ack.LOST  # fire acked it already


async def test_a_nudge_due_while_no_worker_ran_is_skipped_when_stale(ladder: Harness) -> None:
    await ladder.send("telegram:1", Start(), profile=ALEX)
    ladder.clock.advance(24 * H + 13 * H)  # 13h past due, stale_after is 12h

    assert await ladder.worker.tick() == 1

    assert ladder.recorder.said("telegram:1", since=T0 + H) == []
    skipped = (await ladder.events("telegram:1"))[-1]
    assert (skipped.name, skipped.data["seq"], skipped.data["late"]) == (
        "follow_up_skipped",
        "1",
        str(13 * 3600),
    )
    await ladder.until(T0 + timedelta(days=3))
    # the next nudge, 24h after the skipped one (T0 + 61h, 23:00 in Berlin), after quiet hours
    assert ladder.recorder.said("telegram:1", since=T0 + H) == [
        (datetime(2026, 12, 4, 7, 0, tzinfo=UTC), "Last call, Alex!")
    ]


async def test_a_nudge_due_while_no_worker_ran_is_sent_late_within_the_limit(
    ladder: Harness,
) -> None:
    await ladder.send("telegram:1", Start(), profile=ALEX)
    ladder.clock.advance(24 * H + 11 * H)

    assert await ladder.worker.tick() == 1

    assert ladder.recorder.said("telegram:1", since=T0 + H) == [(T0 + 35 * H, "Still keen, Alex?")]
