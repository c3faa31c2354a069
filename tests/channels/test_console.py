"""`ladder chat`: the prospect's conversation in the terminal, driven from stdin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from storage import keys

ROOT = Path(__file__).parent.parent.parent


def chat(lines: list[str], *args: str, redis_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", *args],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,  # only bounds a hang
        check=True,
    )


async def test_a_whole_ladder_in_the_terminal(redis: Redis, redis_url: str) -> None:
    script = ["1", "2", "12", "pat@example.com", "1", "1"]
    run = chat(script, "flows/webinar-ladder.yaml", "--source", "linkedin", redis_url=redis_url)
    out = run.stdout
    assert "bot › Hi Alex! I help sales teams close faster with AI." in out
    assert "you › pat@example.com" in out
    assert "(you open https://example.com/ai-sales-roi-checklist.pdf?utm_source=linkedin)" in out
    assert "bot › [calendar invite] AI for Sales — live demo" in out
    assert "· committed [webinar] source=linkedin commitment=webinar_booked score=30" in out
    assert "· completed [done]" in out
    assert "🔔 Slack alert to #sales-leads: webinar_booked, score, completed" in out
    assert "Alex (@you) · source: linkedin · score 70" in out
    assert "REDIS_URL is not set" not in run.stderr
    stored = await redis.hget(keys.conversation("console:you"), "doc")
    assert stored is not None and '"status":"completed"' in stored


def test_unexpected_answers_are_reasked_and_time_moves_on(redis_url: str) -> None:
    script = ["1", "I have no idea", "/wait 3d", "/stop", "hello?"]
    out = chat(script, "flows/webinar-ladder.yaml", "--id", "p2", redis_url=redis_url).stdout
    assert "Sorry, I didn't catch that. Tap a button or type one of: Founder" in out
    assert "· invalid_input [role] count=1" in out
    assert "bot › Still there, Alex? Tap a button whenever you're ready." in out
    assert "bot › Last nudge from me" in out
    assert "· opted_out [role]" in out
    assert out.rstrip().endswith("You're unsubscribed. Send /start if you'd like to pick up again.")


def test_a_dropped_prospect_who_opens_the_link_is_asked_the_next_step(redis_url: str) -> None:
    script = ["1", "1", "12", "alex@example.com", "/wait 24h", "1"]
    out = chat(script, "flows/webinar-ladder.yaml", "--id", "p4", redis_url=redis_url).stdout
    opened = out.split("(you open https://example.com/ai-sales-roi-checklist.pdf", 1)[1]
    assert "· link_opened [checklist]\n      · returned [checklist]" in opened
    assert "· committed [checklist] commitment=resource_opened" in opened
    assert "· step_reached [webinar] kind=webinar" in opened
    assert "Join our 30-minute live demo? Pick a time:" in opened


async def test_a_booking_keeps_its_reminders_and_score_after_start(
    redis: Redis, redis_url: str
) -> None:
    script = ["1", "1", "12", "pat@example.com", "1", "1", "/start", "/wait 2300h"]
    out = chat(script, "flows/webinar-ladder.yaml", "--id", "p5", redis_url=redis_url).stdout
    after_start = out.split("you › /start", 1)[1]
    assert "bot › Reminder: AI for Sales — live demo starts in 24 hours" in after_start
    assert "bot › Reminder: AI for Sales — live demo starts in 60 minutes" in after_start
    stored = await redis.hget(keys.conversation("console:p5"), "doc")
    assert stored is not None and '"score":70' in stored


def test_without_redis_url_it_runs_embedded_and_says_so() -> None:
    run = chat(["2"], "flows/free-trial.yaml", redis_url=None)
    assert "REDIS_URL is not set: using the embedded in-process Redis" in run.stderr
    assert "bot › " in run.stdout


def test_speed_lets_follow_ups_fire_on_their_own(redis_url: str, tmp_path: Path) -> None:
    # At a day a second, stale_after (12h) would be half a second of real time: a busy machine
    # may tick later than that, and a late follow-up is skipped. This test is about firing.
    flow = tmp_path / "webinar-ladder.yaml"
    flow.write_text(
        (ROOT / "flows/webinar-ladder.yaml").read_text().replace("  stale_after: 12h\n", "")
    )
    assert "stale_after" not in flow.read_text()
    env = {**os.environ, "REDIS_URL": redis_url}
    command = [sys.executable, "-m", "bot.cli", "chat", str(flow)]
    with subprocess.Popen(
        [*command, "--id", "p3", "--speed", "86400"],  # a day a second
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    ) as chat_process:
        assert chat_process.stdin is not None and chat_process.stdout is not None
        chat_process.stdin.write("1\n")  # then the prospect says nothing for days
        chat_process.stdin.flush()
        seen: list[str] = []
        deadline = time.monotonic() + 120  # only bounds a hang
        while time.monotonic() < deadline and not any("Last nudge" in s for s in seen):
            seen.append(chat_process.stdout.readline())
        chat_process.stdin.close()
        chat_process.wait(timeout=10)
    said = "".join(seen)
    assert "bot › Still there, Alex? Tap a button whenever you're ready." in said
    assert "bot › Last nudge from me" in said


async def test_forget_in_the_terminal_asks_then_erases(redis: Redis, redis_url: str) -> None:
    script = ["1", "/forget", "2", "/forget", "1"]
    out = chat(script, "flows/webinar-ladder.yaml", "--id", "p6", redis_url=redis_url).stdout
    kept, erased = out.split("you › /forget")[1:]
    assert "bot › This erases everything I know about you" in kept
    assert "1) Yes, erase everything" in kept and "2) No, keep it" in kept
    assert "bot › Nothing was erased." in kept
    assert out.rstrip().endswith(
        "bot › Done: everything about you is erased. Send /start if you ever want to begin again."
    )
    assert erased.count("Done: everything about you is erased") == 1
    assert await redis.exists(keys.conversation("console:p6")) == 0


def test_lang_previews_one_language(redis_url: str) -> None:
    german = chat(["1", "/stop"], "flows/webinar-ladder.yaml", "--lang", "de", redis_url=redis_url)
    assert "bot › Hallo Alex! Ich helfe Vertriebsteams" in german.stdout
    assert "bot › Gern. Was ist deine Rolle?" in german.stdout
    assert "Du hörst nichts mehr von mir." in german.stdout
    args = ("flows/webinar-ladder.yaml", "--lang", "fr", "--id", "p3")
    french = chat([], *args, redis_url=redis_url).stdout
    assert "(the flow speaks en, de: showing en)" in french
    assert "bot › Hi Alex! I help sales teams close faster with AI." in french


def test_media_and_the_contact_button_are_named_and_a_typed_number_and_date_taken(
    redis_url: str,
) -> None:
    """The terminal shows no picture and has no one-tap button: the preview names them, the
    number is typed."""
    zone = ZoneInfo("America/New_York")  # the free-trial flow's
    before = datetime.now(zone).date() + timedelta(days=1)
    script = ["1", "Acme", "1", "2", "+49 30 1234567", "tomorrow"]
    out = chat(script, "flows/free-trial.yaml", "--id", "media", redis_url=redis_url).stdout
    after = datetime.now(zone).date() + timedelta(days=1)
    assert "[Send my number: type the number]" in out
    assert "bot › [image] media/dashboard.png Acme's pipeline, at a glance" in out
    said = {f"on {day.isoformat()}." for day in (before, after)}
    assert any(f"will call +49301234567 {s}" in out for s in said), out
