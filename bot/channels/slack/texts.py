"""What the bot writes in Slack besides the lead card: thread lines after each sales action,
the prospect's relayed messages, and why a press or a reply changed nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.channels.slack.blocks import VERDICTS, describe_reasons, escape, mention
from bot.sales import Action, Refusal, Result
from domain.model import Conversation, Status

ERASED = "This prospect's data was erased (/forget): there is nobody to talk to."


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


def not_delivered(done: Result) -> str | None:
    """What the thread is told when a salesperson's reply does not reach the prospect now;
    None when it did."""
    if done.refusal == Refusal.ERASED:
        problem = "the prospect's data was erased"
    elif done.refusal == Refusal.CLOSED:
        problem = (
            f"the conversation is {done.status.value if done.status else ''}, no longer taken over"
        )
    elif done.waiting and done.conversation is not None:
        return (
            "⏳ Not delivered to the prospect yet: their channel "
            f"({escape(done.conversation.channel)}) cannot be reached from here now; it is "
            "sent as soon as it can be, in order."
        )
    else:
        return None
    return f"⚠️ Not delivered to the prospect: {escape(problem)}"


def relayed(name: str, text: str) -> str:
    """A prospect's message in the take-over's thread."""
    return f"💬 *{escape(name)}:* {escape(text)}"


def alerted_again(conv: Conversation, reasons: Sequence[str]) -> str:
    """The thread line of a later alert, when the lead card is redrawn in place."""
    return f"🔔 {escape(conv.name)} {escape(describe_reasons(reasons))}"


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


THREAD_LINES: dict[Action, Callable[[str, Conversation], str]] = {
    Action.CLAIM: _claimed,
    Action.TAKE_OVER: _took_over,
    Action.HAND_BACK: _handed_back,
    Action.WON: _verdict,
    Action.LOST: _verdict,
    Action.NOT_A_FIT: _verdict,
}
