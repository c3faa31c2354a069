"""A step's media through the real python-telegram-bot client to the fake Bot API: sendPhoto,
sendVideo and sendDocument bodies, the multipart upload, the file_id sent the second time
(remembered per bot in a real Redis), a changed or refused file uploaded again."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.channels.telegram.sender import TelegramSender
from domain.model import SendMedia
from storage import keys
from tests.channels.telegram.test_sender import CONV, new_sender
from tests.fakes.telegram_api import FakeTelegram

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 50
BOT = "123456"  # new_sender's bot id


@pytest.fixture
async def sender(
    telegram_api: FakeTelegram, redis: Redis, tmp_path: Path
) -> AsyncIterator[TelegramSender]:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "intro.png").write_bytes(PNG)
    (tmp_path / "media" / "tour.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" * 20)
    (tmp_path / "media" / "pricing.pdf").write_bytes(b"%PDF-1.4 pricing")
    sender = new_sender(telegram_api, redis, tmp_path)
    yield sender
    await sender.aclose()


SENT_AS = [  # a step's media kind, the Bot API method, its file field, a file in the folder
    ("image", "sendPhoto", "photo", "media/intro.png"),
    ("video", "sendVideo", "video", "media/tour.mp4"),
    ("document", "sendDocument", "document", "media/pricing.pdf"),
]


@pytest.mark.parametrize("case", SENT_AS)
async def test_a_file_is_uploaded_once_then_sent_by_its_file_id(
    telegram_api: FakeTelegram,
    sender: TelegramSender,
    redis: Redis,
    tmp_path: Path,
    case: tuple[str, str, str, str],
) -> None:
    kind, method, field, path = case
    media = SendMedia(kind, path, "Have a look, Ada")
    await sender.deliver(CONV, [media])
    await sender.deliver(CONV, [media])
    upload, again = telegram_api.calls(method)
    data = (tmp_path / path).read_bytes()
    assert upload.files[field] == (Path(path).name, data)  # multipart, the file's own bytes
    assert upload.params["chat_id"] == "42" and upload.params["caption"] == "Have a look, Ada"
    stored = await redis.get(keys.media_file(BOT, hashlib.sha256(data).hexdigest()))
    file_id = stored.decode() if isinstance(stored, bytes) else stored
    assert file_id  # remembered after the upload
    assert again.files == {}  # nothing uploaded the second time
    assert again.params[field] == file_id
    assert again.params["caption"] == "Have a look, Ada"
    assert [m.media for m in telegram_api.messages(42)] == [field, field]


async def test_a_url_is_passed_on_as_it_is(
    telegram_api: FakeTelegram, sender: TelegramSender
) -> None:
    await sender.deliver(CONV, [SendMedia("video", "https://cdn.example.com/tour.mp4")])
    (call,) = telegram_api.calls("sendVideo")
    assert call.files == {} and call.params["video"] == "https://cdn.example.com/tour.mp4"
    assert "caption" not in call.params


async def test_a_changed_file_and_a_refused_file_id_are_uploaded_again(
    telegram_api: FakeTelegram, sender: TelegramSender, redis: Redis, tmp_path: Path
) -> None:
    media = SendMedia("image", "media/intro.png")
    await sender.deliver(CONV, [media])
    (tmp_path / "media" / "intro.png").write_bytes(PNG + b"new")  # the marketer replaced it
    await sender.deliver(CONV, [media])
    assert [bool(c.files) for c in telegram_api.calls("sendPhoto")] == [True, True]
    digest = hashlib.sha256(PNG + b"new").hexdigest()
    await redis.set(keys.media_file(BOT, digest), "gone-from-telegram")
    await sender.deliver(CONV, [media])
    *_, refused, uploaded = telegram_api.calls("sendPhoto")
    assert refused.params["photo"] == "gone-from-telegram" and not refused.files
    assert uploaded.files["photo"] == ("intro.png", PNG + b"new")
    remembered = await redis.get(keys.media_file(BOT, digest))
    assert remembered not in (None, b"gone-from-telegram", "gone-from-telegram")
    assert len(telegram_api.messages(42)) == 3  # the refused send is no message


async def test_a_path_out_of_the_flows_folder_is_not_sent(
    telegram_api: FakeTelegram, sender: TelegramSender, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    outside.write_text("not for prospects")
    (tmp_path / "media" / "link.txt").symlink_to(outside)
    await sender.deliver(CONV, [SendMedia("document", f"../{outside.name}")])
    await sender.deliver(CONV, [SendMedia("document", "media/link.txt")])
    await sender.deliver(CONV, [SendMedia("document", "media/missing.pdf")])
    assert telegram_api.calls("sendDocument") == []
