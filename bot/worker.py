"""`ladder worker`: send the follow-ups and reminders that are due, and run the outbox delivery.

Any number of workers share one Redis. Each round a worker takes back the claims of workers that
died (their lease ran out), claims a batch of due timers and fires them, `SENDING` at once: each
is fed to the engine as `Due(timer)` through the Ladder (one atomic step that also puts the
resulting messages in the outbox), its claim acked, its messages sent at once and recorded as
delivered.
Then it delivers what else the outbox holds (concurrently, each conversation in order): messages
whose first send failed, alerts to Slack. Between rounds it sleeps until the next timer is due,
at most `idle` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from datetime import datetime, timedelta

from redis.exceptions import RedisError

from bot.app import Services, build
from bot.channels import Sender
from bot.channels.slack import log_alerts_nowhere, log_startup, outbox_handler
from bot.channels.telegram import CHANNEL as TELEGRAM
from bot.channels.telegram import TelegramChannel
from bot.clock import Clock, MovableClock
from bot.config import Settings
from bot.delivery import Deliveries
from bot.errors import StorageError
from bot.model import Due
from bot.service import Ladder
from storage.outbox import Handler, Outbox, OutboxPolicy
from storage.scheduler import Claim, RedisScheduler

log = logging.getLogger("ladderbot.worker")

BATCH = 100
SENDING = 8  # timers handled and their messages sent at once; a crash can send those in
# flight twice. A step holds its conversation (keys.hold) only while it has one of these slots,
# so its messages never wait for a slot while the hold runs down.
LEASE = timedelta(seconds=60)
IDLE_SECONDS = 1.0


class Worker:
    """Handles due timers and delivers the outbox; `tick()` is one round, `run()` rounds until
    stopped.

    `senders` is read at delivery time, so a process may add its channels after building this;
    `slack` is the Slack outbox handler when Slack is configured."""

    def __init__(
        self,
        ladder: Ladder,
        senders: Mapping[str, Sender],
        clock: Clock,
        *,
        slack: Handler | None = None,
        outbox: Outbox | None = None,
        batch: int = BATCH,
        lease: timedelta = LEASE,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.ladder = ladder
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.idle = idle
        self.scheduler = RedisScheduler(ladder.redis)
        self.outbox = outbox or Outbox(
            ladder.redis, policy=OutboxPolicy(lease=lease.total_seconds()), clock=clock
        )
        self.deliveries = Deliveries(ladder, senders, slack)
        self._sending = asyncio.Semaphore(SENDING)

    async def tick(self) -> int:
        """One round: the due timers, then the outbox; returns how many timers were claimed."""
        claimed = await self.handle_due()
        await self.deliver()
        return claimed

    async def handle_due(self) -> int:
        """Recover dead workers' claims, then handle one batch of due timers; returns how many
        timers were claimed."""
        now = self.clock.now()
        await self.scheduler.recover(now)
        claims = await self.scheduler.claim(now, self.batch, self.lease)
        await asyncio.gather(*map(self.fire, claims))
        return len(claims)

    async def deliver(self) -> int:
        """Deliver what the outbox holds now; returns how many items went out."""
        return await self.outbox.deliver_once(self.deliveries)

    async def fire(self, claim: Claim) -> None:
        """One due timer: the engine's step (its messages go to the outbox in the same atomic
        write), the ack, then its messages, sent now. A timer whose step failed (Redis down, a
        flow version missing) stays unacked and goes back to the queue when its lease runs out;
        messages that could not be sent now wait in the outbox."""
        timer = claim.timer
        async with self._sending:  # the step's hold starts only once a send slot is free
            try:
                outcome = await self.ladder.handle(timer.conversation, Due(timer), deliver_now=True)
                await self.scheduler.ack(claim)
            except Exception:  # any step failure: logged; the claim's lease brings it back
                log.exception("timer %s failed; it is retried when its lease runs out", timer.id)
                return
            await self.deliveries.now(outcome)

    async def round(self) -> int:
        """Due timers and the outbox; Redis trouble is logged and the round counts as idle."""
        try:
            return await self.handle_due() + await self.deliver()
        except (StorageError, RedisError) as exc:
            log.error("worker round failed, retrying: %s", exc)
            return 0

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
        slack=outbox_handler(services),
        batch=batch,
        lease=lease,
        idle=idle,
    )
    await worker.run(stop)


async def serve(settings: Settings, *, batch: int = BATCH, lease: timedelta = LEASE) -> None:
    """`ladder worker`: REDIS_URL, FLOWS_DIR and the Telegram sender, until SIGTERM or SIGINT."""
    try:
        services = await build(settings)
        await log_alerts_nowhere(services)
    except RedisError as exc:
        raise StorageError(f"Redis is unavailable: {exc}") from exc
    telegram = TelegramChannel.from_services(services)
    services.senders[TELEGRAM] = telegram.sender
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker started: batch %d, lease %ss", batch, lease.total_seconds())
    log_startup(settings)
    try:
        await run_worker(services, stop, batch=batch, lease=lease)
    finally:
        await telegram.sender.aclose()
        await services.redis.aclose()
