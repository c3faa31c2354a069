"""Updates per second through the Telegram webhook end to end, against a bare
python-telegram-bot echo bot measured in the same run.

    .venv/bin/python -m bench.telegram [--updates 800] [--chats 16] [--rounds 2]

Both servers are separate processes running uvicorn on 127.0.0.1 with POST /telegram/webhook,
talking through python-telegram-bot to the same fake Bot API (tests/fakes, a thread of this
process). `--chats` prospects post updates concurrently, each waiting for the answer (200)
before its next update, which is: press the first button of the bot's last message, or type
/restart when it has none.
1. ladder: `ladder serve` with the real Redis (REDIS_URL, or a redis-server started here):
   secret check, Update parsing, signature check, `Ladder.handle` (read, step, one atomic
   write), keyboard clean-up, the Redis flood limiter (limits set far above the load, so it
   never waits) and the replies: answerCallbackQuery, editMessageReplyMarkup, sendMessage.
2. baseline: a python-telegram-bot `Application` (no updater) behind the same route, with an
   echo MessageHandler and a CallbackQueryHandler that answers and echoes with one button:
   answerCallbackQuery and sendMessage per press, no Redis.
The flow has only button steps (5, then the end), so every update but /restart is a press.
Rounds alternate ladder and baseline; the best round of each is reported. On a small machine
the fake API and the load generator share the CPUs with the server under test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bench._common import cpu_seconds, redis_url
from bot.channels.telegram import SECRET_HEADER
from storage.connect import connect
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
STEPS = 5
BENCH_FLOW = (
    "flow: bench\ntitle: Bench\nsteps:\n"
    + "".join(
        f"  - id: q{n}\n    ask: 'Question {n}?'\n    choices: [Yes, No, Maybe]\n"
        for n in range(STEPS)
    )
    + "  - id: done\n    kind: end\n    say: Thanks\n"
)


async def serve_echo(port: int, api_url: str) -> None:
    """The baseline web process: a bare python-telegram-bot echo bot behind the webhook."""
    builder = Application.builder().token(TOKEN).base_url(f"{api_url}/bot").updater(None)
    application = builder.concurrent_updates(True).build()  # like the ladder: no update queue
    again = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])

    async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat and update.message
        await application.bot.send_message(
            update.effective_chat.id, update.message.text or "", reply_markup=again
        )

    async def pressed(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query and update.effective_chat
        await query.answer()
        await application.bot.send_message(
            update.effective_chat.id, query.data or "", reply_markup=again
        )

    async def webhook(request: Request) -> Response:
        if request.headers.get(SECRET_HEADER) != SECRET:
            return Response(status_code=403)
        await application.process_update(Update.de_json(await request.json(), application.bot))
        return Response(status_code=200)

    async def healthz(_: Request) -> Response:
        return Response(status_code=200)

    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(pressed))
    await application.initialize()
    routes = [Route("/telegram/webhook", webhook, methods=["POST"]), Route("/healthz", healthz)]
    app = Starlette(routes=routes)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    try:
        await uvicorn.Server(config).serve()
    finally:
        await application.shutdown()


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        return cpu_seconds(self.pid)


@contextmanager
def process(name: str, command: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    """Start a web process and wait until /healthz answers; SIGTERM it afterwards."""
    url = f"http://127.0.0.1:{port}"
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=quiet, stderr=quiet)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not start")
            time.sleep(0.05)
        yield Server(name, url, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@dataclass(frozen=True)
class Figures:
    name: str
    seconds: float
    latencies: list[float]  # seconds, one per update
    cpu: float  # CPU seconds the server process used meanwhile

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU per update, in milliseconds."""
        return self.cpu / len(self.latencies) * 1000

    def line(self) -> str:
        p50 = statistics.median(self.latencies) * 1000
        p99 = statistics.quantiles(self.latencies, n=100)[98] * 1000
        return (
            f"{self.name:<34} {self.per_second:>6,.0f} updates/s   p50 {p50:>6.1f} ms   "
            f"p99 {p99:>6.1f} ms   server CPU {self.cpu_ms:>5.2f} ms/update"
        )


async def drive(api: FakeTelegram, server: Server, chats: range, updates: int) -> Figures:
    """Post `updates` updates from `chats` concurrently, each chat one at a time."""
    latencies: list[float] = []
    left = [updates]

    async def prospect(chat: int, http: httpx.AsyncClient) -> None:
        person = api.prospect(chat)
        update: dict[str, Any] = person.text("/restart")
        while left[0] > 0:
            left[0] -= 1
            start = time.perf_counter()
            response = await http.post(
                f"{server.url}/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}
            )
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{server.name}: HTTP {response.status_code} {response.text}")
            last = person.last
            data = [b["callback_data"] for b in last.buttons if "callback_data" in b]
            update = (
                person.press_data(data[0], last.message_id) if data else person.text("/restart")
            )

    limits = httpx.Limits(max_connections=len(chats))
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        cpu = server.cpu_seconds()
        start = time.perf_counter()
        await asyncio.gather(*(prospect(chat, http) for chat in chats))
        seconds = time.perf_counter() - start
        cpu = server.cpu_seconds() - cpu
    return Figures(server.name, seconds, latencies, cpu)


async def measure(api: FakeTelegram, servers: list[Server], args: argparse.Namespace) -> None:
    best: dict[str, Figures] = {}
    chat = 1
    for _ in range(args.rounds):
        for server in servers:
            await drive(api, server, range(chat, chat + args.chats), args.updates // 10)  # warm-up
            chat += args.chats
            figures = await drive(api, server, range(chat, chat + args.chats), args.updates)
            chat += args.chats
            if server.name not in best or figures.per_second > best[server.name].per_second:
                best[server.name] = figures
    print(f"{args.updates} updates a round, {args.chats} chats at once, best of {args.rounds}")
    for figures in best.values():
        print(figures.line())
    ladder, echo = (best[server.name] for server in servers)
    print(
        f"ladder / echo: throughput {ladder.per_second / echo.per_second:.2f}x, "
        f"server CPU per update {ladder.cpu_ms / echo.cpu_ms:.2f}x"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=800, help="updates per measurement")
    parser.add_argument("--chats", type=int, default=16, help="prospects posting at once")
    parser.add_argument("--rounds", type=int, default=2, help="ladder/baseline alternations")
    parser.add_argument("--echo-server", nargs=2, metavar=("PORT", "API"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        asyncio.run(serve_echo(int(args.echo_server[0]), args.echo_server[1]))
        return
    with (
        redis_url() as url,
        tempfile.TemporaryDirectory() as flows,
        FakeTelegram() as api,
    ):
        (Path(flows) / "bench.yaml").write_text(BENCH_FLOW)
        asyncio.run(_flush(url))
        ladder_port, echo_port = free_port(), free_port()
        env = {
            **os.environ,
            "REDIS_URL": url,
            "FLOWS_DIR": flows,
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_CHAT_RATE": "1000000",
            "TELEGRAM_BOT_RATE": "1000000",
            "PORT": str(ladder_port),
        }
        env.pop("PUBLIC_URL", None)
        ladder = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1"]
        echo = [
            sys.executable,
            "-m",
            "bench.telegram",
            "--echo-server",
            str(echo_port),
            api.url,
        ]
        with (
            process("ladder webhook (Redis, full flow)", ladder, env, ladder_port) as one,
            process("baseline: PTB echo bot", echo, env, echo_port) as two,
        ):
            asyncio.run(measure(api, [one, two], args))


async def _flush(url: str) -> None:
    redis = connect(url)
    await redis.flushdb()
    await redis.aclose()


if __name__ == "__main__":
    main()
