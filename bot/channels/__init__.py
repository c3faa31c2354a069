"""Channel adapters: translate a platform's updates into engine events and actions into calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.model import Action, Conversation


class Sender(Protocol):
    """Delivers the engine's actions to a prospect on one channel (Telegram, the terminal)."""

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None: ...
