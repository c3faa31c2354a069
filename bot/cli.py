"""The `ladder` command: chat, validate, graph, run, serve, worker, stats, publish, versions, export."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.app import build
from bot.channels.console import run_chat
from bot.clock import ScaledClock
from bot.config import Settings
from bot.errors import FlowErrors, LadderError
from bot.model import Profile
from bot.worker import Worker


def _chat(args: argparse.Namespace) -> int:
    async def chat() -> None:
        clock = ScaledClock(args.speed)
        services = await build(Settings.from_env(), clock=clock, paths=[Path(args.flow)])
        worker = Worker(services.ladder, services.senders, clock)
        await run_chat(
            services,
            worker,
            clock,
            source=sys.stdin,
            out=sys.stdout,
            conversation_id=f"console:{args.id}",
            profile=Profile(first_name=args.name, username=args.id),
            payload=args.source,
            speed=args.speed,
        )

    asyncio.run(chat())
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
        "--speed", type=float, default=1.0, help="time runs this many times faster (3600: 1h/s)"
    )
    chat.set_defaults(handler=_chat)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except FlowErrors as problems:
        print(problems, file=sys.stderr)
        return 1
    except LadderError as problem:
        print(f"ladder: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
