"""Wiring: Redis, published flows, the `Conversations` service, the channel senders and the
Slack outbox handler, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from bot.analytics import today_funnel
from bot.channels import Sender
from bot.channels.slack.delivery import SlackDelivery, outbox_handler
from bot.channels.slack.listeners import Listeners
from bot.channels.telegram.factory import make_sender
from bot.channels.telegram.updates import CHANNEL as TELEGRAM
from bot.config import Settings
from bot.delivery import Deliveries
from bot.flow.loader import flow_paths
from bot.registry import FlowRegistry
from bot.sales import Sales
from bot.service import Conversations
from bot.webhooks import Webhooks
from domain.clock import Clock, SystemClock
from storage.connect import connect
from storage.redis import RedisFlowCatalog
from storage.slack import RedisSlackRecords, SlackRecords


@dataclass
class Services:
    """Everything a process (web, worker, chat) shares. `senders` is keyed by channel name and
    read at delivery time, so a channel registered after `build` is used by every delivery;
    `slack` is the Slack outbox handler (None: Slack is not configured)."""

    settings: Settings
    redis: Redis
    flows: FlowRegistry
    conversations: Conversations
    clock: Clock
    slack_records: SlackRecords
    slack: SlackDelivery | None = None
    senders: dict[str, Sender] = field(default_factory=dict)

    def deliveries(self) -> Deliveries:
        """The outbox handler of this process: every registered sender, and Slack's."""
        return Deliveries(self.conversations, self.senders, self.slack)

    def slack_listeners(self) -> Listeners:
        """What POST /slack/events runs: the sales team's actions, replies and `/ladder`."""

        async def stats(flow: str | None) -> str:
            return (await today_funnel(self.redis, self.clock.now(), flow)).text()

        return Listeners(Sales(self.conversations, self.senders), self.slack_records, stats)


async def build(
    settings: Settings,
    clock: Clock | None = None,
    redis: Redis | None = None,
    paths: list[Path] | None = None,
) -> Services:
    """Connect, validate and publish the flow files (default: FLOWS_DIR; publishing an
    unchanged file is a no-op), and register the Slack outbox handler of SLACK_* settings."""
    clock = clock or SystemClock()
    redis = redis if redis is not None else connect(settings.redis_url)
    flows = await FlowRegistry.from_files(
        RedisFlowCatalog(redis), paths or flow_paths([settings.flows_dir]), settings.default_flow
    )
    conversations = Conversations(
        redis, flows, clock, settings.retention, Webhooks.configured(settings.webhooks_file)
    )
    records = RedisSlackRecords(redis)
    slack = outbox_handler(settings, flows, conversations.store, records)
    senders: dict[str, Sender] = {}
    if settings.telegram_token:
        senders[TELEGRAM] = make_sender(settings, redis)
    return Services(settings, redis, flows, conversations, clock, records, slack, senders)
