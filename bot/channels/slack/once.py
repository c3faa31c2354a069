"""One Slack message per outbox item. Every post carries the item's key as message metadata,
and any attempt after the first looks for that key in the channel (or thread) before posting,
so a consumer that died after Slack took the message does not cause a second one.

What remains at-least-once: when the app may not list channels (no channels:read scope) for a
channel given by #name, or the earlier post scrolled out of the latest HISTORY_LOOKBACK
messages."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack.api import call, lookup
from storage.slack import SlackRecords

log = logging.getLogger(__name__)

METADATA_EVENT = "ladder_outbox_item"  # message metadata that names the outbox item
HISTORY_LOOKBACK = 200  # messages searched for an earlier attempt's post
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{5,}$")


class PostOnce:
    """chat.postMessage at most once per outbox item."""

    def __init__(self, client: AsyncWebClient, records: SlackRecords) -> None:
        self.client = client
        self.records = records

    async def __call__(
        self, key: str, channel: str, thread_ts: str | None, **message: Any
    ) -> tuple[str, str]:
        """Post `message` for outbox item `key` unless an earlier attempt did; returns
        (channel id, ts)."""
        if not await self.records.first_attempt(key):
            found = await self._find_posted(key, channel, thread_ts)
            if found:
                log.info("slack: outbox item %s was posted before (%s); not posting again", key,
                         found)  # fmt: skip
                return found
        posted = await call(
            self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **message,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_key": key}},
            )
        )  # fmt: skip
        where = str(posted["channel"])
        if where != channel:
            await self.records.remember_channel(channel, where)
        return where, str(posted["ts"])

    async def _find_posted(
        self, key: str, channel: str, thread_ts: str | None
    ) -> tuple[str, str] | None:
        """The message an earlier attempt posted for outbox item `key`, if Slack has it:
        among the thread's replies, or the channel's latest HISTORY_LOOKBACK messages."""
        channel_id = await self._channel_id(channel)
        if channel_id is None:
            return None
        if thread_ts:
            page = await lookup(self.client.conversations_replies(
                channel=channel_id, ts=thread_ts, include_all_metadata=True,
                limit=HISTORY_LOOKBACK,
            ))  # fmt: skip
        else:
            page = await lookup(self.client.conversations_history(
                channel=channel_id, include_all_metadata=True, limit=HISTORY_LOOKBACK
            ))  # fmt: skip
        if page is None:
            return None
        for found in page.get("messages") or []:
            metadata = found.get("metadata") or {}
            if (metadata.get("event_payload") or {}).get("outbox_key") == key:
                return channel_id, str(found["ts"])
        return None

    async def _channel_id(self, channel: str) -> str | None:
        """A channel's id (what conversations.history needs) from its id or #name."""
        if CHANNEL_ID.match(channel):
            return channel
        if cached := await self.records.channel_id(channel):
            return cached
        cursor = None
        while True:
            page = await lookup(self.client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True,
                limit=1000, cursor=cursor,
            ))  # fmt: skip
            if page is None:
                return None
            for listed in page.get("channels") or []:
                if channel in (listed.get("id"), f"#{listed.get('name')}", listed.get("name")):
                    await self.records.remember_channel(channel, str(listed["id"]))
                    return str(listed["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
