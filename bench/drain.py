"""Due follow-ups delivered per second by one `ladder worker` process, with 100k due at once.

    .venv/bin/python -m bench.drain [--due 100000] [--measure 5000]

`--due` prospects are written straight into Redis (clones of one real conversation started on a
flow with a 24h follow-up), each with its nudge due a minute ago. Then one `ladder worker`
process (real clock, REDIS_URL, flood limits raised far above the load) fires them and sends
each nudge through python-telegram-bot to the fake Bot API (tests/fakes, a thread of this
process), which counts them. The rate is taken between the first nudge received and the
`--measure`-th, while the queue still holds most of the due ones; the worker is stopped then.
The worker's CPU time over that window gives what one fully busy core would deliver (on a
shared machine the wall-clock rate also depends on what else runs).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from bench._common import cpu_seconds, redis_url, wait_until, worker_env
from bot.app import build
from bot.config import Settings
from domain.clock import ManualClock
from domain.model import Start
from storage import keys
from storage.connect import connect
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
FLOW = """\
flow: drain
follow_up: {after: 24h, max: 3, say: "Still keen?"}
steps:
  - id: welcome
    ask: "Want the checklist?"
    choices: [{label: "Yes", go: done}]
  - id: done
    kind: end
    say: "Thanks!"
"""


async def fill(redis: Redis, flows: Path, due: int) -> None:
    """`due` prospects whose first nudge fell due a minute ago."""
    await redis.flushdb()
    started = datetime.now(UTC) - timedelta(hours=24, minutes=1)
    services = await build(
        Settings.from_env(), clock=ManualClock(started), redis=redis, paths=[flows / "drain.yaml"]
    )
    model = "telegram:1"
    await services.conversations.handle(model, Start())
    conv = await redis.hgetall(keys.conversation(model))
    timers = sorted(await redis.smembers(keys.conversation_timers(model)))
    shard = keys.shard_of(model)
    bodies = await redis.hmget(keys.timers_body(shard), timers)
    scores = [await redis.zscore(keys.timers_due(shard), t) for t in timers]
    await redis.flushdb()
    await services.flows.catalog.publish("drain", FLOW)
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(1, due + 1):
            cid = f"telegram:{n}"
            pipe.hset(keys.conversation(cid), mapping={"v": conv["v"],
                      "doc": conv["doc"].replace(f'"{model}"', f'"{cid}"')})  # fmt: skip
            shard = keys.shard_of(cid)
            for timer, body, score in zip(timers, bodies, scores, strict=True):
                tid = timer.replace(model, cid, 1)
                pipe.zadd(keys.timers_due(shard), {tid: float(score or 0)})
                pipe.hset(keys.timers_body(shard), tid, str(body).replace(f'"{model}"', f'"{cid}"'))
                pipe.sadd(keys.conversation_timers(cid), tid)
            if len(pipe) >= 20_000:
                await pipe.execute()
        await pipe.execute()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=100_000, help="follow-ups due at once")
    parser.add_argument("--measure", type=int, default=5_000, help="nudges the rate is taken on")
    args = parser.parse_args(argv)
    with redis_url(fresh=True) as url, tempfile.TemporaryDirectory() as tmp, FakeTelegram() as api:
        flows = Path(tmp)
        (flows / "drain.yaml").write_text(FLOW)
        redis = connect(url)
        asyncio.run(fill(redis, flows, args.due))
        env = worker_env(url, tmp, api.url)
        worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env)
        try:
            wait_until(lambda: bool(api.calls("sendMessage")), worker, 0.01)
            first, cpu = time.perf_counter(), cpu_seconds(worker.pid)
            wait_until(lambda: len(api.calls("sendMessage")) >= args.measure, worker, 0.05)
            seconds, cpu = time.perf_counter() - first, cpu_seconds(worker.pid) - cpu
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    print(f"{args.due} follow-ups due at once, one worker process, flood limits raised")
    cpu_ms = cpu * 1000 / args.measure
    print(f"delivered: {args.measure / seconds:8,.0f} nudges/s  (first {args.measure} sent)")
    print(f"worker CPU {cpu_ms:.2f} ms/nudge: {1000 / cpu_ms:,.0f} nudges/s per busy core")


if __name__ == "__main__":
    main()
