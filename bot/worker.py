"""`ladder worker`: send the follow-ups and reminders that are due, and run the outbox delivery.

Any number of workers share one Redis. Each round a worker takes back the claims of workers that
died (their lease ran out), claims a batch of due timers, feeds each to the engine as `Due(timer)`
through the Ladder (one atomic step), hands the resulting messages to the conversation's channel,
and acks the claim. Between rounds it sleeps until the next timer is due, at most `idle` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from redis.exceptions import RedisError

from bot.app import Services, build
from bot.channels import Sender
from bot.channels.slack import outbox_handler
from bot.channels.telegram import CHANNEL as TELEGRAM
from bot.channels.telegram import TelegramChannel
from bot.clock import Clock, MovableClock
from bot.config import Settings
from bot.errors import StorageError
from bot.model import Due
from bot.service import Ladder
from storage.outbox import Outbox
from storage.scheduler import Claim, RedisScheduler

log = logging.getLogger("ladderbot.worker")

Job = Callable[[], Awaitable[int]]
"""Work a worker also does each round (e.g. the Slack outbox): returns how many items it handled."""

BATCH = 100
LEASE = timedelta(seconds=60)
IDLE_SECONDS = 1.0


class Worker:
    """Handles due timers; `tick()` is one round, `run()` rounds until stopped.

    `senders` is read at delivery time, so a process may add its channels after building this."""

    def __init__(
        self,
        ladder: Ladder,
        senders: Mapping[str, Sender],
        clock: Clock,
        *,
        jobs: Sequence[Job] = (),
        batch: int = BATCH,
        lease: timedelta = LEASE,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.ladder = ladder
        self.senders = senders
        self.clock = clock
        self.jobs = tuple(jobs)
        self.batch = batch
        self.lease = lease
        self.idle = idle
        self.scheduler = RedisScheduler(ladder.redis)

    async def tick(self) -> int:
        """Recover dead workers' claims, then handle one batch of due timers; returns how many
        timers were claimed."""
        now = self.clock.now()
        await self.scheduler.recover(now)
        claims = await self.scheduler.claim(now, self.batch, self.lease)
        for claim in claims:  # one at a time: a crash loses at most the message being sent
            await self.fire(claim)
        return len(claims)

    async def fire(self, claim: Claim) -> None:
        """One due timer: the engine's step, the messages, the ack.

        A timer left unacked goes back to the queue when its lease runs out: that happens when
        no sender here serves its channel (another worker may) or the step failed (Redis down,
        a flow version missing). A send that fails after the step was stored is logged, not
        retried: the engine counts that nudge as sent and would ignore the timer a second time."""
        timer = claim.timer
        channel = timer.conversation.split(":", 1)[0]
        sender = self.senders.get(channel)
        if sender is None:
            log.error("no sender for channel %r: timer %s left to its lease", channel, timer.id)
            return
        try:
            outcome = await self.ladder.handle(timer.conversation, Due(timer))
        except Exception:
            log.exception("timer %s failed; it is retried when its lease runs out", timer.id)
            return
        if outcome.actions:
            try:
                await sender.deliver(outcome.conversation, outcome.actions)
            except Exception:
                log.exception("timer %s: sending to %s failed", timer.id, timer.conversation)
        await self.scheduler.ack(claim)

    async def round(self) -> int:
        """A tick and each job; Redis trouble is logged and the round counts as idle."""
        try:
            done = await self.tick()
            for job in self.jobs:
                done += await job()
        except (StorageError, RedisError) as exc:
            log.error("worker round failed, retrying: %s", exc)
            return 0
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Round after round until `stop` is set; straight on while there is work."""
        while not stop.is_set():
            if await self.round():
                await asyncio.sleep(0)  # let other tasks (and `stop`) in between busy rounds
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), await self.pause())

    async def pause(self) -> float:
        """Seconds to sleep: until the next timer is due by the clock, at most `idle`."""
        try:
            due = await self.scheduler.next_due()
        except RedisError:
            return self.idle
        if due is None:
            return self.idle
        return max(0.0, min(self.idle, (due - self.clock.now()).total_seconds()))

    async def fast_forward(self, clock: MovableClock, until: datetime) -> int:
        """Move `clock` (this worker's) on to `until`, stopping at each timer due on the way so
        each fires at its due time: days of follow-ups in a test or a demo in moments.
        Returns how many timers were handled."""
        handled = 0
        while (due := await self.scheduler.next_due()) is not None and due <= until:
            if due > clock.now():
                clock.advance(due - clock.now())
            handled += await self.tick()
        if until > clock.now():
            clock.advance(until - clock.now())
        return handled


def outbox_jobs(services: Services) -> list[Job]:
    """The Slack delivery of the outbox (alerts, relayed messages), if Slack is configured."""
    handler = outbox_handler(services)
    if handler is None:
        log.info("Slack is not configured: alerts wait in the outbox")
        return []
    outbox = Outbox(services.redis)
    return [lambda: outbox.deliver_once(handler)]


async def run_worker(
    services: Services,
    stop: asyncio.Event,
    *,
    batch: int = BATCH,
    lease: timedelta = LEASE,
    idle: float = IDLE_SECONDS,
) -> None:
    """The worker loop over built services until `stop`, outbox delivery included: what
    `ladder worker` runs, and `ladder run` next to polling."""
    worker = Worker(
        services.ladder,
        services.senders,
        services.clock,
        jobs=outbox_jobs(services),
        batch=batch,
        lease=lease,
        idle=idle,
    )
    await worker.run(stop)


async def serve(settings: Settings, *, batch: int = BATCH, lease: timedelta = LEASE) -> None:
    """`ladder worker`: REDIS_URL, FLOWS_DIR and the Telegram sender, until SIGTERM or SIGINT."""
    try:
        services = await build(settings)
    except RedisError as exc:
        raise StorageError(f"Redis is unavailable: {exc}") from exc
    telegram = TelegramChannel.from_services(services)
    services.senders[TELEGRAM] = telegram.sender
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker started: batch %d, lease %ss", batch, lease.total_seconds())
    try:
        await run_worker(services, stop, batch=batch, lease=lease)
    finally:
        await telegram.sender.aclose()
        await services.redis.aclose()
