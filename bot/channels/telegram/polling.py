"""Long polling (`ladder run`): getUpdates in a loop, each update through the channel.

Chats are processed concurrently, each chat's updates in order; a batch is confirmed (offset)
only once it is fully processed, so Redis being down means a retry (duplicates are no-ops),
never a lost update."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from itertools import groupby

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter

from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.sender import retry_seconds
from bot.channels.telegram.updates import ALLOWED_UPDATES
from domain.errors import StorageError
from storage.connect import REDIS_ERRORS

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


async def poll(channel: TelegramChannel, stop: asyncio.Event, wait_seconds: int = 25) -> None:
    """Fetch updates for `channel` until `stop` is set."""
    bot = channel.sender.bot
    await bot.delete_webhook()  # getUpdates is refused while a webhook is set
    offset: int | None = None
    backoff = 0.5
    while not stop.is_set():
        fetch = asyncio.ensure_future(
            bot.get_updates(offset=offset, timeout=wait_seconds, allowed_updates=ALLOWED_UPDATES)
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():
            fetch.cancel()
            break
        try:
            updates = fetch.result()
            chats = [_process_chat(channel, updates) for updates in _by_chat(updates)]
            done = await asyncio.gather(*chats, return_exceptions=True)
            for failure in (r for r in done if isinstance(r, BaseException)):
                raise failure
        except RetryAfter as exc:
            await _pause(stop, retry_seconds(exc))
            continue
        except Conflict as exc:  # a webhook was set meanwhile, or another process polls
            log.error("polling refused (%s); retrying in %.1fs", exc, backoff)
            await _pause(stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        except (StorageError, *REDIS_ERRORS, NetworkError) as exc:
            log.warning("polling: %s; retrying in %.1fs", exc, backoff)
            await _pause(stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        backoff = 0.5
        if updates:
            offset = updates[-1].update_id + 1


async def _process_chat(channel: TelegramChannel, updates: list[Update]) -> None:
    for update in updates:
        try:
            await channel.process(update)
        except (StorageError, *REDIS_ERRORS):
            raise
        except Exception:  # a bug must not stall everyone's updates: log it and move on
            log.exception("update %s failed and is skipped", update.update_id)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but no longer than until `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _chat_of(update: Update) -> int:
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else 0


def _by_chat(updates: Sequence[Update]) -> list[list[Update]]:
    """Updates grouped by chat, each group in update order."""
    ordered = sorted(updates, key=lambda u: (_chat_of(u), u.update_id))
    return [list(group) for _, group in groupby(ordered, key=_chat_of)]
