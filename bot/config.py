"""Configuration from the environment (12-factor); read once at start-up."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from domain.errors import ConfigError
from storage.base import Retention
from storage.keys import DAY, EVENTS_RETENTION, FINISHED_RETENTION

MIN_SECRET_BYTES = 32
MAKE_A_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
# The embedded demo (no REDIS_URL) signs with a secret of its own, new in every process: nothing
# it signs outlives the process, and no public default can forge its buttons or webhook.
_DEMO_SECRET = secrets.token_urlsafe(MIN_SECRET_BYTES)


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    flows_dir: Path
    default_flow: str | None
    telegram_token: str | None
    telegram_api_url: str
    telegram_webhook_secret: str | None
    public_url: str | None
    secret: str  # LADDER_SECRET: signs button callback data and other tokens ("" if unset)
    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_api_url: str
    slack_webhook_url: str | None
    slack_channel: str | None  # default channel for alerts
    dashboard_token: str | None
    metrics_token: str | None  # GET /metrics as a bearer token; unset: DASHBOARD_TOKEN
    log_level: str | None  # LOG_LEVEL; unset: INFO for the long-running commands, else WARNING
    log_format: str  # LOG_FORMAT: plain (default) or json, one object a line
    port: int
    telegram_chat_rate: float  # messages a second to one chat (Telegram: about 1)
    telegram_bot_rate: float  # messages a second from the bot, all chats (Telegram: about 30)
    product_event_secrets: dict[str, str]  # PRODUCT_EVENT_SECRETS: source -> signing secret
    retention: Retention  # LADDER_EVENT_DAYS, LADDER_FINISHED_DAYS
    webhooks_file: Path | None = None  # WEBHOOKS_FILE: outgoing webhooks (bot.webhooks)
    metrics_port: int | None = None  # METRICS_PORT: `ladder worker` serves /metrics there

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        redis_url = env("REDIS_URL") or None
        return cls(
            redis_url=redis_url,
            flows_dir=Path(env("FLOWS_DIR", "flows")),
            default_flow=env("DEFAULT_FLOW") or None,
            telegram_token=env("TELEGRAM_TOKEN") or None,
            telegram_api_url=env("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
            telegram_webhook_secret=env("TELEGRAM_WEBHOOK_SECRET") or None,
            public_url=(env("PUBLIC_URL") or "").rstrip("/") or None,
            secret=env("LADDER_SECRET") or ("" if redis_url else _DEMO_SECRET),
            slack_bot_token=env("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env("SLACK_SIGNING_SECRET") or None,
            slack_api_url=env("SLACK_API_URL", "https://slack.com/api/"),
            slack_webhook_url=env("SLACK_WEBHOOK_URL") or None,
            slack_channel=env("SLACK_CHANNEL") or None,
            dashboard_token=env("DASHBOARD_TOKEN") or None,
            metrics_token=env("METRICS_TOKEN") or None,
            log_level=env("LOG_LEVEL") or None,
            log_format=(env("LOG_FORMAT") or "plain").strip().lower(),
            port=int(env("PORT", "8080")),
            telegram_chat_rate=float(env("TELEGRAM_CHAT_RATE", "1")),
            telegram_bot_rate=float(env("TELEGRAM_BOT_RATE", "30")),
            product_event_secrets=product_event_secrets(env("PRODUCT_EVENT_SECRETS") or ""),
            retention=Retention(
                events=days("LADDER_EVENT_DAYS", env("LADDER_EVENT_DAYS"), EVENTS_RETENTION),
                finished=days(
                    "LADDER_FINISHED_DAYS", env("LADDER_FINISHED_DAYS"), FINISHED_RETENTION
                ),
            ),
            webhooks_file=Path(env("WEBHOOKS_FILE", "")) if env("WEBHOOKS_FILE") else None,
            metrics_port=int(env("METRICS_PORT", "")) if env("METRICS_PORT") else None,
        )

    def require_secret(self) -> None:
        """Refuse to serve with a guessable LADDER_SECRET: `ladder serve`, `run` and `worker`
        call this first. (The embedded demo's own random secret passes.)"""
        size = len(self.secret.encode())
        if size >= MIN_SECRET_BYTES:
            return
        problem = f"is only {size} bytes" if size else "is not set"
        raise ConfigError(
            f"LADDER_SECRET {problem}: it signs the buttons and the Telegram webhook secret, "
            f"so it must be at least {MIN_SECRET_BYTES} random bytes, the same in every "
            f"process. Make one with: {MAKE_A_SECRET}"
        )

    @property
    def metrics_bearer(self) -> str | None:
        """The token GET /metrics wants: METRICS_TOKEN, else DASHBOARD_TOKEN."""
        return self.metrics_token or self.dashboard_token

    def secrets(self) -> list[str]:
        """Every secret value set: none of them may appear in a log line."""
        values = (
            self.secret,
            self.telegram_token,
            self.telegram_webhook_secret,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_webhook_url,
            self.dashboard_token,
            self.metrics_token,
            *self.product_event_secrets.values(),
        )
        return [value for value in values if value]


def days(name: str, text: str | None, default: int) -> int:
    """A retention in days (fractions allowed; 0: kept for ever) as seconds; unset: `default`."""
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 100_000:
        raise ConfigError(f"{name} should be a number of days (0: keep for ever), not {text!r}")
    return round(value * DAY)


def product_event_secrets(text: str) -> dict[str, str]:
    """PRODUCT_EVENT_SECRETS, `source=secret` pairs separated by commas: each source signs its
    POST /api/events requests with its own secret. A guessable secret is refused."""
    found: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        source, equals, secret = pair.partition("=")
        source, secret = source.strip(), secret.strip()
        if not equals or not source or not source.isidentifier():
            raise ConfigError(
                "PRODUCT_EVENT_SECRETS should be source=secret pairs separated by commas, "
                f"with sources like billing or webinars; got an entry {source!r}"
            )
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"PRODUCT_EVENT_SECRETS: the secret of {source!r} must be at least "
                f"{MIN_SECRET_BYTES} random bytes. Make one with: {MAKE_A_SECRET}"
            )
        found[source] = secret
    return found
