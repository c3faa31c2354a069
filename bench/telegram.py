"""Updates per second and server CPU per update through the Telegram webhook end to end:
ladderbot against two baselines measured in the same run, an aiogram 3 bot and a bare
python-telegram-bot echo bot.

    .venv/bin/python -m bench.telegram [--updates 800] [--chats 16] [--rounds 3]

Each server is a separate process on 127.0.0.1 with POST /telegram/webhook, talking to the same
fake Bot API (tests/fakes, a thread of this process). `--chats` prospects post updates
concurrently, each waiting for the answer (200) before its next update, which is: press the
first button of the bot's last message, or type /restart when it has none.
1. ladder: `ladder serve` (uvicorn) with the real Redis (REDIS_URL, or a redis-server started
   here): secret check, Update parsing, signature check, `Conversations.handle` (read, step, one
   atomic write), keyboard clean-up, the Redis flood limiter (limits set far above the load, so
   it never waits) and the replies: answerCallbackQuery, editMessageReplyMarkup, sendMessage.
2. aiogram: the same ladder in aiogram 3, FSM + RedisStorage on the same Redis, its aiohttp
   webhook handler; the same three Bot API calls per press (bench/_telegram_baselines.py).
3. echo: a python-telegram-bot `Application` behind uvicorn, answering and echoing each press
   (answerCallbackQuery and sendMessage), no Redis.
The flow has only button steps (5, then the end), so every update but /restart is a press.
Each round measures every server once, in turn (after a short warm-up); the figures are the
medians over the rounds. Server CPU is the user + system time of the server process
(/proc/PID/stat) over the measurement. On a small machine the fake API and the load generator
share the CPUs with the server under test, so compare servers within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import cpu_seconds, redis_url
from bench._telegram_baselines import SECRET, STEPS, WEBHOOK
from bot.channels.telegram.webhook import SECRET_HEADER
from storage.connect import connect
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH_FLOW = (
    "flow: bench\ntitle: Bench\nsteps:\n"
    + "".join(
        f"  - id: q{n}\n    ask: 'Question {n}?'\n    choices: [Yes, No, Maybe]\n"
        for n in range(STEPS)
    )
    + "  - id: done\n    kind: end\n    say: Thanks\n"
)


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
    """One measurement of one server."""

    name: str
    seconds: float
    latencies: list[float]  # seconds, one per update
    cpu: float  # CPU seconds the server process used meanwhile
    calls: Counter[str]  # Bot API methods the server called meanwhile

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU per update, in milliseconds."""
        return self.cpu / len(self.latencies) * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000


@dataclass(frozen=True)
class Summary:
    """The medians of one server's rounds."""

    name: str
    rounds: Sequence[Figures]

    def median(self, figure: str) -> float:
        return statistics.median(getattr(f, figure) for f in self.rounds)

    def calls(self) -> str:
        """Bot API calls per update, by method (the same work for ladder and aiogram)."""
        calls = sum((f.calls for f in self.rounds), Counter[str]())
        updates = sum(len(f.latencies) for f in self.rounds)
        return ", ".join(f"{m} {n / updates:.2f}" for m, n in sorted(calls.items()))

    def line(self) -> str:
        each = " ".join(f"{f.per_second:.0f}" for f in self.rounds)
        return (
            f"{self.name:<34} {self.median('per_second'):>6,.0f} updates/s ({each})   "
            f"p50 {self.median('p50_ms'):>6.1f} ms   p99 {self.median('p99_ms'):>6.1f} ms   "
            f"server CPU {self.median('cpu_ms'):>5.2f} ms/update"
        )

    def ratio(self, other: Summary) -> str:
        throughput = self.median("per_second") / other.median("per_second")
        cpu = self.median("cpu_ms") / other.median("cpu_ms")
        return (
            f"{self.name.split()[0]} / {other.name.split()[0]}: throughput {throughput:.2f}x, "
            f"server CPU per update {cpu:.2f}x"
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
                f"{server.url}{WEBHOOK}", json=update, headers={SECRET_HEADER: SECRET}
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
        cpu, before = server.cpu_seconds(), len(api.calls())
        start = time.perf_counter()
        await asyncio.gather(*(prospect(chat, http) for chat in chats))
        seconds = time.perf_counter() - start
        cpu = server.cpu_seconds() - cpu
    calls = Counter(call.method for call in api.calls()[before:])
    return Figures(server.name, seconds, latencies, cpu, calls)


async def measure(api: FakeTelegram, servers: list[Server], args: argparse.Namespace) -> None:
    rounds: dict[str, list[Figures]] = {server.name: [] for server in servers}
    chat = 1
    for _ in range(args.rounds):
        for server in servers:
            await drive(api, server, range(chat, chat + args.chats), args.updates // 10)  # warm-up
            chat += args.chats
            figures = await drive(api, server, range(chat, chat + args.chats), args.updates)
            chat += args.chats
            rounds[server.name].append(figures)
    print(
        f"{args.updates} updates a round, {args.chats} chats at once, "
        f"medians of {args.rounds} interleaved rounds (updates/s of each round in brackets)"
    )
    ladder, *baselines = (Summary(name, figures) for name, figures in rounds.items())
    for summary in (ladder, *baselines):
        print(summary.line())
    for summary in (ladder, *baselines):
        print(f"{summary.name:<34} Bot API calls per update: {summary.calls()}")
    for baseline in baselines:
        print(ladder.ratio(baseline))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=800, help="updates per measurement")
    parser.add_argument("--chats", type=int, default=16, help="prospects posting at once")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    args = parser.parse_args(argv)
    with (
        redis_url() as url,
        tempfile.TemporaryDirectory() as flows,
        FakeTelegram() as api,
        ExitStack() as servers,
    ):
        (Path(flows) / "bench.yaml").write_text(BENCH_FLOW)
        asyncio.run(_flush(url))
        ladder_port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": url,
            "FLOWS_DIR": flows,
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "LADDER_SECRET": secrets.token_urlsafe(32),
            "TELEGRAM_CHAT_RATE": "1000000",
            "TELEGRAM_BOT_RATE": "1000000",
            "PORT": str(ladder_port),
        }
        env.pop("PUBLIC_URL", None)
        ladder = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1"]
        started = [
            servers.enter_context(process("ladder (Redis, full flow)", ladder, env, ladder_port))
        ]
        for name, kind, extra in (
            ("aiogram 3 (FSM + RedisStorage)", "aiogram", [url]),
            ("PTB echo bot (no Redis)", "echo", []),
        ):
            port = free_port()
            command = [sys.executable, "-m", "bench._telegram_baselines", kind, str(port), api.url]
            started.append(servers.enter_context(process(name, [*command, *extra], env, port)))
        asyncio.run(measure(api, started, args))


async def _flush(url: str) -> None:
    redis = connect(url)
    await redis.flushdb()
    await redis.aclose()


if __name__ == "__main__":
    main()
