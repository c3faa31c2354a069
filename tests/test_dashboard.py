"""The /dashboard page on the real web app served by uvicorn on 127.0.0.1: the token check,
and the page's content, read over HTTP and rendered by headless Chromium."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette

from bot.analytics import FlowStats, Segment
from bot.app import Services, build
from bot.config import Settings
from bot.dashboard import flow_section, render_page
from bot.flow.loader import load_flow
from bot.sales import Action, Sales
from bot.web import create_app
from domain.clock import ManualClock
from domain.model import DomainEvent
from storage.connect import connect
from tests.redis_server import RedisServer
from tests.test_analytics import FLOW_FILE, T0, Prospect, expected_funnel, populate

TOKEN = "dash-s3cret"


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port, in this event loop (the app shares
    the test's Redis client)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn only offers this flag
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def services_with(redis: Redis, token: str | None, public_url: str | None = None) -> Services:
    settings = replace(Settings.from_env(), dashboard_token=token, public_url=public_url)
    return await build(settings, clock=ManualClock(T0), redis=redis, paths=[FLOW_FILE])


@pytest.fixture
async def site(redis: Redis) -> AsyncIterator[tuple[str, list[Prospect]]]:
    services = await services_with(redis, TOKEN)
    assert isinstance(services.clock, ManualClock)
    prospects = await populate(services.conversations, services.clock)
    async with serving(create_app(services)) as url:
        yield url, prospects


async def test_dashboard_needs_the_token(site: tuple[str, list[Prospect]]) -> None:
    url, _ = site
    async with httpx.AsyncClient(base_url=url) as http:
        for params, headers in (
            ({}, {}),
            ({"token": "wrong"}, {}),
            ({"token": TOKEN[:-1]}, {}),
            ({}, {"Authorization": "Bearer wrong"}),
            ({}, {"Authorization": TOKEN}),  # no "Bearer"
        ):
            answer = await http.get("/dashboard", params=params, headers=headers)
            assert answer.status_code == 401, (params, headers)
            assert "unauthorized" in answer.text
            assert TOKEN not in answer.text
        by_header = await http.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_header.status_code == 200
    assert by_header.headers["content-type"].startswith("text/html")


async def test_a_token_link_sets_a_cookie_and_drops_the_token_from_the_url(
    site: tuple[str, list[Prospect]],
) -> None:
    url, _ = site
    async with httpx.AsyncClient(base_url=url) as http:
        wrong = await http.get("/dashboard", params={"token": "wrong", "flow": "funnel"})
        assert wrong.status_code == 401 and not http.cookies
        link = await http.get("/dashboard", params={"token": TOKEN, "flow": "funnel"})
        assert link.status_code == 303
        assert link.headers["location"] == "/dashboard?flow=funnel"  # the other parameters stay
        cookie = link.headers["set-cookie"].lower()
        assert "httponly" in cookie and "path=/dashboard" in cookie and "samesite=lax" in cookie
        assert "secure" not in cookie  # PUBLIC_URL is not https here
        page = await http.get(link.headers["location"])  # the client sends the cookie back
        assert page.status_code == 200 and "<h1>ladderbot</h1>" in page.text
        http.cookies.clear()
        assert (await http.get("/dashboard")).status_code == 401
        http.cookies.set("ladder_dashboard", TOKEN[:-1])
        assert (await http.get("/dashboard")).status_code == 401


async def test_the_cookie_is_secure_behind_an_https_public_url(redis: Redis) -> None:
    services = await services_with(redis, TOKEN, public_url="https://bot.example.com")
    async with serving(create_app(services)) as url, httpx.AsyncClient(base_url=url) as http:
        link = await http.get("/dashboard", params={"token": TOKEN})
    assert link.status_code == 303 and link.headers["location"] == "/dashboard"
    assert "secure" in link.headers["set-cookie"].lower()


async def test_dashboard_is_closed_without_a_configured_token(redis: Redis) -> None:
    services = await services_with(redis, None)
    async with serving(create_app(services)) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/dashboard", params={"token": ""})
    assert answer.status_code == 401
    assert answer.text == "dashboard disabled: set DASHBOARD_TOKEN"


async def test_dashboard_shows_funnel_variants_graph_and_completions(
    site: tuple[str, list[Prospect]],
) -> None:
    url, prospects = site
    async with httpx.AsyncClient(base_url=url, follow_redirects=True) as http:
        page = (await http.get("/dashboard", params={"token": TOKEN})).text
    done = [p for p in prospects if p.answered]
    assert "Funnel test ladder" in page
    assert f"12 started · {len(done)} completed" in page
    for step, (reached, committed, dropped) in expected_funnel(prospects).items():
        assert f">{step}</text>" in page  # a bar label in the funnel chart
        assert f"{committed}/{reached} · dropped {dropped}" in page
    assert '<svg class="graph"' in page and "welcome <tspan" in page
    assert len(re.findall(r"<tr><td>welcome</td><td>[ab]</td>", page)) == 2  # A/B rows
    recent = page.split('id="recent"')[1]
    assert {p.id for p in done} == set(re.findall(r"<td>(telegram:\d+)</td>", recent))


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)
async def test_dashboard_renders_in_headless_chromium(
    site: tuple[str, list[Prospect]], tmp_path: Path
) -> None:
    url, prospects = site
    page = f"{url}/dashboard?token={TOKEN}"
    shot = tmp_path / "dashboard.png"
    common = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dump = await asyncio.create_subprocess_exec(
        *common,
        "--dump-dom",
        page,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    dom, _ = await asyncio.wait_for(dump.communicate(), timeout=60)
    text = dom.decode()
    assert "<h1>ladderbot</h1>" in text
    assert text.count("<rect") >= 2 * len(expected_funnel(prospects))  # bars were parsed as SVG
    assert "Recent completions" in text
    snap = await asyncio.create_subprocess_exec(
        *common,
        f"--screenshot={shot}",
        "--window-size=1200,1100",
        page,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.wait_for(snap.wait(), timeout=60)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    denied = await asyncio.create_subprocess_exec(
        *common,
        "--dump-dom",
        f"{url}/dashboard",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    dom, _ = await asyncio.wait_for(denied.communicate(), timeout=60)
    assert "unauthorized" in dom.decode()
    assert "Recent completions" not in dom.decode()


async def test_dashboard_answers_503_when_redis_is_down(own_redis: RedisServer) -> None:
    redis = connect(own_redis.url)
    services = await services_with(redis, TOKEN)
    async with serving(create_app(services)) as url, httpx.AsyncClient(base_url=url) as http:
        own_redis.stop()
        answer = await http.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    await redis.aclose()
    assert answer.status_code == 503
    assert answer.text.startswith("Redis is unavailable")


def test_flow_text_is_escaped_in_the_page() -> None:
    flow = load_flow(FLOW_FILE)
    hostile = replace(flow, title="<script>alert(1)</script>", version=1)
    event = DomainEvent("completed", "telegram:<b>", "funnel", 1, "done", "2026-12-01T09:00:00")
    section = flow_section(FlowStats.of([event], Segment("funnel"), ["welcome"]), hostile)
    page = render_page([section], [event], T0)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "telegram:&lt;b&gt;" in page


async def test_dashboard_shows_outcomes_sales_actions_and_time_to_claim(redis: Redis) -> None:
    services = await services_with(redis, TOKEN)
    assert isinstance(services.clock, ManualClock)
    prospects = await populate(services.conversations, services.clock)
    won = [p for p in prospects if p.answered]  # funnel.yaml's only end: won
    sales = Sales(services.conversations, services.senders)
    services.clock.advance(timedelta(minutes=30))  # after every alert
    claimed = await sales.act(Action.CLAIM, won[0].id, "slack:U1")
    services.clock.advance(timedelta(minutes=1))  # two shards' events are ordered by their time
    lost = await sales.act(Action.LOST, won[1].id, "slack:U2")
    assert claimed.changed and lost.changed
    async with (
        serving(create_app(services)) as url,
        httpx.AsyncClient(base_url=url, follow_redirects=True) as http,
    ):
        page = (await http.get("/dashboard", params={"token": TOKEN})).text
    outcomes = dict(re.findall(r'<tr class="outcome"><td>(\w+)</td><td>(\d+)</td>', page))
    assert outcomes == {"won": str(len(won) - 1), "lost": "1"}
    assert f"{len(won) - 1} converted" in page
    actions = re.findall(r'<tr class="sales"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>'
                         r"<td>([^<]*)</td>", page)  # fmt: skip
    assert actions == [(won[1].id, "lost", "slack:U2"), (won[0].id, "claimed", "slack:U1")]
    assert "median time to claim" in page


def test_dead_letters_are_counted_on_the_page() -> None:
    assert "Nothing given up on" in render_page([], [], T0, dead=0)
    page = render_page([], [], T0, dead=3).split('id="outbox"')[1]
    assert "<strong>3</strong> message(s) or alert(s) given up on" in page
    assert "ladder outbox retry --all" in page
