"""Flood limits shared by every process through Redis.

Telegram allows about one message a second per chat and about thirty a second per bot, counted
across all our web and worker processes. Each limit is a GCRA (generic cell rate algorithm)
bucket: one key holding the "theoretical arrival time" of the next message, checked and moved
by one Lua script on Redis's own clock, so processes on different machines agree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from storage import keys

# KEYS: one bucket key per limit.  ARGV: per key, (interval µs, tolerance µs).
# Returns 0 when a message may go now (every bucket moved on), else µs to wait (nothing moved).
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  local early = tat - now - tonumber(ARGV[2 * i])
  if early > wait then wait = early end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  local tat = tats[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[i], tat, 'PX', math.ceil((tat - now) / 1000) + 1)
end
return 0
"""


@dataclass(frozen=True)
class Rate:
    """`per_second` messages on average, with up to `burst` of them back to back."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_second > 0 and burst >= 1, not {self}")

    @property
    def interval_us(self) -> int:
        return round(1_000_000 / self.per_second)

    @property
    def tolerance_us(self) -> int:
        return self.interval_us * (self.burst - 1)


class FloodLimiter:
    """Per-chat and per-bot send limits for one bot (`bot` names it, e.g. its numeric id)."""

    def __init__(self, redis: Redis, bot: str, *, per_chat: Rate, per_bot: Rate) -> None:
        self.redis = redis
        self.bot = bot
        self.per_chat = per_chat
        self.per_bot = per_bot
        self._take = redis.register_script(TAKE)

    def _keys(self, chat: str) -> list[str]:
        return [keys.flood(self.bot, chat), keys.flood(self.bot, None)]

    async def try_take(self, chat: str) -> float:
        """Take a slot for one message to `chat`: 0.0 if taken, else seconds to wait first."""
        args = [
            self.per_chat.interval_us,
            self.per_chat.tolerance_us,
            self.per_bot.interval_us,
            self.per_bot.tolerance_us,
        ]
        wait_us = int(await self._take(keys=self._keys(chat), args=args))
        return wait_us / 1_000_000

    async def acquire(self, chat: str) -> float:
        """Wait until a message to `chat` is allowed, then take the slot; returns seconds waited."""
        waited = 0.0
        while (wait := await self.try_take(chat)) > 0:
            await asyncio.sleep(wait)
            waited += wait
        return waited
