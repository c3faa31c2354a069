"""`ladder worker`: send the follow-ups and reminders that are due, and run the outbox delivery.

Any number of workers share one Redis. Each round a worker takes back the claims of workers that
died (their lease ran out), claims a batch of due timers and fires them, `SENDING` at once: each
is fed to the engine as `Due(timer)` through `Conversations` (one atomic step that also puts the
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

import uvicorn
from starlette.applications import Starlette

from bot import metrics
from bot.app import Services, build
from bot.channels import Sender
from bot.channels.slack.mode import log_alerts_nowhere, log_startup
from bot.channels.telegram.channel import TelegramChannel
from bot.config import Settings
from bot.delivery import Deliveries
from bot.service import Conversations
from bot.web import metrics_route
from domain.clock import Clock, MovableClock
from domain.errors import StorageError
from domain.model import Due
from storage.connect import REDIS_ERRORS
from storage.outbox import Handler, Outbox, OutboxPolicy
from storage.scheduler import Claim, RedisScheduler

log = logging.getLogger(__name__)

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
        conversations: Conversations,
        senders: Mapping[str, Sender],
        clock: Clock,
        *,
        slack: Handler | None = None,
        outbox: Outbox | None = None,
        batch: int = BATCH,
        lease: timedelta = LEASE,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.conversations = conversations
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.idle = idle
        self.scheduler = RedisScheduler(conversations.redis)
        self.outbox = outbox or Outbox(
            conversations.redis, policy=OutboxPolicy(lease=lease.total_seconds()), clock=clock
        )
        self.deliveries = Deliveries(conversations, senders, slack)
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
        late = self.clock.now() - datetime.fromisoformat(timer.due)
        metrics.TIMER_LATENESS.observe(max(0.0, late.total_seconds()))
        async with self._sending:  # the step's hold starts only once a send slot is free
            try:
                outcome = await self.conversations.handle(
                    timer.conversation, Due(timer), deliver_now=True
                )
                await self.scheduler.ack(claim)
            except Exception:  # any step failure: logged; the claim's lease brings it back
                log.exception("timer %s failed; it is retried when its lease runs out", timer.id)
                return
            await self.deliveries.now(outcome)

    async def round(self) -> int:
        """Due timers and the outbox; Redis trouble is logged and the round counts as idle."""
        try:
            return await self.handle_due() + await self.deliver()
        except (StorageError, *REDIS_ERRORS) as exc:
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
        except REDIS_ERRORS:
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
        services.conversations,
        services.senders,
        services.clock,
        slack=services.slack,
        batch=batch,
        lease=lease,
        idle=idle,
    )
    await worker.run(stop)


async def serve(settings: Settings, *, batch: int = BATCH, lease: timedelta = LEASE) -> None:
    """`ladder worker`: REDIS_URL, FLOWS_DIR and the Telegram sender, until SIGTERM or SIGINT."""
    try:
        services = await build(settings)
        await log_alerts_nowhere(settings, services.flows)
    except REDIS_ERRORS as exc:
        raise StorageError(f"Redis is unavailable: {exc}") from exc
    telegram = TelegramChannel.from_services(services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker started: batch %d, lease %ss", batch, lease.total_seconds())
    log_startup(settings)
    try:
        await asyncio.gather(
            run_worker(services, stop, batch=batch, lease=lease), serve_metrics(services, stop)
        )
    finally:
        await telegram.sender.aclose()
        await services.redis.aclose()


async def serve_metrics(services: Services, stop: asyncio.Event) -> None:
    """With METRICS_PORT: GET /metrics (bot.web's, behind the same token) until `stop`, so
    this process's deliveries and timers can be scraped."""
    port = services.settings.metrics_port
    if port is None:
        return
    app = Starlette(routes=[metrics_route(services)])
    config = uvicorn.Config(app, host="0.0.0.0", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)

    async def stop_server() -> None:
        await stop.wait()
        server.should_exit = True

    log.info("worker metrics on port %d", port)
    await asyncio.gather(server.serve(), stop_server())
