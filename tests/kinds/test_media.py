"""A step's `media`: sent before the step's text with its caption filled in; `ladder validate`
names a missing file, a path out of the flows folder, or a media block that is not one thing,
with file:line:col."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import engine
from bot.channels.slack.blocks import alert_blocks
from bot.flow.compile import compile_flow
from bot.flow.loader import parse_flow
from domain.errors import FlowErrors
from domain.model import (
    Conversation,
    Press,
    Profile,
    Restart,
    Say,
    SendMedia,
    Start,
    messages_from_json,
    messages_to_json,
)

FLOW = """\
flow: tour
steps:
  - id: intro
    media: {MEDIA}
    ask: Want the full tour?
    choices: [Yes, No]
  - id: done
    kind: end
"""
IMAGE = "{image: media/intro.png, caption: 'Hi {first_name}, this is the dashboard'}"


def test_media_goes_before_the_text_with_its_caption_filled_in() -> None:
    flow = compile_flow(replace(parse_flow(FLOW.replace("{MEDIA}", IMAGE)), version=1))
    conv = Conversation(id="telegram:1", flow="tour", version=1, profile=Profile("Ada"))
    result = engine.step(flow, conv, Start(), datetime(2026, 12, 2, tzinfo=UTC))
    media, ask = result.actions
    assert media == SendMedia("image", "media/intro.png", "Hi Ada, this is the dashboard")
    assert isinstance(ask, Say) and ask.text == "Want the full tour?"


def test_what_was_sent_is_kept_once_and_the_slack_card_mentions_it() -> None:
    flow = compile_flow(replace(parse_flow(FLOW.replace("{MEDIA}", IMAGE)), version=1))
    conv = Conversation(id="telegram:1", flow="tour", version=1, profile=Profile("Ada"))
    now = datetime(2026, 12, 2, tzinfo=UTC)
    for event in (Start(), Press("intro", "nope"), Start()):  # asked again: sent again
        conv = engine.step(flow, conv, event, now).conversation
    assert conv.media_sent == ("image media/intro.png",)
    assert Conversation.from_json(conv.to_json()).media_sent == conv.media_sent
    card = alert_blocks(conv, ["completed"], "Tour", buttons=False)
    fields = [f["text"] for b in card for f in b.get("fields", [])]
    assert "*Sent*\nimage media/intro.png" in fields
    restarted = engine.step(flow, conv, Restart(), now).conversation
    assert restarted.media_sent == ("image media/intro.png",)  # the restart asks it again
    without = alert_blocks(replace(conv, media_sent=()), ["completed"], "Tour", buttons=False)
    assert not any(f["text"].startswith("*Sent*") for b in without for f in b.get("fields", []))


@pytest.mark.parametrize(
    ("media", "problem"),
    [
        ("{image: ../secrets.png}", "x.yaml:4:20: step 'intro': media '../secrets.png' should be"),
        ("{image: /etc/passwd}", "x.yaml:4:20: step 'intro': media '/etc/passwd' should be"),
        ("{image: a.png, video: b.mp4}", "x.yaml:4:12: step 'intro': `media` needs exactly one"),
        ("{caption: hi}", "x.yaml:4:12: step 'intro': `media` needs exactly one"),
        ("{image: http://plain.example.com/a.png}", "x.yaml:4:20: step 'intro': media 'http:"),
    ],
)
def test_bad_media_is_named_with_its_place(media: str, problem: str) -> None:
    with pytest.raises(FlowErrors) as caught:
        parse_flow(FLOW.replace("{MEDIA}", media), "x.yaml")
    found = [str(e) for e in caught.value.errors]
    assert any(f.startswith(problem) for f in found), found


def test_a_missing_media_file_fails_ladder_validate_with_its_place(tmp_path: Path) -> None:
    flow = tmp_path / "tour.yaml"
    flow.write_text(FLOW.replace("{MEDIA}", IMAGE))
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "validate", str(flow)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,  # only bounds a hang
    )
    assert run.returncode != 0
    assert f"{flow}:4:20: step 'intro': media 'media/intro.png' does not exist" in run.stdout + (
        run.stderr
    )
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "intro.png").write_bytes(b"\x89PNG")
    ok = subprocess.run(
        [sys.executable, "-m", "bot.cli", "validate", str(flow)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_media_waits_in_the_outbox_as_it_was_said() -> None:
    said = (SendMedia("video", "https://cdn.example.com/tour.mp4", "Tour"), Say("Next?"))
    assert messages_from_json(messages_to_json(said)) == said
