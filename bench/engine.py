"""Engine and full-step speed, against a bare Redis GET+SET measured in the same run.

    .venv/bin/python -m bench.engine [--steps N]

1. engine: `engine.step` alone (pure, in memory), per step.
2. full step: `Conversations.handle` = read the conversation from Redis, step, one atomic Lua write
   (state + events + timers), on a real redis-server over loopback.
3. baseline: a bare GET then SET of a similar-sized value on the same server and client.
One process, one core, sequential; latencies in microseconds, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bench._common import redis_url
from bot import engine
from bot.flow.compile import CompiledFlow, compile_flow
from bot.flow.loader import load_flow
from bot.registry import FlowRegistry
from bot.service import Conversations
from domain.clock import ManualClock
from domain.model import (
    Button,
    Conversation,
    Event,
    LinkButton,
    LinkOpened,
    Press,
    Say,
    Start,
    Status,
    StepResult,
    Text,
)
from storage.connect import connect
from storage.redis import RedisFlowCatalog

FLOW = Path(__file__).resolve().parent.parent / "flows" / "webinar-ladder.yaml"
TYPED = {"email": "pat@example.com", "phone": "+49 30 1234567", "number": "42", "text": "Acme"}


@dataclass(frozen=True)
class Figures:
    name: str
    samples: list[float]  # microseconds

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.samples, n=100)[98]

    @property
    def per_second(self) -> float:
        return 1e6 / statistics.fmean(self.samples)

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.per_second:>10,.0f}/s   "
            f"p50 {self.p50:>8.1f} µs   p99 {self.p99:>8.1f} µs"
        )


def next_event(flow: CompiledFlow, result: StepResult) -> Event:
    """What a cooperative prospect does next: the first button, or a valid typed answer."""
    conv = result.conversation
    if conv.status != Status.ACTIVE:
        return Start()
    says = [a for a in result.actions if isinstance(a, Say) and a.buttons]
    if says:
        button = says[-1].buttons[0]
        if isinstance(button, LinkButton):
            return LinkOpened(button.step)
        assert isinstance(button, Button)
        return Press(button.step, button.choice)
    assert conv.step is not None
    step = flow.flow.step(conv.step)
    kind = step.validator.kind if step.validator else "text"
    return Text(TYPED[kind])


def fresh(flow: CompiledFlow, n: int) -> Conversation:
    return Conversation(id=f"bench:{n}", flow=flow.flow.name, version=flow.flow.version)


def bench_engine(flow: CompiledFlow, steps: int, now: datetime) -> Figures:
    samples: list[float] = []
    n = 0
    conv = fresh(flow, n)
    event: Event = Start()
    clock = time.perf_counter_ns
    for _ in range(steps):
        t0 = clock()
        result = engine.step(flow, conv, event, now)
        samples.append((clock() - t0) / 1000)
        event = next_event(flow, result)
        conv = result.conversation
        if isinstance(event, Start):
            n += 1
            conv = fresh(flow, n)
    return Figures("engine step (pure)", samples)


async def bench_full(url: str, steps: int, now: datetime) -> tuple[Figures, Figures]:
    redis = connect(url)
    await redis.flushdb()
    registry = await FlowRegistry.from_files(RedisFlowCatalog(redis), [FLOW])
    flow = await registry.latest(registry.default_name)
    conversations = Conversations(redis, registry, ManualClock(now))
    samples: list[float] = []
    baseline: list[float] = []
    clock = time.perf_counter_ns
    n, event = 0, Start()
    value = fresh(flow, 0).to_json()
    for i in range(steps):  # interleaved, so load on the machine hits both alike
        t0 = clock()
        outcome = await conversations.handle(f"bench:{n}", event)
        t1 = clock()
        await redis.get(f"bench:raw:{i % 100}")
        await redis.set(f"bench:raw:{i % 100}", value)
        t2 = clock()
        samples.append((t1 - t0) / 1000)
        baseline.append((t2 - t1) / 1000)
        result = StepResult(outcome.conversation, outcome.actions, outcome.events)
        event = next_event(flow, result)
        if isinstance(event, Start):
            n += 1
    await redis.aclose()
    return Figures("full step (Redis read+step+write)", samples), Figures(
        "baseline: bare GET+SET", baseline
    )


async def run(steps: int) -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with redis_url() as url:
        flow = compile_flow(replace(load_flow(FLOW), version=1))
        bench_engine(flow, steps // 10, now)  # warm-up
        pure = bench_engine(flow, steps, now)
        full, baseline = await bench_full(url, steps, now)
    print(f"flow {FLOW.name}, {steps} steps each, one process")
    for figures in (pure, full, baseline):
        print(figures.line())
    print(
        f"engine step p50 {pure.p50:.1f} µs (target <= 50 µs): "
        f"{'ok' if pure.p50 <= 50 else 'MISSED'}"
    )
    ratio = full.p50 / baseline.p50
    print(
        f"full step / bare GET+SET at p50: {ratio:.2f}x (target <= 3x): "
        f"{'ok' if ratio <= 3 else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    asyncio.run(run(parser.parse_args(argv).steps))


if __name__ == "__main__":
    main()
