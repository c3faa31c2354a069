"""Inline keyboards: a message's buttons as Telegram's, each choice's callback data signed.

Callback data is `step:choice:signature`: 10 base64url characters of HMAC-SHA256 over the
conversation, step and choice, so a press is only taken from the chat it was sent to and only
if we made it. Link buttons lead to their (tracked) url; when links cannot be tracked (no
PUBLIC_URL), a "✓ Done" button (choice OPENED) lets the prospect say they opened it.

A contact step's message gets a reply keyboard instead: its first button shares the prospect's
phone number in one tap (request_contact), the step's choices follow as buttons that type
their label."""

from __future__ import annotations

import base64
import hashlib
import hmac

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.links import button_url
from domain.model import Button, LinkButton, Press, Say
from storage.base import Links

SIGNATURE_CHARS = 10
OPENED = "!opened"  # pseudo-choice "I opened it", for link buttons when links cannot be tracked
OPENED_LABEL = "✓ Done"


def sign(secret: str, conversation: str, step: str, choice: str) -> str:
    """10 base64url characters of HMAC-SHA256 over the conversation, step and choice."""
    mac = hmac.new(secret.encode(), f"{conversation}|{step}|{choice}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode()[:SIGNATURE_CHARS]


def callback_data(secret: str, conversation: str, step: str, choice: str) -> str:
    """`step:choice:signature`; fits Telegram's 64 bytes because the flow validator keeps
    step and choice ids within 52 characters together."""
    return f"{step}:{choice}:{sign(secret, conversation, step, choice)}"


def verify_callback(secret: str, conversation: str, data: str) -> Press | None:
    """The press the callback data stands for, or None if it was not signed by us for this
    conversation (forged, mangled, or from another chat)."""
    step, _, rest = data.partition(":")
    choice, _, signature = rest.rpartition(":")
    if not step or not choice:
        return None
    expected = sign(secret, conversation, step, choice)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return Press(step, choice)


class InlineKeyboards:
    """Builds the inline keyboard of a message for one bot (its secret and public url)."""

    def __init__(self, secret: str, public_url: str | None, links: Links) -> None:
        self.secret = secret
        self.public_url = public_url
        self.links = links

    async def markup(
        self, conversation: str, say: Say
    ) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
        """One button a row; None for a message without buttons."""
        if say.share_contact:
            return contact_keyboard(say)
        rows = [[await self._button(conversation, b)] for b in say.buttons]
        if self.public_url is None:  # untracked links: the prospect tells us they opened it
            rows += [
                [InlineKeyboardButton(OPENED_LABEL, callback_data=self._data(conversation, b))]
                for b in say.buttons
                if isinstance(b, LinkButton)
            ]
        return InlineKeyboardMarkup(rows) if rows else None

    async def _button(self, conversation: str, button: Button | LinkButton) -> InlineKeyboardButton:
        if isinstance(button, Button):
            return InlineKeyboardButton(
                button.label, callback_data=self._data(conversation, button)
            )
        url = await button_url(
            button, conversation, secret=self.secret, public_url=self.public_url, links=self.links
        )
        return InlineKeyboardButton(button.label, url=url)

    def _data(self, conversation: str, button: Button | LinkButton) -> str:
        choice = button.choice if isinstance(button, Button) else OPENED
        return callback_data(self.secret, conversation, button.step, choice)


def contact_keyboard(say: Say) -> ReplyKeyboardMarkup:
    """The one-tap "share my phone number" button, then the choices (pressing one types its
    label, which the step reads as that choice); hidden once used."""
    rows = [[KeyboardButton(say.share_contact, request_contact=True)]]
    rows += [[KeyboardButton(b.label)] for b in say.buttons if isinstance(b, Button)]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
