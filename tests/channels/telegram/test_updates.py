"""Reading Telegram updates (bot.channels.telegram.updates): the pressed message left unparsed,
the profile, and any value in a field the ladder reads either usable or named."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Bot, Message, Update

from bot.channels.telegram.buttons import verify_callback
from bot.channels.telegram.updates import profile_of, read_update, unreadable
from bot.commands import parse
from domain.model import Help, Profile, Text
from tests.channels.conftest import with_value
from tests.fakes.telegram_api import TOKEN, FakeTelegram, Sent, _message_json

SECRET = "s3cret"


def test_profile_from_the_telegram_user() -> None:
    from telegram import User

    user = User(7, "Ada", False, last_name="Lovelace", username="ada", language_code="en")
    assert profile_of(user) == Profile("Ada", "Lovelace", "ada", "en")
    assert profile_of(User(8, "Bob", False)) == Profile(first_name="Bob")
    assert profile_of(None) is None


def test_a_press_is_read_without_parsing_the_pressed_message() -> None:
    ada = FakeTelegram().prospect(42, "Ada", language_code="en")  # not started: builds updates
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "q0:yes:sig"}]]}
    data = ada.press_data("q0:yes:sig", 7)
    data["callback_query"]["message"] = _message_json(Sent(7, 42, "Question?", keyboard))
    read, whole = read_update(data, Bot(TOKEN)), Update.de_json(data, Bot(TOKEN))
    assert read.callback_query is not None and whole.callback_query is not None
    ours, theirs = read.callback_query.to_dict(), whole.callback_query.to_dict()
    assert ours.pop("message").items() <= theirs.pop("message").items()
    assert ours == theirs  # id, data, the prospect who pressed
    pressed = read.callback_query.message
    assert isinstance(pressed, Message)
    assert (pressed.message_id, pressed.chat.id, pressed.date) == (
        7,
        42,
        whole.callback_query.message.date,
    )
    assert pressed.text is None and pressed.reply_markup is None  # left unparsed
    assert data["callback_query"]["message"]["reply_markup"] == keyboard  # the input is kept


def test_a_message_is_read_whole() -> None:
    data = FakeTelegram().prospect(42, "Ada").text("/start webinar")
    update = read_update(data, Bot(TOKEN))
    assert update.to_dict() == Update.de_json(data, Bot(TOKEN)).to_dict()
    assert update.message is not None and update.message.text == "/start webinar"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
USER = {"id": 42, "is_bot": False, "first_name": "Ada"}
CHAT = {"id": 42, "type": "private"}
GOOD_UPDATES: dict[str, dict[str, Any]] = {
    "message": {
        "update_id": 1,
        "message": {"message_id": 3, "date": 0, "chat": CHAT, "from": USER, "text": "hi"},
    },
    "callback_query": {
        "update_id": 2,
        "callback_query": {
            "id": "q",
            "from": USER,
            "chat_instance": "c",
            "data": "x",
            "message": {"message_id": 3, "date": 0, "chat": CHAT},
        },
    },
}
READ_FIELDS = [
    "message.text",
    "message.chat.id",
    "message.message_id",
    "message.from",
    "message.from.first_name",
    "message.from.username",
    "callback_query.id",
    "callback_query.data",
    "callback_query.from.id",
    "callback_query.message.chat.id",
]


BOT = Bot("1:x")  # de_json needs one; it never sends


@settings(deadline=None)  # a guarantee about values, not speed
@given(path=st.sampled_from(READ_FIELDS), value=json_values)
def test_any_value_in_a_field_the_ladder_reads_is_either_usable_or_named(
    path: str, value: Any
) -> None:
    """Whatever JSON a field holds: python-telegram-bot refuses it, or `unreadable` names the
    field, or the channel's parsing of it cannot fail."""
    data = with_value(GOOD_UPDATES[path.split(".", maxsplit=1)[0]], path, value)
    try:
        update = Update.de_json(data, BOT)
    except (AttributeError, TypeError, ValueError):
        return  # the webhook logs it and answers 200
    reason = unreadable(update)
    if reason is not None:
        named = reason.split(" is ")[0]
        user = path.replace("message.from", "from").replace("callback_query.from", "from")
        assert named in (path, user)
        return
    if update.message is not None:
        assert isinstance(parse(update.message.text), Text | Help)
    else:
        assert update.callback_query is not None
        assert verify_callback(SECRET, "telegram:42", update.callback_query.data or "") is None
