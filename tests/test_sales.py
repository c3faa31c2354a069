"""The sales team's lead rules, channel-neutral (bot.sales) on a real redis-server: who may
act, who was first, and a salesperson's replies to the prospect through the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from redis.asyncio import Redis

from bot.registry import FlowRegistry
from bot.sales import Action as A
from bot.sales import Refusal, Sales, open_actions
from bot.service import Conversations
from domain.clock import ManualClock
from domain.model import Action, Conversation, Lead, Say, Start, Status, Stop
from storage import keys
from storage.outbox import Outbox, OutboxPolicy
from storage.redis import RedisFlowCatalog
from tests import sharded

FLOW = Path(__file__).parent / "data" / "ladder.yaml"
CONV = "telegram:7"
ANN, BOB = "slack:UANN", "slack:UBOB"


class Prospect:
    """The prospect's channel as a recording Sender; `down` makes every delivery fail."""

    def __init__(self) -> None:
        self.told: list[str] = []
        self.down = False

    async def deliver(self, conversation: Conversation, actions: Sequence[Action]) -> None:
        if self.down:
            raise ConnectionError("the prospect's channel is down")
        self.told += [a.text for a in actions if isinstance(a, Say)]


async def setup(redis: Redis) -> tuple[Conversations, Sales, Prospect]:
    flows = await FlowRegistry.from_files(RedisFlowCatalog(redis), [FLOW])
    conversations = Conversations(redis, flows, ManualClock())
    prospect = Prospect()
    await conversations.handle(CONV, Start(), durable=False)
    return conversations, Sales(conversations, {"telegram": prospect}), prospect


async def test_only_the_salesperson_who_took_over_reaches_the_prospect(redis: Redis) -> None:
    conversations, sales, prospect = await setup(redis)
    early = await sales.reply(CONV, ANN, "Hi, before taking over", update_key="e0")
    assert (early.refusal, early.who, early.changed) == (Refusal.NOT_YOURS, "", False)
    assert (await sales.act(A.TAKE_OVER, CONV, ANN)).changed
    before = await conversations.store.load(CONV)
    other = await sales.reply(CONV, BOB, "I know them!", update_key="e1")
    assert (other.refusal, other.who) == (Refusal.NOT_YOURS, ANN)
    assert await conversations.store.load(CONV) == before  # nothing was written
    done = await sales.reply(CONV, ANN, "Hello, I'm Ann", update_key="e2")
    assert done.changed and not done.waiting and done.refusal is None
    assert prospect.told[-1] == "Hello, I'm Ann"
    assert prospect.told.count("I know them!") == 0


async def test_a_reply_is_applied_once_per_update_key(redis: Redis) -> None:
    _, sales, prospect = await setup(redis)
    await sales.act(A.TAKE_OVER, CONV, ANN)
    first = await sales.reply(CONV, ANN, "Once", update_key="slack:event:Ev1")
    again = await sales.reply(CONV, ANN, "Once", update_key="slack:event:Ev1")
    assert first.changed and not again.changed and again.refusal is None
    assert prospect.told.count("Once") == 1


async def test_a_reply_after_the_take_over_ended_is_refused(redis: Redis) -> None:
    conversations, sales, prospect = await setup(redis)
    await sales.act(A.TAKE_OVER, CONV, ANN)
    await conversations.handle(CONV, Stop(), durable=False)
    done = await sales.reply(CONV, ANN, "Still there?")
    assert (done.refusal, done.status) == (Refusal.CLOSED, Status.STOPPED)
    assert "Still there?" not in prospect.told
    await conversations.forget(CONV)
    assert (await sales.reply(CONV, ANN, "Hello?")).refusal == Refusal.ERASED


async def test_replies_the_channel_could_not_take_wait_in_order_for_the_worker(
    redis: Redis,
) -> None:
    _, sales, prospect = await setup(redis)
    await sales.act(A.TAKE_OVER, CONV, ANN)
    prospect.down = True
    told = list(prospect.told)
    results = [await sales.reply(CONV, ANN, f"Reply {n}") for n in (1, 2, 3)]
    assert all(r.changed and r.waiting for r in results)
    prospect.down = False  # the bot's next question is behind the replies: not sent before them
    assert (await sales.act(A.HAND_BACK, CONV, ANN)).changed
    assert prospect.told == told
    worker = Outbox(redis, "worker", OutboxPolicy(backoff=0.01, max_backoff=0.05))
    while await sharded.total(redis.xlen, keys.outbox):
        await worker.deliver_once(sales.deliveries)
    after = prospect.told[prospect.told.index("Reply 1") :]
    assert after[:3] == ["Reply 1", "Reply 2", "Reply 3"] and len(after) > 3  # then the bot
    assert [prospect.told.count(f"Reply {n}") for n in (1, 2, 3)] == [1, 1, 1]


def test_the_open_actions_follow_the_lead() -> None:
    fresh, claimed = open_actions(Lead()), open_actions(Lead(claimed_by=ANN))
    taken = open_actions(Lead(claimed_by=ANN, taken_by=ANN))
    assert fresh == (A.CLAIM, A.TAKE_OVER, A.WON, A.LOST, A.NOT_A_FIT)
    assert claimed == (A.TAKE_OVER, A.WON, A.LOST, A.NOT_A_FIT)
    assert taken == (A.HAND_BACK, A.WON, A.LOST, A.NOT_A_FIT)
    assert open_actions(Lead(claimed_by=ANN, verdict_by=BOB)) == ()  # decided: nothing left
