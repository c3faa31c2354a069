"""Which flows exist: the YAML files in FLOWS_DIR, their published versions, compiled once each.

A conversation is pinned to the version it started on; published versions are kept, so a new
version never breaks a prospect mid-flow."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

from bot.flow.compile import CompiledFlow, compile_flow
from bot.flow.loader import load_flow, parse_flow
from bot.flow.model import Flow
from domain.errors import UnknownFlow
from storage.base import FlowCatalog

log = logging.getLogger(__name__)

PAYLOAD_SEPARATOR = "__"  # /start <flow>__<source>
_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{0,64}$")


class FlowRegistry:
    """Published flows, compiled on first use and cached per (name, version).

    Which flows and versions exist is read from the catalog (Redis) each time, so a flow that
    `ladder publish` stored is reachable at once from every process; only compiled versions,
    which never change, are kept in memory."""

    def __init__(self, catalog: FlowCatalog, default_name: str) -> None:
        self.catalog = catalog
        self.default_name = default_name
        self._compiled: dict[tuple[str, int], CompiledFlow] = {}

    @classmethod
    async def from_files(
        cls, catalog: FlowCatalog, paths: list[Path], default_name: str | None = None
    ) -> FlowRegistry:
        """Validate and publish each file (a no-op when its text is already the latest version).

        A file whose text was published before (say, an older version than one `ladder publish`
        stored since) publishes nothing: start-up never rolls a flow back.
        The first file's flow is the default for prospects whose /start names none."""
        if not paths:
            raise UnknownFlow("no flow files given (FLOWS_DIR holds no *.yaml)")
        flows = [load_flow(path) for path in paths]
        registry = cls(catalog, default_name or flows[0].name)
        for flow in flows:
            await registry.publish(flow, only_if_new=True)
        return registry

    async def publish(self, flow: Flow, *, only_if_new: bool = False) -> int:
        version = await self.catalog.publish(flow.name, flow.source, only_if_new=only_if_new)
        self._compiled.setdefault(
            (flow.name, version), compile_flow(replace(flow, version=version))
        )
        return version

    async def compiled(self, name: str, version: int) -> CompiledFlow:
        key = (name, version)
        found = self._compiled.get(key)
        if found is None:
            source = await self.catalog.source(name, version)
            # A version may predate outcomes: it was valid when published, so it still loads.
            parsed = parse_flow(source, file=f"{name} v{version}", require_outcomes=False)
            flow = replace(parsed, version=version)
            found = self._compiled[key] = compile_flow(flow)
        return found

    async def latest_version(self, name: str) -> int:
        version = await self.catalog.latest(name)
        if version is None:
            raise UnknownFlow(f"flow {name!r} is not published")
        return version

    async def latest(self, name: str) -> CompiledFlow:
        return await self.compiled(name, await self.latest_version(name))

    async def parse_start_payload(self, payload: str) -> tuple[str | None, str]:
        """`/start` deep-link payload -> (flow name or None, source).

        "<flow>__<source>", "<flow>" (when it names a published flow) or "<source>". A payload
        "<flow>__<source>" whose flow is not published keeps the source and is logged."""
        payload = payload.strip()
        if not _PAYLOAD.match(payload):
            return None, ""
        head, separator, tail = payload.partition(PAYLOAD_SEPARATOR)
        published = bool(head) and await self.catalog.latest(head) is not None
        if not separator:
            return (head, "") if published else (None, payload)
        if head and not published:
            log.warning(
                "deep link %r names flow %r, which is not published: using flow %r",
                payload,
                head,
                self.default_name,
            )
        return (head if published else None), tail
