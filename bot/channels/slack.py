"""Slack for the sales team: lead alerts, their buttons (Claim, Take over, Hand back, Won, Lost,
Not a fit: each press becomes a `bot.sales` action), and the take-over relay.

Modes (`slack_mode`): "app" (SLACK_BOT_TOKEN: Web API alerts with buttons, POST /slack/events),
"webhook" (only SLACK_WEBHOOK_URL: alerts without buttons), "none" (alerts wait in the outbox).
- Outgoing: alerts and the prospect's relayed messages come from the outbox; the worker hands
  them to `outbox_handler(services)` (a `SlackDelivery`).
- Incoming: `routes(services)` mounts POST /slack/events (events, button presses and the
  `/ladder` command on one URL) on a slack-bolt AsyncApp, which checks Slack's signature
  (wrong or older than 5 minutes: 401) before any listener runs.
One Slack message per outbox item: every post carries the item's key as message metadata, and
any attempt after the first looks for that key in the channel (or thread) before posting, so a
consumer that died after Slack took the message does not cause a second one. What remains
at-least-once: when the app may not list channels (no channels:read scope) for a channel given
by #name, or the earlier post scrolled out of the latest HISTORY_LOOKBACK messages.
Who claimed or took over a lead lives in the conversation (`Conversation.lead`); Slack keeps
only where its messages are. Redis keys (storage/keys.py), prefix lb:slack: - `lead_key` (per
conversation: the latest alert, and the thread of a take-over), `thread_key` (alert message
-> conversation), `event_key` (Slack event ids already handled), `attempt_key` (outbox items
posted at least once), `channel_key` (channel name -> id).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.analytics import today_funnel
from bot.app import Services
from bot.config import Settings
from bot.errors import LadderError, UnknownFlow
from bot.flow.validate import alerts_nowhere
from bot.model import Conversation, Lead, Say, Status
from bot.registry import FlowRegistry
from bot.sales import Action, Refusal, Result, Sales
from storage import keys
from storage.base import OutboxItem
from storage.outbox import RetryLater, Undeliverable
from storage.redis import RedisConversationStore

log = logging.getLogger("ladderbot.slack")


CLAIM = "lb_claim"
TAKE_OVER = "lb_take_over"
HAND_BACK = "lb_hand_back"
NOT_A_FIT = "lb_not_a_fit"
WON = "lb_won"
LOST = "lb_lost"
BUTTONS = {  # each button's sales action
    CLAIM: Action.CLAIM,
    TAKE_OVER: Action.TAKE_OVER,
    HAND_BACK: Action.HAND_BACK,
    NOT_A_FIT: Action.NOT_A_FIT,
    WON: Action.WON,
    LOST: Action.LOST,
}
SLACK_USER = "slack:"  # how a Slack user is named as a salesperson: "slack:U123"
VERDICTS = {"won": "🏆 Won", "lost": "Lost", "disqualified": "🚫 Not a fit"}
STATUS_BLOCK = "lb_status"
ACTIONS_BLOCK = "lb_actions"

# Slack errors that no retry can fix: the item goes to the outbox's dead letters.
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "msg_too_long",
     "no_text", "invalid_arguments", "too_many_attachments"}
)  # fmt: skip
PERMANENT_WEBHOOK_STATUS = frozenset({400, 403, 404, 410})
GONE_ERRORS = frozenset({"message_not_found", "cant_update_message"})  # a lead card deleted

METADATA_EVENT = "ladder_outbox_item"  # message metadata that names the outbox item
HISTORY_LOOKBACK = 200  # messages searched for an earlier attempt's post
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{5,}$")

ERASED = "This prospect's data was erased (/forget): there is nobody to talk to."
REASONS = {
    "completed": "completed the ladder",
    "score": "reached the lead-score threshold",
    "dropped": "went quiet",
    "opted_out": "opted out",
    "started": "started the flow",
}


class SlackMode(StrEnum):
    APP = "app"
    WEBHOOK = "webhook"
    NONE = "none"


class SlackError(LadderError):
    """Slack answered in a way that may pass (a 5xx from an incoming webhook): retry later."""


def slack_mode(settings: Settings) -> SlackMode:
    """Which Slack integration the settings allow: the app wins over a bare webhook."""
    if settings.slack_bot_token:
        return SlackMode.APP
    if settings.slack_webhook_url:
        return SlackMode.WEBHOOK
    return SlackMode.NONE


def startup_message(settings: Settings) -> str:
    """The one log line saying what Slack will do in this process."""
    mode = slack_mode(settings)
    if mode == SlackMode.APP:
        events = (
            "buttons and thread replies at POST /slack/events"
            if settings.slack_signing_secret
            else "POST /slack/events answers 503: SLACK_SIGNING_SECRET is not set"
        )
        channel = settings.slack_channel or "the flow's alerts.slack_channel"
        return f"Slack mode: app (alerts with buttons to {channel}; {events})"
    if mode == SlackMode.WEBHOOK:
        return "Slack mode: webhook (alerts without buttons via SLACK_WEBHOOK_URL; no take-over)"
    return (
        "Slack mode: none (set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL; "
        "alerts wait in the outbox until then)"
    )


def log_startup(settings: Settings) -> SlackMode:
    """Log the startup message: a warning when something is missing, else info."""
    mode = slack_mode(settings)
    missing = mode == SlackMode.NONE or (
        mode == SlackMode.APP and not settings.slack_signing_secret
    )
    log.log(logging.WARNING if missing else logging.INFO, startup_message(settings))
    return mode


async def log_alerts_nowhere(services: Services) -> None:
    """With the Slack app: a warning per published flow whose alerts have no channel (from
    its alerts.slack_channel or SLACK_CHANNEL), so each would become a dead letter."""
    settings = services.settings
    if slack_mode(settings) != SlackMode.APP:
        return
    for name in await services.flows.catalog.names():
        if warning := alerts_nowhere(
            (await services.flows.latest(name)).flow, settings.slack_channel
        ):
            log.warning(warning)


@dataclass(frozen=True)
class Posted:
    """Where a prospect's alerts are in Slack: the latest alert, and the thread of the alert a
    salesperson took the chat over from."""

    channel: str = ""
    ts: str = ""
    thread_channel: str = ""
    thread_ts: str = ""

    @property
    def thread(self) -> tuple[str, str] | None:
        """The thread relayed messages go to: the take-over's, else the latest alert's."""
        if self.thread_ts:
            return self.thread_channel, self.thread_ts
        return (self.channel, self.ts) if self.ts else None


async def load_posted(redis: Redis, conversation_id: str) -> Posted:
    stored = await redis.hgetall(keys.lead_key(conversation_id))
    return Posted(**{f.name: str(stored.get(f.name, "")) for f in fields(Posted)})


def mention(salesperson: str) -> str:
    """A salesperson as Slack shows them: a Slack user as a mention, anyone else by name."""
    if salesperson.startswith(SLACK_USER):
        return f"<@{salesperson.removeprefix(SLACK_USER)}>"
    return escape(salesperson)


# --- rendering ----------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack mrkdwn escaping, so a prospect's answer cannot mention @channel or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What a salesperson typed, as plain text for the prospect."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, never ending inside a Slack token (`<...>`) or an escaped
    character (`&amp;`): a token cut in half would show as raw markup."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if (opened := cut.rfind("<")) > cut.rfind(">"):
        cut = cut[:opened]
    if (entity := cut.rfind("&")) > cut.rfind(";"):
        cut = cut[:entity]
    return cut + "…"


def describe_reasons(reasons: Sequence[str]) -> str:
    """'completed' -> 'completed the ladder'; a commitment name -> 'said yes: <name>'; several
    (the alerts of one step) joined with 'and'."""
    return " and ".join(REASONS.get(r, f"said yes: {r}") for r in reasons)


def _when(at: str) -> str:
    """An ISO time as a Slack date token, shown in each reader's own time zone."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return escape(at)
    return f"<!date^{int(moment.timestamp())}^{{date_short}} {{time}}|{escape(at)}>"


def alert_text(conv: Conversation, reasons: Sequence[str]) -> str:
    """The notification text, as plain text (escape it for a message's mrkdwn `text`)."""
    return f"Lead: {conv.name} {describe_reasons(reasons)}"


def alert_blocks(
    conv: Conversation, reasons: Sequence[str], flow_title: str, buttons: bool
) -> list[dict[str, Any]]:
    """The alert as Block Kit: who the prospect is, every answer, the ladder of commitments
    with times, score, flow and version, why now; then the sales team's status and buttons."""
    profile = conv.profile
    who = escape(conv.name)
    if profile.username:
        who += f" (@{escape(profile.username)})"
    facts = {
        "Prospect": who,
        "Source": escape(conv.source) or "-",
        "Lead score": str(conv.score),
        "Flow": f"{escape(flow_title)} (`{escape(conv.flow)}` v{conv.version})",
        "Why now": escape(describe_reasons(reasons)),
        "Status": f"{conv.status.value} at `{escape(conv.step or '-')}`",
    }
    answers = [f"• {escape(k)}: {escape(v)}" for k, v in conv.answers.items()]
    ladder = [
        f"✅ *{escape(c.name)}*" + (f" ({escape(c.value)})" if c.value else "")
        + f" at `{escape(c.step)}`, {_when(c.at)}"
        for c in conv.commitments
    ]  # fmt: skip
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": _clip(alert_text(conv, reasons), 150)}},
        {"type": "section",
         "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", 2000)}
                    for k, v in facts.items()]},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(
            "*Answers*\n" + ("\n".join(answers) or "_none yet_"), 3000)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(
            "*Ladder*\n" + ("\n".join(ladder) or "_no commitments yet_"), 3000)}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": f"conversation `{escape(conv.id)}`"}]},
    ]  # fmt: skip
    return blocks + lead_blocks(conv, buttons)


def lead_blocks(conv: Conversation, buttons: bool) -> list[dict[str, Any]]:
    """The team's status line and the buttons that still make sense."""
    lead: Lead = conv.lead
    status = []
    if lead.claimed_by:
        status.append(f"🙋 Claimed by {mention(lead.claimed_by)}")
    if lead.taken_by:
        status.append(f"💬 {mention(lead.taken_by)} is chatting with the prospect (the bot is "
                      "paused)")  # fmt: skip
    if lead.verdict_by and conv.outcome:
        verdict = VERDICTS.get(conv.outcome.value, conv.outcome.value)
        status.append(f"{verdict}, says {mention(lead.verdict_by)}")
    blocks: list[dict[str, Any]] = []
    if status:
        blocks.append({"type": "context", "block_id": STATUS_BLOCK,
                       "elements": [{"type": "mrkdwn", "text": " · ".join(status)}]})  # fmt: skip
    if not buttons:
        return blocks
    chosen: list[tuple[str, str, str | None]] = []
    decided = bool(lead.verdict_by)
    if not lead.claimed_by and not decided:
        chosen.append((CLAIM, "Claim", "primary"))
    if lead.taken_by:
        chosen.append((HAND_BACK, "Hand back", None))
    elif not decided:
        chosen.append((TAKE_OVER, "Take over", None))
    if not decided:
        chosen += [(WON, "Won", None), (LOST, "Lost", None), (NOT_A_FIT, "Not a fit", "danger")]
    elements = []
    for action_id, label, style in chosen:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": label},
            "value": conv.id,
        }
        if style:
            button["style"] = style
        elements.append(button)
    if elements:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements})
    return blocks


def with_lead(blocks: Sequence[Mapping[str, Any]], conv: Conversation) -> list[dict[str, Any]]:
    """An alert's blocks with the status and buttons replaced by the current ones."""
    kept = [dict(b) for b in blocks if b.get("block_id") not in (STATUS_BLOCK, ACTIONS_BLOCK)]
    return kept + lead_blocks(conv, buttons=True)


# --- outgoing: the outbox handler -----------------------------------------------------------------


def _body(item: OutboxItem) -> dict[str, Any]:
    try:
        body = json.loads(item.body)
    except ValueError as exc:
        raise Undeliverable(f"outbox {item.kind} {item.key}: body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Undeliverable(f"outbox {item.kind} {item.key}: body is not a JSON object")
    return body


class SlackDelivery:
    """The outbox handler: posts alerts (kind "alert") and the prospect's messages during a
    take-over (kind "relay") through the Web API, or alerts through an incoming webhook."""

    def __init__(
        self,
        redis: Redis,
        flows: FlowRegistry,
        *,
        client: AsyncWebClient | None = None,
        webhook: AsyncWebhookClient | None = None,
        default_channel: str | None = None,
    ) -> None:
        self.redis = redis
        self.flows = flows
        self.client = client
        self.webhook = webhook
        self.default_channel = default_channel
        self.store = RedisConversationStore(redis)

    async def __call__(self, item: OutboxItem) -> None:
        if item.kind == "alert":
            await self.alert(item)
        elif item.kind == "relay":
            await self.relay(item)
        else:
            raise Undeliverable(f"Slack does not deliver outbox items of kind {item.kind!r}")

    async def alert(self, item: OutboxItem) -> None:
        """The prospect's lead card: the first alert posts it; later ones redraw it in place
        (chat.update) and add a line in its thread saying why."""
        body = _body(item)
        try:
            conv = Conversation.from_json(json.dumps(body["conversation"]))
            reasons = (
                [str(r) for r in body["reasons"]]
                if "reasons" in body
                else [
                    str(body["reason"])  # an item queued before the alerts of a step were one
                ]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Undeliverable(f"alert {item.key}: not a valid alert body: {exc!r}") from exc
        title = await self._title(conv)
        current = await self.store.load(conv.id)  # the sales team may have acted since
        if current is not None:
            conv = conv.with_(lead=current.lead, outcome=current.outcome)
        text = escape(alert_text(conv, reasons))
        if self.client is None:
            await self._webhook(text, alert_blocks(conv, reasons, title, buttons=False))
            return
        channel = body.get("slack_channel") or self.default_channel
        if not channel:
            raise Undeliverable(
                f"alert {item.key}: no Slack channel; set alerts.slack_channel in flow "
                f"{conv.flow!r} or SLACK_CHANNEL"
            )
        blocks = alert_blocks(conv, reasons, title, buttons=True)
        card = await load_posted(self.redis, conv.id)
        if card.ts and await self._update_card(card, text, blocks):
            line = f"🔔 {escape(conv.name)} {escape(describe_reasons(reasons))}"
            await self._post_once(item.key, card.channel, card.ts, text=line)
            return
        where, ts = await self._post_once(
            item.key, channel, None, text=text, blocks=blocks, unfurl_links=False,
            unfurl_media=False,
        )  # fmt: skip
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.lead_key(conv.id), mapping={"channel": where, "ts": ts})
            pipe.expire(keys.lead_key(conv.id), keys.SLACK_RETENTION)
            pipe.set(keys.thread_key(where, ts), conv.id, ex=keys.SLACK_RETENTION)
            await pipe.execute()

    async def _update_card(self, card: Posted, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Redraw the lead card; False when Slack no longer has it (deleted): post a new one."""
        assert self.client is not None
        try:
            await _slack(self.client.chat_update(
                channel=card.channel, ts=card.ts, text=text, blocks=blocks))  # fmt: skip
        except SlackApiError as exc:
            if exc.response.get("error") in GONE_ERRORS:
                log.info("slack: lead card %s/%s is gone; posting a new one", card.channel,
                         card.ts)  # fmt: skip
                return False
            raise
        return True

    async def relay(self, item: OutboxItem) -> None:
        body = _body(item)
        try:
            text, conversation_id = str(body["text"]), str(body["conversation"])
        except KeyError as exc:
            raise Undeliverable(f"relay {item.key}: missing {exc}") from exc
        conv = await self.store.load(conversation_id)
        name = conv.name if conv else conversation_id
        message = f"💬 *{escape(name)}:* {escape(text)}"
        if self.client is None:
            await self._webhook(message, None)
            return
        thread = (await load_posted(self.redis, conversation_id)).thread
        if thread is None:
            raise Undeliverable(f"relay {item.key}: no Slack alert thread for {conversation_id}")
        channel, ts = thread
        await self._post_once(item.key, channel, ts, text=message)

    async def _post_once(
        self, key: str, channel: str, thread_ts: str | None, **message: Any
    ) -> tuple[str, str]:
        """chat.postMessage at most once per outbox item, even when a consumer died after
        Slack took the message but before the outbox recorded it: the message carries the
        item's key as metadata, and any attempt after the first looks for it in the channel
        (or thread) before posting. Returns (channel id, ts)."""
        assert self.client is not None
        if not await self.redis.set(keys.attempt_key(key), "1", nx=True, ex=keys.ATTEMPT_RETENTION):
            found = await self._find_posted(key, channel, thread_ts)
            if found:
                log.info("slack: outbox item %s was posted before (%s); not posting again", key,
                         found)  # fmt: skip
                return found
        posted = await _slack(
            self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **message,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_key": key}},
            )
        )  # fmt: skip
        where = str(posted["channel"])
        if where != channel:
            await self.redis.set(keys.channel_key(channel), where)
        return where, str(posted["ts"])

    async def _find_posted(
        self, key: str, channel: str, thread_ts: str | None
    ) -> tuple[str, str] | None:
        """The message an earlier attempt posted for outbox item `key`, if Slack has it:
        among the thread's replies, or the channel's latest HISTORY_LOOKBACK messages."""
        assert self.client is not None
        channel_id = await self._channel_id(channel)
        if channel_id is None:
            return None
        if thread_ts:
            page = await _lookup(self.client.conversations_replies(
                channel=channel_id, ts=thread_ts, include_all_metadata=True,
                limit=HISTORY_LOOKBACK,
            ))  # fmt: skip
        else:
            page = await _lookup(self.client.conversations_history(
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
        assert self.client is not None
        if CHANNEL_ID.match(channel):
            return channel
        cached = await self.redis.get(keys.channel_key(channel))
        if cached:
            return str(cached)
        cursor = None
        while True:
            page = await _lookup(self.client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True,
                limit=1000, cursor=cursor,
            ))  # fmt: skip
            if page is None:
                return None
            for listed in page.get("channels") or []:
                if channel in (listed.get("id"), f"#{listed.get('name')}", listed.get("name")):
                    await self.redis.set(keys.channel_key(channel), str(listed["id"]))
                    return str(listed["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def _title(self, conv: Conversation) -> str:
        try:
            return (await self.flows.compiled(conv.flow, conv.version)).flow.title
        except UnknownFlow:
            return conv.flow

    async def _webhook(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        assert self.webhook is not None, "SlackDelivery needs a client or a webhook"
        response = await self.webhook.send(
            text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        if response.status_code == 200:
            return
        detail = f"incoming webhook answered {response.status_code}: {response.body}"
        if response.status_code == 429:
            raise RetryLater(detail, _retry_after(response.headers))
        if response.status_code in PERMANENT_WEBHOOK_STATUS:
            raise Undeliverable(detail)
        raise SlackError(detail)


def _retry_after(headers: Mapping[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except ValueError:
                break
    return 1.0


async def _slack(call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """Await a Web API call, turning Slack's answers into the outbox's terms: 429 -> wait as
    Slack asks; a permanent error -> dead letter; anything else is raised for a retry."""
    try:
        return await call
    except SlackApiError as exc:
        if exc.response.status_code == 429:
            raise RetryLater(
                f"Slack rate limit: {exc}", _retry_after(exc.response.headers)
            ) from exc
        if exc.response.get("error") in PERMANENT_ERRORS:
            raise Undeliverable(f"Slack refused: {exc.response.get('error')}") from exc
        raise


async def _lookup(call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse | None:
    """A read made to avoid posting twice. 429: wait as Slack asks; 5xx: retry later; Slack
    refusing it (a missing scope such as channels:read or channels:history): None, and the
    caller posts again rather than lose the message."""
    try:
        return await call
    except SlackApiError as exc:
        status = exc.response.status_code
        if status == 429:
            raise RetryLater(
                f"Slack rate limit: {exc}", _retry_after(exc.response.headers)
            ) from exc
        if status >= 500:
            raise
        log.warning("slack: cannot check for an earlier post (%s); posting again may repeat it",
                    exc.response.get("error"))  # fmt: skip
        return None


def web_client(settings: Settings) -> AsyncWebClient:
    base = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    return AsyncWebClient(token=settings.slack_bot_token, base_url=base)


def outbox_handler(services: Services) -> SlackDelivery | None:
    """The outbox handler for this process's Slack mode; None in mode "none" (then nothing
    consumes the outbox, so alerts wait there until Slack is configured)."""
    settings = services.settings
    mode = slack_mode(settings)
    if mode == SlackMode.NONE:
        return None
    if mode == SlackMode.APP:
        return SlackDelivery(
            services.redis, services.flows, client=web_client(settings),
            default_channel=settings.slack_channel,
        )  # fmt: skip
    assert settings.slack_webhook_url is not None
    return SlackDelivery(
        services.redis, services.flows, webhook=AsyncWebhookClient(settings.slack_webhook_url)
    )


# --- incoming: buttons, thread replies, /ladder -------------------------------------------------


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


class Interactions:
    """The slack-bolt listeners. A button press is one `bot.sales` action; the Ladder decides it
    atomically, so two salespeople pressing at once in different web processes get one winner.
    Here: say what happened in Slack (a thread line, a note only the presser sees) and redraw
    the pressed alert."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.redis = services.redis
        self.store = services.ladder.store
        self.sales = Sales(services.ladder, services.senders)

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
            await self._tell(client, press, refusal_text(action, done))
        if done.conversation is None:
            if action == Action.HAND_BACK:
                await self._refresh_buttons(client, press, None)
            return
        if done.changed and action == Action.TAKE_OVER:
            await self.redis.hset(keys.lead_key(press.conversation), mapping={
                "thread_channel": press.channel, "thread_ts": press.ts})  # fmt: skip
        if done.changed and action in THREAD_LINES:
            line = THREAD_LINES[action](press.user, done.conversation)
            await client.chat_postMessage(channel=press.channel, thread_ts=press.ts, text=line)
        await self._refresh_buttons(client, press, done.conversation)

    async def message(
        self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """A reply in an alert's thread by the salesperson who took over goes to the prospect;
        everything else (other people, the bot, edits) stays in Slack."""
        thread_ts, user, channel = event.get("thread_ts"), event.get("user"), event.get("channel")
        if event.get("subtype") or event.get("bot_id") or not (thread_ts and user and channel):
            return
        if thread_ts == event.get("ts"):
            return
        found = await self.redis.get(keys.thread_key(channel, thread_ts))
        if not found:
            return
        conversation_id = str(found)
        conv = await self.store.load(conversation_id)
        if conv is not None and conv.lead.taken_by != SLACK_USER + user:
            return
        event_id = body.get("event_id")
        if event_id and not await self.redis.set(
            keys.event_key(event_id), "1", nx=True, ex=keys.SLACK_EVENT_RETENTION
        ):
            log.info("slack: event %s was handled before (a retry); skipped", event_id)
            return
        problem = None
        if conv is None:
            problem = "the prospect's data was erased"
        elif conv.status != Status.PAUSED:  # e.g. they opted out (/stop) meanwhile
            problem = f"the conversation is {conv.status.value}, no longer taken over"
        elif (sender := self.services.senders.get(conv.channel)) is None:
            problem = f"this process has no sender for {conv.channel} prospects"
        else:
            try:
                await sender.deliver(conv, [Say(unescape(str(event.get("text") or "")))])
            except Exception as exc:  # the prospect's channel failed: say so where they typed
                log.exception("slack: relay to %s failed", conversation_id)
                problem = f"{type(exc).__name__}: {exc}"
        if problem:
            await client.chat_postMessage(
                channel=channel, thread_ts=thread_ts,
                text=f"⚠️ Not delivered to the prospect: {escape(problem)}",
            )  # fmt: skip

    async def command(self, ack: Any, command: dict[str, Any]) -> None:
        words = str(command.get("text") or "").split()
        if words[:1] != ["stats"]:
            await ack(
                response_type="ephemeral",
                text="Usage: `/ladder stats [flow]`: today's funnel for each flow.",
            )
            return
        summary = await today_funnel(
            self.redis, self.services.clock.now(), words[1] if len(words) > 1 else None
        )
        await ack(response_type="ephemeral", text=summary.text())

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

    async def _refresh_buttons(
        self, client: AsyncWebClient, press: AlertPress, conv: Conversation | None
    ) -> None:
        """Redraw the pressed alert with the lead's current status and buttons (an erased
        prospect's alert keeps its text and loses its buttons)."""
        if conv is None:
            blocks = [dict(b) for b in press.blocks if b.get("block_id") != ACTIONS_BLOCK]
        else:
            blocks = with_lead(press.blocks, conv)
        await client.chat_update(channel=press.channel, ts=press.ts, text=press.text,
                                 blocks=blocks)  # fmt: skip

    async def _tell(self, client: AsyncWebClient, press: AlertPress, text: str) -> None:
        """A message only the presser sees."""
        await client.chat_postEphemeral(channel=press.channel, user=press.user, text=text)


def refusal_text(action: Action, done: Result) -> str:
    """Why a press changed nothing, for the salesperson who pressed."""
    who = mention(done.who)
    conv = done.conversation
    status = done.status.value if done.status else ""
    verdict = conv.outcome.value if conv and conv.outcome else ""
    texts = {
        Refusal.ERASED: ERASED,
        Refusal.CLAIMED: f"Sorry, {who} has already claimed this lead.",
        Refusal.TAKEN: f"Sorry, {who} is already chatting with them.",
        Refusal.NOT_TAKEN: "Nobody has taken over this chat.",
        Refusal.CLOSED: f"Cannot take over: the conversation is {status}.",
        Refusal.DECIDED: f"{who} has already marked this lead {VERDICTS.get(verdict, verdict)}.",
    }
    assert done.refusal is not None
    return texts[done.refusal]


def _took_over(user: str, conv: Conversation) -> str:
    return (
        f"<@{user}> took over the chat with {escape(conv.name)}: the bot is paused. "
        "Your replies in this thread go to the prospect, and theirs come here. Press *Hand "
        "back* to let the bot continue."
    )


def _handed_back(user: str, conv: Conversation) -> str:
    after = (
        "the bot continues where it left off"
        if conv.status in (Status.ACTIVE, Status.COMPLETED)
        else f"the conversation is {conv.status.value}, so the bot stays quiet"
    )
    return f"<@{user}> handed the chat back: {after}."


def _claimed(user: str, conv: Conversation) -> str:
    return f"🙋 <@{user}> claimed the lead."


def _verdict(user: str, conv: Conversation) -> str:
    verdict = VERDICTS.get(conv.outcome.value, conv.outcome.value) if conv.outcome else ""
    return f"{verdict}, says <@{user}>."


THREAD_LINES = {  # what each sales action adds to the lead card's thread
    Action.CLAIM: _claimed,
    Action.TAKE_OVER: _took_over,
    Action.HAND_BACK: _handed_back,
    Action.WON: _verdict,
    Action.LOST: _verdict,
    Action.NOT_A_FIT: _verdict,
}


def build_app(services: Services) -> AsyncApp:
    """The slack-bolt app: verifies signatures, answers url_verification, runs the listeners
    before answering Slack (they are short), ignores the bot's own messages."""
    settings = services.settings
    app = AsyncApp(
        name="ladderbot",
        signing_secret=settings.slack_signing_secret,
        client=web_client(settings),
        process_before_response=True,
    )
    Interactions(services).register(app)
    return app


def routes(services: Services) -> list[BaseRoute]:
    """POST /slack/events in mode "app"; nothing otherwise."""
    settings = services.settings
    if log_startup(settings) != SlackMode.APP:
        return []
    if not settings.slack_signing_secret:

        async def unverifiable(_: Request) -> Response:
            return JSONResponse(
                {"error": "SLACK_SIGNING_SECRET is not set: Slack requests cannot be verified"},
                status_code=503,
            )

        return [Route("/slack/events", unverifiable, methods=["POST"])]
    handler = AsyncSlackRequestHandler(build_app(services))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return [Route("/slack/events", events, methods=["POST"])]
