"""Conversation refs: how the product names a prospect without their chat id.

A link step's url may carry `{conversation_ref}`. The engine (which holds no secret) leaves a
marker there; the channel that sends the link signs the ref with LADDER_SECRET, the way it signs
button data. The product hands the ref back in POST /api/events: a ref we did not sign names
nobody. The ref is signed, not encrypted: whoever holds it can read the conversation id in it,
but nobody can make one for another prospect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote

from bot.flow.template import CONVERSATION_REF_MARKER, URL_SAFE

MARKER = quote(CONVERSATION_REF_MARKER, safe=URL_SAFE)  # as it stands in a rendered url
SIGNATURE_CHARS = 22  # 132 bits of HMAC-SHA256, base64url
MAX_REF = 256


def _signature(secret: str, conversation: str) -> str:
    mac = hmac.new(secret.encode(), f"conversation-ref|{conversation}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode()[:SIGNATURE_CHARS]


def sign(secret: str, conversation: str) -> str:
    """The ref of `conversation`: its id (base64url) and a signature, both URL-safe."""
    encoded = base64.urlsafe_b64encode(conversation.encode()).decode().rstrip("=")
    return f"{encoded}.{_signature(secret, conversation)}"


def verify(secret: str, ref: str) -> str | None:
    """The conversation id a ref names, or None if we did not sign it."""
    encoded, _, signature = ref.partition(".")
    if not encoded or len(ref) > MAX_REF:
        return None
    try:
        conversation = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    expected = _signature(secret, conversation)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return conversation


def fill(url: str, secret: str, conversation: str) -> str:
    """`url` with the engine's marker replaced by the conversation's signed ref."""
    if MARKER not in url:
        return url
    return url.replace(MARKER, sign(secret, conversation))
