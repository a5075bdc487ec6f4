"""The real PTB Application, long-polling the fake Bot API over HTTP: the basic commands and the menu."""

from __future__ import annotations

import asyncio

from fake_botapi import FakeBotApi
from telegram import Update
from telegram.ext import CommandHandler
from tg_harness import start_polling, stop_polling

from impasto.bots.telegram.app import CONCURRENT_UPDATES, TgApp, register_commands
from impasto.bots.telegram.handlers import install_basic


async def test_start_and_help_are_answered_over_long_polling(api: FakeBotApi) -> None:
    application = await start_polling(api, install_basic)
    try:
        await api.push(api.message("/start"))
        [reply] = await api.wait_method("sendMessage")
        assert reply.chat_id == 42
        assert reply.params["parse_mode"] == "HTML"
        assert "/imagine" in reply.params["text"]
        mark = len(api.calls)
        await api.push(api.message("/help@impasto_test_bot", chat_id=-1001, group=True))
        [reply] = await api.wait_method("sendMessage", after=mark)
        assert reply.chat_id == -1001
        assert "--ar" in reply.params["text"]
        assert reply.params["reply_parameters"]["message_id"] > 0
    finally:
        await stop_polling(application)
    assert [c.method for c in api.calls[:1]] == ["getMe"]


async def test_command_menu_is_set_in_english_and_chinese(api: FakeBotApi) -> None:
    application = await start_polling(api, install_basic)
    try:
        await register_commands(application)
    finally:
        await stop_polling(application)
    menus = {c.params.get("language_code"): c.params["commands"] for c in api.sent("setMyCommands")}
    assert set(menus) == {None, "zh"}
    assert menus[None][0] == {"command": "imagine", "description": "Paint four images from a prompt"}
    assert menus["zh"][0]["description"] == "根据提示词生成四张图片"


async def test_an_update_is_handled_while_more_than_32_others_are_still_waiting(api: FakeBotApi) -> None:
    """A burst of slow updates (an /imagine waiting on the database) must not hold the next one back: each handler
    holds its concurrent-updates slot until it returns, and with 32 slots the 33rd update waited for one (the load
    test's 10 s before a Telegram user saw an answer)."""
    release = asyncio.Event()
    entered: list[int] = []

    async def slow(update: Update, context: object) -> None:
        entered.append(update.update_id)
        await release.wait()

    def install(application: TgApp) -> None:
        application.add_handler(CommandHandler("slow", slow))
        install_basic(application)

    application = await start_polling(api, install)
    try:
        assert application.update_processor.max_concurrent_updates == CONCURRENT_UPDATES
        for n in range(40):
            await api.push(api.message("/slow", chat_id=1000 + n, user_id=1000 + n))
        await api.push(api.message("/start"))
        [reply] = await api.wait_method("sendMessage", timeout_s=10)
        assert reply.chat_id == 42
        assert len(entered) == 40  # every slow one is being handled, none of them finished
    finally:
        release.set()
        await stop_polling(application)
