"""Reading Telegram updates: the two pure converters of the channel.

`read_update` turns a webhook body into python-telegram-bot's Update, `unreadable` names the
first field the ladder reads that has the wrong type, and the rest say who and where: the
conversation of a chat, the dedupe key of an update, the prospect's profile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from telegram import Bot, Chat, Contact, Message, Update, User

from domain.model import ContactShared, Profile

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
PRESSED_PARTS = ("message_id", "date", "chat")  # what read_update parses of a pressed message
_TEXT = (str, type(None))


def conversation_id(chat_id: int | str) -> str:
    return f"{CHANNEL}:{chat_id}"


def update_key(update_id: int) -> str:
    return f"{CHANNEL}:update:{update_id}"


def read_update(data: dict[str, Any], bot: Bot) -> Update:
    """`Update.de_json`, except that of the message a button was pressed on only the id, date
    and chat are parsed, all the channel reads of it: Telegram sends the whole message back,
    keyboard included, and python-telegram-bot's Message is the costliest object to parse."""
    query = data.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        pressed = {
            name: query["message"][name] for name in PRESSED_PARTS if name in query["message"]
        }
        data = {**data, "callback_query": {**query, "message": pressed}}
    return Update.de_json(data, bot)


def unreadable(update: Update) -> str | None:
    """Why an update cannot be read: the first field the ladder uses that is not of the type
    the Bot API documents (python-telegram-bot does not check), named by its path and type,
    never by its content. None when every such field is right."""
    for path, value, kind in _fields(update):
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{path} is {type(value).__name__}"
    return None


def _fields(update: Update) -> Iterator[tuple[str, object, type | tuple[type, ...]]]:
    """The fields the ladder reads, each after the field that holds it has passed."""
    if (message := update.message) is not None:
        yield "message.message_id", message.message_id, int
        yield "message.chat", message.chat, Chat
        yield "message.chat.id", message.chat.id, int
        yield "message.text", message.text, _TEXT
        yield "message.contact", message.contact, (Contact, type(None))
        if (contact := message.contact) is not None:
            yield "message.contact.phone_number", contact.phone_number, str
            yield "message.contact.user_id", contact.user_id, (int, type(None))
    if (query := update.callback_query) is not None:
        yield "callback_query.id", query.id, str
        yield "callback_query.data", query.data, _TEXT
        yield "callback_query.from", query.from_user, User
        if query.message is not None:
            yield "callback_query.message.message_id", query.message.message_id, int
            yield "callback_query.message.chat", query.message.chat, Chat
            yield "callback_query.message.chat.id", query.message.chat.id, int
    if (user := update.effective_user) is not None:
        yield "from.id", user.id, int
        yield "from.first_name", user.first_name, str
        yield "from.last_name", user.last_name, _TEXT
        yield "from.username", user.username, _TEXT
        yield "from.language_code", user.language_code, _TEXT


def shared_contact(message: Message) -> ContactShared | None:
    """A contact card in the message, as the engine sees it: its own only when the card's
    user is the sender (a card forwarded from someone else, or typed in, is not)."""
    contact = message.contact
    if contact is None:
        return None
    sender = message.from_user.id if message.from_user is not None else None
    own = contact.user_id is not None and contact.user_id == sender
    return ContactShared(contact.phone_number, own=own)


def profile_of(user: User | None) -> Profile | None:
    if user is None:
        return None
    return Profile(
        first_name=user.first_name,
        last_name=user.last_name or "",
        username=user.username or "",
        language=user.language_code or "",
    )
