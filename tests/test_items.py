"""Outbox items: each typed item survives its JSON round trip, and a body that holds no item is
refused with a clear reason (the outbox dead-letters it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.items import AlertItem, Item, MessageItem, RelayItem, read
from domain.model import (
    Button,
    Commitment,
    Conversation,
    Lead,
    LinkButton,
    Profile,
    Say,
    SendCalendar,
    SendDocument,
)
from storage.base import Lane, OutboxItem

text = st.text(max_size=40)
buttons = st.one_of(
    st.builds(Button, text, text, text), st.builds(LinkButton, text, text, text)
)  # fmt: skip
messages = st.one_of(
    st.builds(Say, text, st.lists(buttons, max_size=3).map(tuple)),
    st.builds(SendDocument, text, text),
    st.builds(SendCalendar, text, text, st.integers(0, 600), text),
)
conversation_ids = st.from_regex(r"\A(telegram|console):[0-9]{1,6}\Z")
conversations = st.builds(
    Conversation,
    id=conversation_ids,
    flow=text,
    version=st.integers(1, 50),
    step=st.one_of(st.none(), text),
    answers=st.dictionaries(text, text, max_size=4),
    profile=st.builds(Profile, text, text, text),
    commitments=st.lists(st.builds(Commitment, text, text, text, text), max_size=3).map(tuple),
    lead=st.builds(Lead, text, text, text),
)
items = st.one_of(
    st.builds(
        MessageItem, conversation_ids, st.sampled_from(["telegram", "console"]),
        st.lists(messages, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        AlertItem, conversations, st.lists(text, min_size=1, max_size=3).map(tuple),
        st.one_of(st.none(), st.just("#sales")),
    ),
    st.builds(RelayItem, conversation_ids, text),
)  # fmt: skip


@given(items)
def test_every_item_survives_its_round_trip(item: Item) -> None:
    stored = item.outbox("k1")
    assert read(stored) == item
    expected_lane = Lane.PROSPECT if isinstance(item, MessageItem) else Lane.SLACK
    assert (stored.key, stored.lane) == ("k1", expected_lane)


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("alert", "{not json", "body is not JSON"),
        ("relay", "[1]", "body is not a JSON object"),
        ("alert", '{"x": 1}', "not a valid alert body"),
        ("message:telegram", '{"conversation": "telegram:1", "messages": "[{}]"}', "not a valid"),
        ("fax", "{}", "kind 'fax'"),
    ],
)
def test_a_body_that_holds_no_item_is_refused_with_the_reason(
    kind: str, body: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        read(OutboxItem(kind, "bad", body))
