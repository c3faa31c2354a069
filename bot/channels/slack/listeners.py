"""The slack-bolt listeners: a button press is one `bot.sales` action, a reply in the thread
of a taken-over chat is one `Sales.reply`, `/ladder stats` is today's funnel. The lead rules
(who may do what, who was first) are bot.sales'; here Slack is told what happened (a thread
line, a note only the presser sees) and the pressed alert is redrawn."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack import texts
from bot.channels.slack.blocks import BUTTONS, SLACK_USER, unescape, with_lead
from bot.sales import Action, Refusal, Sales
from domain.model import Conversation
from storage.slack import SlackRecords

log = logging.getLogger(__name__)

Stats = Callable[[str | None], Awaitable[str]]  # today's funnel of one flow (None: all), as text
USAGE = "Usage: `/ladder stats [flow]`: today's funnel for each flow."


@dataclass(frozen=True)
class AlertPress:
    """A salesperson's button press on an alert: by whom, on which message, for which prospect."""

    conversation: str
    user: str
    channel: str
    ts: str
    blocks: tuple[Mapping[str, Any], ...]
    text: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AlertPress:
        message = body.get("message") or {}
        return cls(
            conversation=str(body["actions"][0]["value"]),
            user=str(body["user"]["id"]),
            channel=str(body["channel"]["id"]),
            ts=str(message.get("ts") or body["container"]["message_ts"]),
            blocks=tuple(message.get("blocks") or ()),
            text=str(message.get("text") or ""),
        )


@dataclass(frozen=True)
class ThreadReply:
    """A person's message in the thread of an alert; None for anything else (top-level
    messages, the bot's own, edits and other subtypes)."""

    user: str
    channel: str
    thread_ts: str
    text: str
    event_id: str | None

    @classmethod
    def from_event(cls, body: Mapping[str, Any], event: Mapping[str, Any]) -> ThreadReply | None:
        thread_ts, user, channel = event.get("thread_ts"), event.get("user"), event.get("channel")
        if event.get("subtype") or event.get("bot_id") or not (thread_ts and user and channel):
            return None
        if thread_ts == event.get("ts"):
            return None
        event_id = body.get("event_id")
        return cls(
            str(user), str(channel), str(thread_ts), unescape(str(event.get("text") or "")),
            str(event_id) if event_id else None,
        )  # fmt: skip


class Listeners:
    """What POST /slack/events runs once slack-bolt has checked the signature."""

    def __init__(self, sales: Sales, records: SlackRecords, stats: Stats) -> None:
        self.sales = sales
        self.records = records
        self.stats = stats

    def register(self, app: AsyncApp) -> None:
        for action_id in BUTTONS:
            app.action(action_id)(self.press)
        app.event("message")(self.message)
        app.command("/ladder")(self.command)
        app.error(self.failed)

    async def press(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        press = AlertPress.from_body(body)
        action = BUTTONS[str(body["actions"][0]["action_id"])]
        done = await self.sales.act(action, press.conversation, SLACK_USER + press.user)
        if done.refusal is not None:
            await self._tell(client, press, texts.refusal_text(action, done))
        if done.conversation is None:
            if action == Action.HAND_BACK:
                await self._redraw(client, press, None)
            return
        if done.changed and action == Action.TAKE_OVER:
            await self.records.taken_over_in(press.conversation, press.channel, press.ts)
        if done.changed and action in texts.THREAD_LINES:
            line = texts.THREAD_LINES[action](press.user, done.conversation)
            await client.chat_postMessage(channel=press.channel, thread_ts=press.ts, text=line)
        await self._redraw(client, press, done.conversation)

    async def message(
        self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """A reply in an alert's thread goes to `Sales.reply`: the prospect gets it if its
        author took the chat over; everything else (other people, the bot, edits) stays in
        Slack."""
        reply = ThreadReply.from_event(body, event)
        if reply is None:
            return
        conversation = await self.records.conversation_at(reply.channel, reply.thread_ts)
        if conversation is None:
            return
        done = await self.sales.reply(
            conversation, SLACK_USER + reply.user, reply.text,
            update_key=f"slack:event:{reply.event_id}" if reply.event_id else None,
        )  # fmt: skip
        if done.refusal == Refusal.NOT_YOURS:
            return
        if not done.changed and done.refusal is None:
            log.info("slack: event %s was handled before (a retry); skipped", reply.event_id)
        if note := texts.not_delivered(done):
            await client.chat_postMessage(
                channel=reply.channel, thread_ts=reply.thread_ts, text=note
            )

    async def command(self, ack: Any, command: dict[str, Any]) -> None:
        words = str(command.get("text") or "").split()
        if words[:1] != ["stats"]:
            await ack(response_type="ephemeral", text=USAGE)
            return
        await ack(response_type="ephemeral", text=await self.stats(words[1] if words[1:] else None))

    async def failed(self, error: Exception, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A listener failed (Redis unreachable, a flow version gone): log it and tell whoever
        pressed the button, since Slack itself shows them nothing."""
        log.error("slack: handling %s failed", body.get("type"), exc_info=error)
        if body.get("type") != "block_actions":
            return
        press = AlertPress.from_body(body)
        try:
            await self._tell(
                client, press, f"⚠️ That did not work ({type(error).__name__}: {error}). Try again."
            )
        except SlackApiError:
            log.exception("slack: could not tell %s about the failure", press.user)

    async def _redraw(
        self, client: AsyncWebClient, press: AlertPress, conv: Conversation | None
    ) -> None:
        """Redraw the pressed alert with the lead's current status and buttons."""
        await client.chat_update(channel=press.channel, ts=press.ts, text=press.text,
                                 blocks=with_lead(press.blocks, conv))  # fmt: skip

    async def _tell(self, client: AsyncWebClient, press: AlertPress, text: str) -> None:
        """A message only the presser sees."""
        await client.chat_postEphemeral(channel=press.channel, user=press.user, text=text)
