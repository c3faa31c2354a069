"""Where ladderbot keeps things: conversations, the event log, timers, the outbox, flow versions."""

from storage.base import ConversationStore, FlowCatalog, OutboxItem, StepWrite
from storage.connect import connect

__all__ = ["ConversationStore", "FlowCatalog", "OutboxItem", "StepWrite", "connect"]
