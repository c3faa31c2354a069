"""Signed callback data (bot.channels.telegram.buttons): fits Telegram's 64 bytes, verifies,
and refuses anything tampered with or from another chat."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.channels.telegram.buttons import callback_data, sign, verify_callback
from domain.model import Press

SECRET = "s3cret"
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=26)


@given(step=ids, choice=ids)
def test_signed_callback_data_fits_telegram_and_verifies(step: str, choice: str) -> None:
    data = callback_data(SECRET, "telegram:-1001234567890", step, choice)
    assert len(data.encode()) <= 64
    assert verify_callback(SECRET, "telegram:-1001234567890", data) == Press(step, choice)


def test_signature_is_ten_base64url_characters() -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{10}", sign(SECRET, "telegram:1", "welcome", "yes"))


def test_tampered_callback_data_is_rejected() -> None:
    data = callback_data(SECRET, "telegram:1", "welcome", "yes")
    step, choice, sig = data.split(":")
    assert verify_callback(SECRET, "telegram:1", f"{step}:no:{sig}") is None
    assert verify_callback(SECRET, "telegram:1", f"role:{choice}:{sig}") is None
    assert verify_callback(SECRET, "telegram:1", f"{step}:{choice}:{sig[:-1]}A") is None
    assert verify_callback(SECRET, "telegram:1", f"{step}:{choice}") is None


def test_callback_data_from_another_chat_or_secret_is_rejected() -> None:
    data = callback_data(SECRET, "telegram:1", "welcome", "yes")
    assert verify_callback(SECRET, "telegram:2", data) is None
    assert verify_callback("other secret", "telegram:1", data) is None


def test_unreadable_callback_data_is_rejected() -> None:
    for data in ("", ":", "::", "welcome", "welcome::", ":yes:abc", "a:b:c:d"):
        assert verify_callback(SECRET, "telegram:1", data) is None
