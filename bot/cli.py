"""The `ladder` command: chat, validate, graph, run, serve, worker, stats, leads, publish,
versions, export, events, outbox."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO, TypeVar

import uvicorn
from redis.asyncio import Redis
from starlette.types import ASGIApp
from telegram.error import TelegramError

from bot import analytics, leads, logs, privacy, publish, webhooks
from bot.app import Services, build
from bot.channels.console import run_chat
from bot.channels.slack.mode import log_alerts_nowhere
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.polling import poll
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.updates import CHANNEL as TELEGRAM
from bot.channels.telegram.webhook import set_webhook, webhook_secret
from bot.config import Settings
from bot.flow.graph import render_graph
from bot.flow.loader import load_flow, validate_paths
from bot.registry import FlowRegistry
from bot.web import create_app
from bot.worker import Worker, run_worker, serve_metrics
from bot.worker import serve as serve_worker
from domain.clock import ScaledClock, SystemClock
from domain.errors import FlowErrors, LadderError, StorageError
from domain.model import Outcome, Profile
from storage.connect import REDIS_ERRORS, connect
from storage.events import RedisEventLog
from storage.migrate import migrate
from storage.outbox import Outbox
from storage.redis import RedisFlowCatalog

T = TypeVar("T")
log = logging.getLogger(__name__)


def _chat(args: argparse.Namespace) -> int:
    async def chat() -> None:
        clock = ScaledClock(args.speed)
        services = await build(Settings.from_env(), clock=clock, paths=[Path(args.flow)])
        worker = Worker(services.conversations, services.senders, clock)
        await run_chat(
            services,
            worker,
            clock,
            source=sys.stdin,
            out=sys.stdout,
            conversation_id=f"console:{args.id}",
            profile=Profile(first_name=args.name, username=args.id, language=args.lang),
            payload=args.source,
            speed=args.speed,
        )

    asyncio.run(chat())
    return 0


def _on_redis(work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run `work` against REDIS_URL's Redis; an unreachable Redis becomes a StorageError."""

    async def run() -> T:
        redis = connect(Settings.from_env().redis_url)
        try:
            return await work(redis)
        except REDIS_ERRORS as exc:
            raise StorageError(f"Redis is unavailable: {exc}") from exc
        finally:
            await redis.aclose()

    return asyncio.run(run())


def _since(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (e.g. 2026-12-01)") from None


def _stats(args: argparse.Namespace) -> int:
    stats = _on_redis(
        lambda redis: analytics.flow_stats(
            redis,
            FlowRegistry(RedisFlowCatalog(redis), args.flow),
            args.flow,
            version=args.version,
            source=args.source,
            language=args.language,
            since=args.since,
        )
    )
    sys.stdout.write(analytics.to_csv(stats.funnel) if args.csv else stats.report() + "\n")
    if args.chart:
        analytics.chart(stats.funnel, Path(args.chart))
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0


def _leads(args: argparse.Namespace) -> int:
    claimed = {"yes": True, "no": False, None: None}[args.claimed]
    chosen = leads.Filter(args.flow, args.outcome, claimed)
    rows = _on_redis(lambda redis: leads.lead_rows(redis, chosen))
    if args.csv:
        sys.stdout.write(leads.to_csv(rows))
    else:
        print("\n".join(analytics.align([leads.HEADINGS, *map(leads.cells, rows)], left=8)))
    return 0


def _publish(args: argparse.Namespace) -> int:
    flow = load_flow(args.file)
    retention = Settings.from_env().retention
    report = _on_redis(lambda redis: publish.publish(redis, flow, SystemClock().now(), retention))
    print(report.text())
    return 0


def _versions(args: argparse.Namespace) -> int:
    rows = _on_redis(lambda redis: publish.versions(redis, args.flow))
    print(publish.versions_table(rows))
    return 0


def _export(args: argparse.Namespace) -> int:
    data = _on_redis(lambda redis: privacy.export(redis, args.prospect))
    print(data.to_json())
    return 0


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _events_index(args: argparse.Namespace) -> int:
    """Once after upgrading from a version without event indexes (safe to run again)."""
    retention = Settings.from_env().retention
    added = _on_redis(lambda redis: RedisEventLog(redis).index(retention.events))
    print(f"{added} event(s) indexed")
    return 0


def _output(path: str | None) -> AbstractContextManager[TextIO]:
    """The file at `path` (written anew), else stdout (left open)."""
    return open(path, "w", encoding="utf-8") if path else nullcontext(sys.stdout)


def _events_export(args: argparse.Namespace) -> int:
    """The event log's entries written since a date, one JSON object a line, so that history
    older than the log's window (LADDER_EVENT_DAYS) can be kept outside Redis."""
    since, until = _utc(args.since), _utc(args.until) if args.until else None

    async def work(redis: Redis) -> int:
        written = 0
        with _output(args.output) as out:
            async for entry_id, event in RedisEventLog(redis).written_between(since, until):
                out.write(json.dumps({"id": entry_id, **asdict(event)}, ensure_ascii=False))
                out.write("\n")
                written += 1
        return written

    written = _on_redis(work)
    print(f"{written} event(s) exported", file=sys.stderr)
    return 0


def _outbox(args: argparse.Namespace) -> int:
    """Dead letters: list them, put them back in the outbox (retry) or delete them (drop)."""

    async def work(redis: Redis) -> str:
        outbox = Outbox(redis)
        dead = await outbox.dead_letters(count=10_000)
        if args.action == "list":
            lines = [f"{d.id}  {d.item.kind}  {d.item.key}  {d.attempts} attempt(s): {d.error}"
                     for d in dead]  # fmt: skip
            return "\n".join([*lines, f"{len(dead)} dead letter(s)"])
        ids = [d.id for d in dead] if args.all else args.ids
        if not ids:
            raise LadderError(f"outbox {args.action}: name dead letter ids, or --all")
        if args.action == "retry":
            return f"{await outbox.replay(ids)} dead letter(s) back in the outbox"
        return f"{await outbox.drop(ids)} dead letter(s) dropped"

    print(_on_redis(work))
    return 0


def _migrate_keys(args: argparse.Namespace) -> int:
    """Move a deployment from before the keyspace was sharded to today's keys: in place on
    REDIS_URL, or from the old Redis `--from` names into REDIS_URL (e.g. a Redis Cluster)."""

    async def work(redis: Redis) -> str:
        if args.source is None:
            moved = await migrate(redis, redis, in_place=True)
        else:
            source = connect(args.source)
            try:
                moved = await migrate(source, redis, in_place=False)
            finally:
                await source.aclose()
        lines = [f"{name}: {count}" for name, count in sorted(moved.items())]
        return "\n".join(["moved to the sharded keys", *lines])

    print(_on_redis(work))
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _validate(args: argparse.Namespace) -> int:
    """The flow files, then the webhooks file (--webhooks, else WEBHOOKS_FILE, if set)."""
    settings = Settings.from_env()
    paths = [Path(p) for p in args.paths]
    hooks = Path(args.webhooks) if args.webhooks else settings.webhooks_file
    if not paths and hooks is None:
        raise LadderError("validate: name flow files or folders, or --webhooks FILE")
    code, report = validate_paths(paths, settings.slack_channel) if paths else (0, "")
    if hooks is not None:
        try:
            said = f"{hooks}: {len(webhooks.parse(hooks))} webhook endpoint(s), ok"
        except FlowErrors as problems:
            said, code = str(problems), 1
        report = f"{report}\n{said}" if report else said
    print(report)
    return code


def _graph(args: argparse.Namespace) -> int:
    flow = load_flow(args.flow)
    rendered = render_graph(flow, Path(args.out or f"{flow.name}.mmd"))
    for written in rendered.files:
        print(f"wrote {written}")
    if rendered.note:
        print(rendered.note, file=sys.stderr)
    return 0


def _worker(args: argparse.Namespace) -> int:
    lease = timedelta(seconds=args.lease)
    asyncio.run(serve_worker(Settings.from_env(), batch=int(args.batch), lease=lease))
    return 0


async def _services(settings: Settings) -> Services:
    try:
        services = await build(settings)
        await log_alerts_nowhere(settings, services.flows)
    except REDIS_ERRORS as exc:
        raise StorageError(f"Redis is unavailable: {exc}") from exc
    return services


def _web_server(app: ASGIApp, settings: Settings, host: str) -> uvicorn.Server:
    """uvicorn logging through ours (bot.logs: levels, secrets hidden), not its own."""
    config = uvicorn.Config(app, host=host, port=settings.port, lifespan="off", log_config=None)
    return uvicorn.Server(config)


def _run(args: argparse.Namespace) -> int:
    """Long polling and the worker in one process; with PUBLIC_URL also the web app, so tracked
    links (/r/<token>) work. Stops on SIGTERM or SIGINT."""

    async def run() -> None:
        services = await _services(Settings.from_env())
        channel = TelegramChannel.from_services(services)
        await channel.sender.check()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        work = [poll(channel, stop), run_worker(services, stop), serve_metrics(services, stop)]
        if services.settings.public_url:
            server = _web_server(create_app(services), services.settings, args.host)

            async def stop_server() -> None:
                await stop.wait()
                server.should_exit = True

            work += [server.serve(), stop_server()]
        try:
            await asyncio.gather(*work)
        finally:
            await channel.sender.aclose()
            await services.redis.aclose()

    asyncio.run(run())
    return 0


def _serve(args: argparse.Namespace) -> int:
    """The web process: the ASGI app on PORT; with PUBLIC_URL and TELEGRAM_TOKEN, Telegram's
    webhook is pointed at it first."""

    async def serve() -> None:
        services = await _services(Settings.from_env())
        app = create_app(services)
        sender = services.senders.get(TELEGRAM)
        try:
            if isinstance(sender, TelegramSender):
                await sender.check()
            if isinstance(sender, TelegramSender) and services.settings.public_url:
                try:
                    print(f"Telegram webhook: {await set_webhook(sender, services.settings)}")
                except TelegramError as exc:  # Telegram keeps any earlier webhook; serve anyway
                    log.error("could not set the Telegram webhook: %s", exc)
            await _web_server(app, services.settings, args.host).serve()
        finally:
            if isinstance(sender, TelegramSender):
                await sender.aclose()
            await services.redis.aclose()

    asyncio.run(serve())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladder", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="be the prospect: chat with a flow in the terminal")
    chat.add_argument("flow", help="the flow file, e.g. flows/webinar-ladder.yaml")
    chat.add_argument("--name", default="Alex", help="the prospect's first name")
    chat.add_argument("--id", default="you", help="the prospect's id (console:<id>)")
    chat.add_argument("--source", default="", help="the /start payload, e.g. linkedin")
    chat.add_argument(
        "--lang", default="", help="the prospect's language, e.g. de (default: the flow's)"
    )
    chat.add_argument(
        "--speed", type=float, default=1.0, help="time runs this many times faster (3600: 1h/s)"
    )
    chat.set_defaults(handler=_chat)

    stats = sub.add_parser("stats", help="the funnel of a flow: where prospects drop off")
    stats.add_argument("flow", help="the flow name, e.g. webinar-ladder")
    stats.add_argument("--version", type=int, help="only this version (default: all)")
    stats.add_argument("--source", help="only prospects from this /start source")
    stats.add_argument("--language", help="only prospects spoken to in this language, e.g. de")
    stats.add_argument("--since", type=_since, help="only events from this date (UTC), ISO 8601")
    stats.add_argument("--csv", action="store_true", help="print the table as CSV")
    stats.add_argument("--chart", metavar="PNG", help="also draw the funnel into this PNG file")
    stats.set_defaults(handler=_stats)

    pub = sub.add_parser("publish", help="validate and store a new version of a flow")
    pub.add_argument("file", help="the flow file; its `migrate:` moves in-flight prospects")
    pub.set_defaults(handler=_publish)

    lead_list = sub.add_parser("leads", help="the leads of a flow: who, score, outcome, claim")
    lead_list.add_argument("flow", help="the flow name, e.g. webinar-ladder")
    lead_list.add_argument(
        "--outcome", choices=[*(o.value for o in Outcome), "none"], help="only this outcome"
    )
    lead_list.add_argument("--claimed", choices=["yes", "no"], help="only (un)claimed leads")
    lead_list.add_argument("--csv", action="store_true", help="print the rows as CSV")
    lead_list.set_defaults(handler=_leads)

    versions = sub.add_parser("versions", help="published versions and their conversations")
    versions.add_argument("flow", help="the flow name")
    versions.set_defaults(handler=_versions)

    export = sub.add_parser("export", help="everything stored about one prospect, as JSON")
    export.add_argument("--prospect", required=True, help="conversation id, e.g. telegram:42")
    export.set_defaults(handler=_export)

    events = sub.add_parser("events", help="the event log: archive it before its window ends")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    events_export = events_sub.add_parser(
        "export", help="events written since a date, as JSON lines (funnel history to keep)"
    )
    events_export.add_argument(
        "--since", type=_since, required=True, help="written at or after (UTC), e.g. 2026-09-01"
    )
    events_export.add_argument("--until", type=_since, help="written before (UTC; default: now)")
    events_export.add_argument("-o", "--output", help="write to this file (default: stdout)")
    events_export.set_defaults(handler=_events_export)
    events_index = events_sub.add_parser(
        "index", help="index events logged before an upgrade, so that /forget erases them too"
    )
    events_index.set_defaults(handler=_events_index)

    outbox = sub.add_parser(
        "outbox", help="undelivered items given up on: list, retry (put back) or drop them"
    )
    outbox.add_argument("action", choices=["list", "retry", "drop"])
    outbox.add_argument("ids", nargs="*", help="dead letter ids (as `list` shows them)")
    outbox.add_argument("--all", action="store_true", help="every dead letter")
    outbox.set_defaults(handler=_outbox)

    keyspace = sub.add_parser(
        "migrate-keys",
        help="move a deployment from before sharding to today's keys (once, processes stopped)",
    )
    keyspace.add_argument(
        "--from", dest="source", metavar="URL", help="the old Redis (default: REDIS_URL, in place)"
    )
    keyspace.set_defaults(handler=_migrate_keys)

    worker = sub.add_parser(
        "worker", help="send due follow-ups and reminders, deliver Slack alerts (until SIGTERM)"
    )
    worker.add_argument("--batch", type=_positive, default=100, help="timers claimed per round")
    worker.add_argument(
        "--lease", type=_positive, default=60.0,
        help="seconds a claim is held; a dead worker's claims go to others after this",
    )  # fmt: skip
    worker.set_defaults(handler=_worker)

    run = sub.add_parser("run", help="Telegram long polling and the worker in one process")
    run.add_argument("--host", default="0.0.0.0", help="with PUBLIC_URL: where links are served")
    run.set_defaults(handler=_run)

    serve = sub.add_parser("serve", help="the web process: Telegram webhook, links, dashboard")
    serve.add_argument("--host", default="0.0.0.0", help="interface to listen on (port: PORT)")
    serve.set_defaults(handler=_serve)

    validate = sub.add_parser(
        "validate", help="check flow files and the webhooks file; every problem at file:line:col"
    )
    validate.add_argument("paths", nargs="*", help="flow files or folders of them")
    validate.add_argument("--webhooks", metavar="FILE", help="the webhooks file (WEBHOOKS_FILE)")
    validate.set_defaults(handler=_validate)

    graph = sub.add_parser("graph", help="draw a flow: Mermaid text, and SVG/PNG with graphviz")
    graph.add_argument("flow", help="the flow file")
    graph.add_argument(
        "-o",
        "--out",
        help="output file (.mmd, .svg, .png, .jpg, .gif or .pdf; default: <flow name>.mmd)",
    )
    graph.set_defaults(handler=_graph)

    return parser


LONG_RUNNING = frozenset({"run", "serve", "worker"})  # log what they do (INFO); need the secret


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        quiet = logging.INFO if args.command in LONG_RUNNING else logging.WARNING
        # the long-running commands deliver webhooks: their secrets and URLs are hidden too
        hooks = webhooks.Webhooks.configured(
            settings.webhooks_file if args.command in LONG_RUNNING else None
        )
        logs.configure(
            "DEBUG" if args.verbose else settings.log_level,
            quiet,
            [*settings.secrets(), webhook_secret(settings), *hooks.hidden()],
            settings.log_format,
        )
        if args.command in LONG_RUNNING:
            settings.require_secret()
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at exit
        return code
    except FlowErrors as problems:
        print(problems, file=sys.stderr)
        return 1
    except LadderError as problem:
        print(f"ladder: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ladder export ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 141  # as a command stopped by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
