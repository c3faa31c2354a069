"""The baseline web processes of bench.telegram, each a bot behind POST /telegram/webhook (and
GET /healthz) on 127.0.0.1, talking to the fake Bot API at API:

    python -m bench._telegram_baselines echo PORT API
    python -m bench._telegram_baselines aiogram PORT API REDIS_URL

- echo: a bare python-telegram-bot `Application` (no updater) with an echo MessageHandler and
  a CallbackQueryHandler that answers and echoes with one button: answerCallbackQuery and
  sendMessage per press, no Redis.
- aiogram: aiogram 3 walking the bench flow's ladder (`STEPS` questions of three buttons, then
  "Thanks"), its state in aiogram's FSM with RedisStorage and its webhook served by aiogram's
  aiohttp handler (answering once the update is handled, like ladderbot). /restart asks the
  first question; a press answers the query, takes the buttons off the pressed message, saves
  the answer, moves the state on and asks the next question (or thanks).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.telegram_api import TOKEN

SECRET = "bench-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
STEPS = 5
CHOICES = ("Yes", "No", "Maybe")
WEBHOOK = "/telegram/webhook"


async def serve_echo(port: int, api_url: str) -> None:
    """The bare python-telegram-bot echo bot, served by uvicorn like `ladder serve`."""
    import uvicorn
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import (
        Application,
        CallbackQueryHandler,
        ContextTypes,
        MessageHandler,
        filters,
    )

    builder = Application.builder().token(TOKEN).base_url(f"{api_url}/bot").updater(None)
    application = builder.concurrent_updates(True).build()  # like the ladder: no update queue
    again = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])

    async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat and update.message
        await application.bot.send_message(
            update.effective_chat.id, update.message.text or "", reply_markup=again
        )

    async def pressed(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query and update.effective_chat
        await query.answer()
        await application.bot.send_message(
            update.effective_chat.id, query.data or "", reply_markup=again
        )

    async def webhook(request: Request) -> Response:
        if request.headers.get(SECRET_HEADER) != SECRET:
            return Response(status_code=403)
        await application.process_update(Update.de_json(await request.json(), application.bot))
        return Response(status_code=200)

    async def healthz(_: Request) -> Response:
        return Response(status_code=200)

    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(pressed))
    await application.initialize()
    routes = [Route(WEBHOOK, webhook, methods=["POST"]), Route("/healthz", healthz)]
    app = Starlette(routes=routes)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    try:
        await uvicorn.Server(config).serve()
    finally:
        await application.shutdown()


async def serve_aiogram(port: int, api_url: str, redis_url: str) -> None:
    """The aiogram 3 ladder: FSM + RedisStorage, aiogram's aiohttp webhook handler."""
    from aiogram import Bot, Dispatcher, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.filters import Command
    from aiogram.fsm.context import FSMContext
    from aiogram.fsm.storage.redis import RedisStorage
    from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler
    from aiohttp import web

    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    bot = Bot(TOKEN, session=session)
    storage = RedisStorage.from_url(redis_url)
    router = Router()

    def question(step: int) -> tuple[str, InlineKeyboardMarkup]:
        buttons = [[InlineKeyboardButton(text=c, callback_data=f"q{step}:{c}")] for c in CHOICES]
        return f"Question {step}?", InlineKeyboardMarkup(inline_keyboard=buttons)

    async def ask(chat: int, step: int, state: FSMContext) -> None:
        await state.set_state(f"q{step}")
        text, keyboard = question(step)
        await bot.send_message(chat, text, reply_markup=keyboard)

    @router.message(Command("restart"))
    async def restart(message: Message, state: FSMContext) -> None:
        await state.set_data({})
        await ask(message.chat.id, 0, state)

    @router.callback_query()
    async def pressed(query: CallbackQuery, state: FSMContext, raw_state: str | None) -> None:
        step, _, choice = (query.data or "").partition(":")
        message = query.message
        if step != raw_state or choice not in CHOICES or message is None:
            await query.answer("That question has moved on.")
            return
        await query.answer()
        await bot.edit_message_reply_markup(
            chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
        )
        await state.update_data({step: choice})
        following = int(step[1:]) + 1
        if following < STEPS:
            await ask(message.chat.id, following, state)
        else:
            await state.set_state("done")
            await bot.send_message(message.chat.id, "Thanks")

    dispatcher = Dispatcher(storage=storage)
    dispatcher.include_router(router)
    app = web.Application()
    handler = SimpleRequestHandler(dispatcher, bot, secret_token=SECRET, handle_in_background=False)
    handler.register(app, path=WEBHOOK)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await storage.close()
        await bot.session.close()


def main(argv: list[str]) -> None:
    kind, port, api, *rest = argv
    if kind == "echo":
        asyncio.run(serve_echo(int(port), api))
    elif kind == "aiogram":
        asyncio.run(serve_aiogram(int(port), api, *rest))
    else:
        raise SystemExit(f"unknown baseline {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
