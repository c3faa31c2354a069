"""The lead card as Block Kit: who the prospect is, every answer, the ladder of commitments,
why now; then the sales team's status line and the buttons that still make sense.

Everything a prospect typed is escaped (`escape`), so an answer cannot mention @channel or fake
a link, and clipped to Slack's limits without cutting a token in half."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.sales import Action, open_actions
from domain.model import Conversation, Lead

CLAIM = "lb_claim"
TAKE_OVER = "lb_take_over"
HAND_BACK = "lb_hand_back"
NOT_A_FIT = "lb_not_a_fit"
WON = "lb_won"
LOST = "lb_lost"
LOOKS = {  # each sales action's button: action_id, label, style
    Action.CLAIM: (CLAIM, "Claim", "primary"),
    Action.TAKE_OVER: (TAKE_OVER, "Take over", None),
    Action.HAND_BACK: (HAND_BACK, "Hand back", None),
    Action.WON: (WON, "Won", None),
    Action.LOST: (LOST, "Lost", None),
    Action.NOT_A_FIT: (NOT_A_FIT, "Not a fit", "danger"),
}
BUTTONS = {action_id: action for action, (action_id, _, _) in LOOKS.items()}  # press -> action
SLACK_USER = "slack:"  # how a Slack user is named as a salesperson: "slack:U123"
VERDICTS = {"won": "🏆 Won", "lost": "Lost", "disqualified": "🚫 Not a fit"}
STATUS_BLOCK = "lb_status"
ACTIONS_BLOCK = "lb_actions"
REASONS = {
    "completed": "completed the ladder",
    "score": "reached the lead-score threshold",
    "dropped": "went quiet",
    "opted_out": "opted out",
    "started": "started the flow",
}


def escape(text: str) -> str:
    """Slack mrkdwn escaping, so a prospect's answer cannot mention @channel or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What a salesperson typed, as plain text for the prospect."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mention(salesperson: str) -> str:
    """A salesperson as Slack shows them: a Slack user as a mention, anyone else by name."""
    if salesperson.startswith(SLACK_USER):
        return f"<@{salesperson.removeprefix(SLACK_USER)}>"
    return escape(salesperson)


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
    if conv.media_sent:  # the flow's images, videos and documents the prospect was sent
        facts["Sent"] = escape(", ".join(conv.media_sent))
    answers = [f"• {escape(k)}: {escape(v)}" for k, v in conv.answers.items()]
    commitments = [
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
            "*Commitments*\n" + ("\n".join(commitments) or "_none yet_"), 3000)}},
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
    elements = []
    for action in open_actions(lead):
        action_id, label, style = LOOKS[action]
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


def with_lead(
    blocks: Sequence[Mapping[str, Any]], conv: Conversation | None
) -> list[dict[str, Any]]:
    """An alert's blocks with the status and buttons replaced by the current ones (an erased
    prospect's alert, `conv` None, keeps its text and loses its buttons)."""
    if conv is None:
        return [dict(b) for b in blocks if b.get("block_id") != ACTIONS_BLOCK]
    kept = [dict(b) for b in blocks if b.get("block_id") not in (STATUS_BLOCK, ACTIONS_BLOCK)]
    return kept + lead_blocks(conv, buttons=True)
