"""Starting and stopping a real PTB Application that long-polls the fake Bot API."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from fake_botapi import TOKEN, FakeBotApi

from impasto.bots.telegram.app import TgApp, build_application

Installer = Callable[[TgApp], Awaitable[None] | None]


async def start_polling(api: FakeBotApi, install: Installer) -> TgApp:
    application = build_application(TOKEN, api.url, read_timeout_s=5)
    result = install(application)
    if asyncio.iscoroutine(result):
        await result
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(timeout=1, poll_interval=0)
    return application


async def stop_polling(application: TgApp) -> None:
    assert application.updater is not None
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


# The same servers as tests/conftest.py (not importable from here: tests/ is not a package).
TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
