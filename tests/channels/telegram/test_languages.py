"""A German prospect walks the translated webinar-ladder flow through the fake Bot API: the
flow's texts and the built-in ones come in German, and the events record the language."""

from __future__ import annotations

import shutil
from pathlib import Path

from redis.asyncio import Redis

from bot.texts import Builtin, text
from domain.model import DomainEvent
from storage import keys
from tests import sharded
from tests.channels.conftest import stored, telegram_settings, web_process
from tests.fakes.telegram_api import FakeTelegram

FLOWS = Path(__file__).parents[3] / "flows"


async def test_a_german_prospect_gets_german_texts(
    telegram_api: FakeTelegram, tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    shutil.copy(FLOWS / "webinar-ladder.yaml", tmp_path)
    settings = telegram_settings(telegram_api, tmp_path, redis_url)
    greta = telegram_api.prospect(7, "Greta", language_code="de")
    async with web_process(settings) as web:
        assert await web.post(greta.text("/start")) == 200
        welcome = greta.last
        assert welcome.text == (
            "Hallo Greta! Ich helfe Vertriebsteams, mit KI schneller abzuschließen.\n\n"
            "Möchtest du unsere 2-Minuten-ROI-Checkliste?"
        )
        assert [b["text"] for b in welcome.buttons] == ["Ja, gern", "Jetzt nicht"]

        assert await web.post(greta.press("Ja, gern")) == 200
        assert greta.last.text == "Gern. Was ist deine Rolle?"
        assert [b["text"] for b in greta.last.buttons] == [
            "Gründer",
            "Vertriebsleitung",
            "Marketing",
            "Anderes",
        ]
        assert await web.post(greta.text("vielleicht")) == 200  # none of the choices
        labels = "Gründer, Vertriebsleitung, Marketing, Anderes"
        assert greta.last.text.startswith(text(Builtin.NOT_UNDERSTOOD, "de").format(labels=labels))
        assert await web.post(greta.text("gründer")) == 200  # a German label, typed
        assert greta.last.text == "Wie viele Leute verkaufen in deinem Team?"
        assert await web.post(greta.text("viele")) == 200
        assert greta.last.text.startswith("Nur die Zahl, z. B. 12.")  # the translated hint

        assert await web.post(greta.text("/help")) == 200
        assert greta.last.text.startswith(text(Builtin.HELP, "de"))
        assert await web.post(greta.text("/stop")) == 200
        assert greta.last.text == text(Builtin.STOPPED, "de")
        assert await web.post(greta.text("/forget")) == 200  # asked, answered in German too
        assert greta.last.text == text(Builtin.FORGET_ASK, "de")
        assert [b["text"] for b in greta.last.buttons] == ["Ja, alles löschen", "Nein, behalten"]
        assert await web.post(greta.press("Nein, behalten")) == 200
        assert greta.last.text == "Es wurde nichts gelöscht."

    events = [DomainEvent.from_fields(f) for _, f in await sharded.entries(redis, keys.events)]
    mine = [e for e in events if e.conversation == "telegram:7"]
    assert mine and {e.data.get("language") for e in mine} == {"de"}
    conv = await stored(redis, "telegram:7")
    assert conv is not None and conv.answers["role"] == "Founder"  # the value: same in any language
