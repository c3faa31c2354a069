"""Configuration from the environment (12-factor); read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    flows_dir: Path
    default_flow: str | None
    telegram_token: str | None
    telegram_api_url: str
    telegram_webhook_secret: str | None
    public_url: str | None
    secret: str  # signs button callback data and other tokens
    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_api_url: str
    slack_webhook_url: str | None
    slack_channel: str | None  # default channel for alerts
    dashboard_token: str | None
    port: int
    telegram_chat_rate: float  # messages a second to one chat (Telegram: about 1)
    telegram_bot_rate: float  # messages a second from the bot, all chats (Telegram: about 30)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            redis_url=env("REDIS_URL") or None,
            flows_dir=Path(env("FLOWS_DIR", "flows")),
            default_flow=env("DEFAULT_FLOW") or None,
            telegram_token=env("TELEGRAM_TOKEN") or None,
            telegram_api_url=env("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
            telegram_webhook_secret=env("TELEGRAM_WEBHOOK_SECRET") or None,
            public_url=(env("PUBLIC_URL") or "").rstrip("/") or None,
            secret=env("LADDER_SECRET", "dev-secret-change-me"),
            slack_bot_token=env("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env("SLACK_SIGNING_SECRET") or None,
            slack_api_url=env("SLACK_API_URL", "https://slack.com/api/"),
            slack_webhook_url=env("SLACK_WEBHOOK_URL") or None,
            slack_channel=env("SLACK_CHANNEL") or None,
            dashboard_token=env("DASHBOARD_TOKEN") or None,
            port=int(env("PORT", "8080")),
            telegram_chat_rate=float(env("TELEGRAM_CHAT_RATE", "1")),
            telegram_bot_rate=float(env("TELEGRAM_BOT_RATE", "30")),
        )
