"""Fixtures: a fake Discord on 127.0.0.1, the real core (SQLite, Redis db 15 in a namespace of its own, the worker
with the no-op renderer), and the real discord.py bot connected to both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from discord_stack import ServiceStack, service_stack
from fake_discord import FakeDiscord

from impasto.bots.discord.app import ImpastoBot, build_bot
from impasto.bots.discord.endpoints import use_endpoints

StartBot = Callable[..., Coroutine[Any, Any, ImpastoBot]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[ServiceStack]:
    async with service_stack(tmp_path) as stack:
        yield stack


@pytest.fixture
async def start_bot(fake: FakeDiscord, stack: ServiceStack) -> AsyncIterator[StartBot]:
    """Start a bot process on the test's stack (several in one test model a restart); each is closed at the end."""
    running: list[tuple[ImpastoBot, asyncio.Task[None]]] = []

    async def start(**options: Any) -> ImpastoBot:
        use_endpoints(fake.api_url, fake.gateway_url)
        options.setdefault("consumer", f"bot-{len(running) + 1}")
        bot = build_bot(stack.service, stack.pool, stack.bot_options(**options), ns=stack.ns)
        task = asyncio.create_task(bot.start("fake-token"))
        running.append((bot, task))
        while not bot.is_ready():
            if task.done():
                task.result()  # the client died: show why
                raise AssertionError("bot stopped before it was ready")
            await asyncio.sleep(0.01)
        return bot

    yield start
    for bot, task in running:
        await bot.close()
        await asyncio.wait_for(task, 10)
    use_endpoints(None, None)  # discord.py keeps them in class attributes: leave no fake behind


@pytest.fixture
async def bot(start_bot: StartBot) -> ImpastoBot:
    return await start_bot()
