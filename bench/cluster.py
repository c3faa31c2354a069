"""A step through a Redis Cluster against a step through a single Redis, in the same run.

    .venv/bin/python -m bench.cluster [--steps N] [--rounds R]

The step is bench.engine's full step: `Conversations.handle` on flows/webinar-ladder.yaml (read the
conversation, step, one atomic Lua write on the conversation's shard), prospects walking it.
1. single: one redis-server over loopback, redis-py's Redis client;
2. cluster: three redis-servers in cluster mode over loopback (`redis-cli --cluster create`),
   redis-py's RedisCluster client (what a cluster REDIS_URL gets);
each next to its own bare GET+SET baseline on the same client. Rounds alternate single and
cluster so the machine's load hits both alike; p50 over every round. Then how the keys of the
cluster run spread over its nodes.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from bench.engine import Figures, bench_full
from tests.redis_server import RedisClusterServers, RedisServer


def merged(name: str, runs: list[Figures]) -> Figures:
    return Figures(name, [sample for run in runs for sample in run.samples])


async def run(steps: int, rounds: int) -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    single = RedisServer().start()
    cluster = RedisClusterServers().start()
    try:
        await bench_full(single.url, steps // 10, now)  # warm-up
        await bench_full(cluster.url, steps // 10, now)
        found: dict[str, list[Figures]] = {"single": [], "single bare": [], "cluster": [],
                                           "cluster bare": []}  # fmt: skip
        for _ in range(rounds):
            for name, url in (("single", single.url), ("cluster", cluster.url)):
                step, bare = await bench_full(url, steps, now)
                found[name].append(step)
                found[f"{name} bare"].append(bare)
        sizes = await cluster.keys_per_node()
    finally:
        cluster.stop()
        single.stop()
    figures = {
        "single": merged("single Redis: full step", found["single"]),
        "single bare": merged("single Redis: bare GET+SET", found["single bare"]),
        "cluster": merged("Redis Cluster: full step", found["cluster"]),
        "cluster bare": merged("Redis Cluster: bare GET+SET", found["cluster bare"]),
    }
    print(f"flow webinar-ladder.yaml, {rounds} rounds of {steps} steps each, one process")
    for each in figures.values():
        print(each.line())
    ratio = figures["cluster"].p50 / figures["single"].p50
    bare = figures["cluster bare"].p50 / figures["single bare"].p50
    print(f"cluster step / single step at p50: {ratio:.2f}x (bare GET+SET: {bare:.2f}x)")
    for name in ("single", "cluster"):
        own = figures[name].p50 / figures[f"{name} bare"].p50
        print(f"{name}: full step / its bare GET+SET at p50: {own:.2f}x")
    print(f"keys per cluster node after the last round: {sizes}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5_000, help="steps per round and Redis")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    asyncio.run(run(args.steps, args.rounds))


if __name__ == "__main__":
    main()
