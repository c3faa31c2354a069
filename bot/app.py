"""Wiring: Redis, published flows, the Ladder service and the channel senders, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from bot.channels import Sender
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.flow.loader import flow_paths
from bot.registry import FlowRegistry
from bot.service import Ladder
from storage.connect import connect
from storage.redis import RedisFlowCatalog


@dataclass
class Services:
    """Everything a process (web, worker, chat) shares; `senders` is keyed by channel name."""

    settings: Settings
    redis: Redis
    flows: FlowRegistry
    ladder: Ladder
    clock: Clock
    senders: dict[str, Sender] = field(default_factory=dict)


async def build(
    settings: Settings,
    clock: Clock | None = None,
    redis: Redis | None = None,
    paths: list[Path] | None = None,
) -> Services:
    """Connect, validate and publish the flow files (default: FLOWS_DIR; publishing an
    unchanged file is a no-op)."""
    clock = clock or SystemClock()
    redis = redis if redis is not None else connect(settings.redis_url)
    flows = await FlowRegistry.from_files(
        RedisFlowCatalog(redis), paths or flow_paths([settings.flows_dir]), settings.default_flow
    )
    return Services(settings, redis, flows, Ladder(redis, flows, clock, settings.retention), clock)
