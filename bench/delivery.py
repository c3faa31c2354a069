"""The reply path of one Telegram update, in process: updates per second and Redis round trips
per update.

    .venv/bin/python -m bench.delivery [--updates 2000] [--chats 16]

`TelegramChannel.process` runs for each update (no HTTP in front of it): the duplicate check,
load, engine step and atomic commit, then the replies through python-telegram-bot to the fake
Bot API (tests/fakes, a thread of this process) within the Redis flood limiter (limits set far
above the load) and whatever the delivery records. `--chats` prospects press the first button
of their last message (or type /restart) one update at a time, concurrently. Round trips are
counted on the process's Redis client: a command, a script call or a whole pipeline is one.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from telegram import Update

from bench._common import redis_url
from bench.telegram import BENCH_FLOW
from bot.app import build
from bot.channels.telegram.channel import TelegramChannel
from bot.config import Settings
from storage.connect import connect
from tests.fakes.telegram_api import TOKEN, FakeTelegram


class CountingPipeline(Pipeline):
    """A pipeline that counts each `execute` as one round trip on its client."""

    counter: list[int]

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.counter[0] += 1
        return await super().execute(raise_on_error)


class CountingRedis(Redis):
    """A client that counts its round trips in `trips[0]`."""

    trips = [0]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.trips[0] += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = CountingPipeline(self.connection_pool, self.response_callbacks, transaction,
                                shard_hint)  # fmt: skip
        pipe.counter = self.trips
        return pipe


async def run(url: str, flows: Path, api: FakeTelegram, updates: int, chats: int) -> None:
    settings = replace(
        Settings.from_env(), redis_url=url, flows_dir=flows, telegram_token=TOKEN,
        telegram_api_url=api.url, public_url=None, secret="bench-secret",
        telegram_chat_rate=1_000_000.0, telegram_bot_rate=1_000_000.0,
    )  # fmt: skip
    plain = connect(url)
    await plain.flushdb()
    redis = CountingRedis(connection_pool=plain.connection_pool)
    services = await build(settings, redis=redis)
    channel = TelegramChannel.from_services(services)
    await channel.sender.bot.initialize()
    left = [0]

    async def prospect(chat: int) -> None:
        person = api.prospect(chat)
        update: dict[str, Any] = person.text("/restart")
        while left[0] > 0:
            left[0] -= 1
            await channel.process(Update.de_json(update, channel.sender.bot))
            last = person.last
            data = [b["callback_data"] for b in last.buttons if "callback_data" in b]
            update = (
                person.press_data(data[0], last.message_id) if data else person.text("/restart")
            )

    async def measure(first_chat: int, count: int) -> tuple[float, float]:
        left[0] = count
        trips = CountingRedis.trips[0]
        start = time.perf_counter()
        await asyncio.gather(*(prospect(first_chat + n) for n in range(chats)))
        seconds = time.perf_counter() - start
        return count / seconds, (CountingRedis.trips[0] - trips) / count

    await measure(1, updates // 10)  # warm-up: flows compiled, connections open
    rate, trips = await measure(1 + chats, updates)
    print(f"{updates} updates, {chats} chats at once, in process")
    print(f"reply path: {rate:8,.0f} updates/s   {trips:5.2f} Redis round trips per update")
    await channel.sender.aclose()
    await plain.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000, help="updates measured")
    parser.add_argument("--chats", type=int, default=16, help="prospects posting at once")
    args = parser.parse_args(argv)
    with redis_url() as url, tempfile.TemporaryDirectory() as flows, FakeTelegram() as api:
        (Path(flows) / "bench.yaml").write_text(BENCH_FLOW)
        asyncio.run(run(url, Path(flows), api, args.updates, args.chats))


if __name__ == "__main__":
    main()
