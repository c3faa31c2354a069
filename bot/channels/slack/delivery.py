"""The Slack outbox handler: alerts (the prospect's lead card, posted once and redrawn in
place) and the prospect's messages during a take-over (relayed into its thread), through the
Web API, or alerts through an incoming webhook."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.channels.slack import texts
from bot.channels.slack.api import GONE_ERRORS, call, send_webhook, web_client
from bot.channels.slack.blocks import alert_blocks, alert_text, escape
from bot.channels.slack.mode import SlackMode, slack_mode
from bot.channels.slack.once import PostOnce
from bot.config import Settings
from bot.items import AlertItem, RelayItem, read
from bot.registry import FlowRegistry
from domain.errors import UnknownFlow
from domain.model import Conversation
from storage.base import ConversationStore, OutboxItem
from storage.outbox import Undeliverable
from storage.slack import Posted, SlackRecords

log = logging.getLogger(__name__)


class SlackDelivery:
    """Posts alerts and relayed messages with `client` (the app), or alerts and relayed
    messages as plain text through `webhook`."""

    def __init__(
        self,
        flows: FlowRegistry,
        store: ConversationStore,
        records: SlackRecords,
        *,
        client: AsyncWebClient | None = None,
        webhook: AsyncWebhookClient | None = None,
        default_channel: str | None = None,
    ) -> None:
        assert client is not None or webhook is not None, "a client or a webhook"
        self.flows = flows
        self.store = store
        self.records = records
        self.client = client
        self.webhook = webhook
        self.default_channel = default_channel
        self.post_once = PostOnce(client, records) if client is not None else None

    async def __call__(self, item: OutboxItem) -> None:
        try:
            found = read(item)
        except ValueError as exc:
            raise Undeliverable(str(exc)) from exc
        if isinstance(found, AlertItem):
            await self.alert(item.key, found)
        elif isinstance(found, RelayItem):
            await self.relay(item.key, found)
        else:
            raise Undeliverable(f"Slack does not deliver outbox items of kind {item.kind!r}")

    async def alert(self, key: str, alert: AlertItem) -> None:
        """The prospect's lead card: the first alert posts it; later ones redraw it in place
        (chat.update) and add a line in its thread saying why."""
        conv, reasons = alert.conversation, alert.reasons
        title = await self._title(conv)
        current = await self.store.load(conv.id)  # the sales team may have acted since
        if current is not None:
            conv = conv.with_(lead=current.lead, outcome=current.outcome)
        text = escape(alert_text(conv, reasons))
        if self.post_once is None:
            assert self.webhook is not None
            await send_webhook(self.webhook, text, alert_blocks(conv, reasons, title, False))
            return
        channel = alert.slack_channel or self.default_channel
        if not channel:
            raise Undeliverable(
                f"alert {key}: no Slack channel; set alerts.slack_channel in flow "
                f"{conv.flow!r} or SLACK_CHANNEL"
            )
        blocks = alert_blocks(conv, reasons, title, buttons=True)
        card = await self.records.posted(conv.id)
        if card.ts and await self._update_card(card, text, blocks):
            await self.post_once(
                key, card.channel, card.ts, text=texts.alerted_again(conv, reasons)
            )
            return
        where, ts = await self.post_once(
            key, channel, None, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        await self.records.card_posted(conv.id, where, ts)

    async def _update_card(self, card: Posted, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Redraw the lead card; False when Slack no longer has it (deleted): post a new one."""
        assert self.client is not None
        try:
            await call(self.client.chat_update(
                channel=card.channel, ts=card.ts, text=text, blocks=blocks))  # fmt: skip
        except SlackApiError as exc:
            if exc.response.get("error") in GONE_ERRORS:
                log.info("slack: lead card %s/%s is gone; posting a new one", card.channel,
                         card.ts)  # fmt: skip
                return False
            raise
        return True

    async def relay(self, key: str, relay: RelayItem) -> None:
        """What the prospect wrote, in the take-over's thread (the webhook: in the channel)."""
        conv = await self.store.load(relay.conversation)
        message = texts.relayed(conv.name if conv else relay.conversation, relay.text)
        if self.post_once is None:
            assert self.webhook is not None
            await send_webhook(self.webhook, message)
            return
        thread = (await self.records.posted(relay.conversation)).thread
        if thread is None:
            raise Undeliverable(f"relay {key}: no Slack alert thread for {relay.conversation}")
        channel, ts = thread
        await self.post_once(key, channel, ts, text=message)

    async def _title(self, conv: Conversation) -> str:
        try:
            return (await self.flows.compiled(conv.flow, conv.version)).flow.title
        except UnknownFlow:
            return conv.flow


def outbox_handler(
    settings: Settings, flows: FlowRegistry, store: ConversationStore, records: SlackRecords
) -> SlackDelivery | None:
    """The outbox handler for this process's Slack mode; None in mode "none" (then nothing
    consumes the Slack items, so alerts wait in the outbox until Slack is configured)."""
    mode = slack_mode(settings)
    if mode == SlackMode.APP:
        return SlackDelivery(
            flows, store, records, client=web_client(settings),
            default_channel=settings.slack_channel,
        )  # fmt: skip
    if mode == SlackMode.WEBHOOK:
        assert settings.slack_webhook_url is not None
        webhook = AsyncWebhookClient(settings.slack_webhook_url)
        return SlackDelivery(flows, store, records, webhook=webhook)
    return None
