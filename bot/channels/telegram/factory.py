"""The Telegram side of a process: its Bot (on the aiohttp transport, TELEGRAM_API_URL) and its
sender with the flood limits, keyboards, links and media records it keeps in Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from telegram import Bot

from bot.channels.telegram.sender import CHAT_BURST, TelegramNotConfigured, TelegramSender
from bot.channels.telegram.transport import AiohttpRequest, mask_token_in_logs
from bot.config import Settings
from storage.keyboards import RedisKeyboards
from storage.links import LinkStore
from storage.media import RedisMediaFiles
from storage.ratelimit import FloodLimiter, Rate


def make_bot(settings: Settings) -> Bot:
    """A Bot for TELEGRAM_TOKEN talking to TELEGRAM_API_URL (Telegram, or any Bot API server)."""
    if not settings.telegram_token:
        raise TelegramNotConfigured("TELEGRAM_TOKEN is not set")
    mask_token_in_logs()
    api = settings.telegram_api_url
    transport = AiohttpRequest(connection_pool_size=64, pool_timeout=10.0)  # long polls too
    return Bot(
        settings.telegram_token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=transport,
        get_updates_request=transport,
    )


def make_sender(settings: Settings, redis: Redis) -> TelegramSender:
    """The Telegram sender of a process: its bot, flood limits and records on `redis`."""
    bot = make_bot(settings)
    chat_rate, bot_rate = settings.telegram_chat_rate, settings.telegram_bot_rate
    limiter = FloodLimiter(
        redis,
        bot.token.split(":", 1)[0],
        per_chat=Rate(chat_rate, burst=CHAT_BURST),
        per_bot=Rate(bot_rate, burst=max(1, int(bot_rate))),
    )
    return TelegramSender(
        bot,
        keyboards=RedisKeyboards(redis),
        links=LinkStore(redis),
        secret=settings.secret,
        public_url=settings.public_url,
        documents=settings.flows_dir,
        limiter=limiter,
        media_files=RedisMediaFiles(redis, bot.token.split(":", 1)[0]),
    )
