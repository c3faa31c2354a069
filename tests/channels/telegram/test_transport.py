"""The aiohttp transport of python-telegram-bot (bot.channels.telegram.transport): a real Bot on
it talks to the fake Bot API, or to loopback servers that never answer or hang up, and must
raise what PTB's own HTTPXRequest raises, without the token in any message or log."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from telegram import Bot
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest

from bot.channels.telegram.factory import make_bot
from bot.channels.telegram.transport import AiohttpRequest, masked
from bot.config import Settings
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.redis_server import free_port

TRANSPORTS: dict[str, Callable[..., BaseRequest]] = {
    "aiohttp": AiohttpRequest,
    "httpx": HTTPXRequest,
}


@asynccontextmanager
async def bot_on(transport: str, api_url: str, **options: Any) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, base_url=f"{api_url}/bot", request=TRANSPORTS[transport](**options))
    try:
        yield bot
    finally:
        await bot.request.shutdown()


async def failure(call: Awaitable[object]) -> TelegramError:
    with pytest.raises(TelegramError) as caught:
        await call
    return caught.value


@asynccontextmanager
async def loopback_server(*, hang_up: bool) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """An HTTP server on 127.0.0.1 that reads a request and then closes the connection
    (`hang_up`) or never answers; yields its url and an event set once a request arrived."""
    arrived = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        arrived.set()
        if hang_up:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", arrived
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("code", "retry_after", "expected"),
    [
        (429, 3, RetryAfter),
        (400, None, BadRequest),
        (403, None, Forbidden),
        (500, None, NetworkError),
        (502, None, NetworkError),
    ],
)
async def test_bot_api_errors_raise_what_httpx_raises(
    telegram_api: FakeTelegram, code: int, retry_after: int | None, expected: type[Exception]
) -> None:
    raised = []
    for transport in TRANSPORTS:
        description = f"Error {code}"
        telegram_api.fail_next(
            "sendMessage", error_code=code, retry_after=retry_after, description=description
        )
        async with bot_on(transport, telegram_api.url) as bot:
            raised.append(await failure(bot.send_message(42, "Hi")))
    ours, httpx = raised
    assert type(ours) is type(httpx) is expected
    assert str(ours) == str(httpx)
    if isinstance(ours, RetryAfter) and isinstance(httpx, RetryAfter):
        assert ours.retry_after == httpx.retry_after


async def test_a_wrong_token_is_invalid_like_with_httpx(telegram_api: FakeTelegram) -> None:
    raised = []
    for make in TRANSPORTS.values():
        request = make()
        bot = Bot("654321:WRONG-token", base_url=f"{telegram_api.url}/bot", request=request)
        raised.append(await failure(bot.get_me()))
        await request.shutdown()
    assert [type(e) for e in raised] == [InvalidToken, InvalidToken]
    assert str(raised[0]) == str(raised[1])


async def test_calls_succeed_and_keep_their_results(telegram_api: FakeTelegram) -> None:
    async with bot_on("aiohttp", telegram_api.url) as bot:
        first = await bot.send_message(42, "Hello, Ada")
        second = await bot.send_message(42, "Again: ünïcödé & a+b=c")
        assert await bot.answer_callback_query("cq1") is True
    assert second.message_id == first.message_id + 1
    assert [m.text for m in telegram_api.messages(42)] == ["Hello, Ada", "Again: ünïcödé & a+b=c"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_unreachable_api_is_a_network_error(transport: str) -> None:
    async with bot_on(transport, f"http://127.0.0.1:{free_port()}") as bot:
        error = await failure(bot.send_message(42, "Hi"))
    assert type(error) is NetworkError


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_api_that_hangs_up_is_a_network_error(transport: str) -> None:
    async with loopback_server(hang_up=True) as (url, _), bot_on(transport, url) as bot:
        error = await failure(bot.send_message(42, "Hi"))
    assert type(error) is NetworkError


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_unanswered_call_times_out(transport: str) -> None:
    async with loopback_server(hang_up=False) as (url, _), bot_on(transport, url) as bot:
        error = await failure(bot.send_message(42, "Hi", read_timeout=0.2))
    assert type(error) is TimedOut


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_waiting_for_a_busy_pool_times_out(transport: str) -> None:
    async with (
        loopback_server(hang_up=False) as (url, arrived),
        bot_on(transport, url, connection_pool_size=1) as bot,
    ):
        holding = asyncio.create_task(bot.send_message(42, "Hi", read_timeout=30))
        await arrived.wait()  # the only connection is taken by a call that gets no answer
        error = await failure(bot.send_message(42, "Hi", pool_timeout=0.2))
        holding.cancel()
    assert type(error) is TimedOut


async def test_the_token_is_never_in_errors_or_logs(
    telegram_api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # `ladder -v`: python-telegram-bot logs its urls
    log = logging.getLogger(__name__)

    async def error_from(api_url: str, **options: Any) -> TelegramError:
        settings = replace(Settings.from_env(), telegram_token=TOKEN, telegram_api_url=api_url)
        bot = make_bot(settings)
        try:
            return await failure(bot.send_message(42, "Hi", **options))
        finally:
            await bot.request.shutdown()

    telegram_api.fail_next("sendMessage", error_code=500, retry_after=None)
    errors = [await error_from(telegram_api.url)]
    for url in (f"http://127.0.0.1:{free_port()}", "http://127.0.0.1:notaport", "htp://x"):
        errors.append(await error_from(url))
    async with loopback_server(hang_up=True) as (url, _):
        errors.append(await error_from(url))
    async with loopback_server(hang_up=False) as (url, _):
        errors.append(await error_from(url, read_timeout=0.2))
    for error in errors:
        log.error("sending failed", exc_info=error)
    assert [type(e) for e in errors] == [NetworkError] * 5 + [TimedOut]
    assert "<token>" in "".join(str(e) for e in errors)  # the bad urls are named, masked
    assert "Set Bot API URL" in caplog.text
    for error in errors:
        assert TOKEN not in "".join(traceback.format_exception(error))
    assert TOKEN not in caplog.text


def test_masked_hides_the_token_of_any_bot_api_url() -> None:
    text = f"Cannot send to http://api.example.com/bot{TOKEN}/sendMessage or /file/bot{TOKEN}/x"
    assert masked(text) == (
        "Cannot send to http://api.example.com/bot<token>/sendMessage or /file/bot<token>/x"
    )
