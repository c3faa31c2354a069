"""Send N unexpected answers to one conversation: run by tests as a separate OS process.

python -m tests.hammer REDIS_URL CONVERSATION_ID N
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.registry import FlowRegistry
from bot.service import Conversations
from domain.model import Text
from storage.connect import connect
from storage.redis import RedisFlowCatalog

FLOW = Path(__file__).parent / "data" / "ladder.yaml"


async def hammer(url: str, conversation_id: str, count: int) -> None:
    redis = connect(url)
    flows = await FlowRegistry.from_files(RedisFlowCatalog(redis), [FLOW])
    conversations = Conversations(redis, flows)
    for n in range(count):
        await conversations.handle(conversation_id, Text(f"nonsense {n}"))
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(hammer(sys.argv[1], sys.argv[2], int(sys.argv[3])))
