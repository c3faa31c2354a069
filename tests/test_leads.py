"""The lead list: `ladder leads FLOW --csv` and the dashboard's leads view show the same rows,
read over HTTP and in headless Chromium, with the flow, outcome and claimed filters."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.app import Services
from bot.leads import COLUMNS
from bot.sales import Action, Sales
from bot.web import create_app
from domain.clock import ManualClock
from domain.model import Profile, Start
from tests.test_analytics import Prospect, ladder_cli, populate
from tests.test_dashboard import TOKEN, services_with, serving

ROW = re.compile(r'<tr class="lead">(.*?)</tr>', re.S)


def page_rows(page: str) -> list[list[str]]:
    return [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", r)] for r in ROW.findall(page)]


def csv_rows(text: str) -> list[list[str]]:
    header, *rows = csv.reader(io.StringIO(text))
    assert tuple(header) == COLUMNS
    return rows


@pytest.fixture
async def leads(redis: Redis) -> tuple[Services, list[Prospect]]:
    """The analytics population, a prospect known only by username, one claim and one loss."""
    services = await services_with(redis, TOKEN)
    assert isinstance(services.clock, ManualClock)
    prospects = await populate(services.conversations, services.clock)
    await services.conversations.handle("telegram:99", Start(), profile=Profile(username="kim"))
    sales = Sales(services.conversations, services.senders)
    services.clock.advance(timedelta(minutes=5))
    won = [p for p in prospects if p.answered]
    assert (await sales.act(Action.CLAIM, won[0].id, "slack:U1")).changed
    assert (await sales.act(Action.LOST, won[1].id, "slack:U2")).changed
    return services, prospects


async def test_the_leads_csv_agrees_with_the_dashboard(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    leads: tuple[Services, list[Prospect]],
) -> None:
    services, prospects = leads
    assert await ladder_cli(monkeypatch, redis_url, "leads", "funnel", "--csv") == 0
    every = csv_rows(capsys.readouterr().out)
    assert len(every) == len(prospects) + 1
    by_id = {r[1]: dict(zip(COLUMNS, r, strict=True)) for r in every}
    assert by_id["telegram:99"]["name"] == "@kim"  # never the chat id alone
    assert all(r["name"] != r["conversation"] for r in by_id.values())
    assert by_id[next(p for p in prospects if p.answered).id]["claimed_by"] == "slack:U1"
    assert {r["outcome"] for r in by_id.values()} == {"won", "lost", ""}
    async with (
        serving(create_app(services)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=True) as http,
    ):
        for query, argv in (
            ({}, []),
            ({"outcome": "won"}, ["--outcome", "won"]),
            ({"claimed": "yes"}, ["--claimed", "yes"]),
            ({"outcome": "none", "claimed": "no"}, ["--outcome", "none", "--claimed", "no"]),
        ):
            page = (await http.get("/dashboard/leads", params={"token": TOKEN, **query})).text
            assert await ladder_cli(monkeypatch, redis_url, "leads", "funnel", "--csv", *argv) == 0
            assert page_rows(page) == csv_rows(capsys.readouterr().out), query
        denied = await http.get("/dashboard/leads", params={"token": "wrong"})
        assert denied.status_code == 401
        if shutil.which("chromium") is None:
            pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
        dump = await asyncio.create_subprocess_exec(
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
            f"{url}/dashboard/leads?token={TOKEN}&flow=funnel",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        dom, _ = await asyncio.wait_for(dump.communicate(), timeout=60)
    assert page_rows(dom.decode()) == every
