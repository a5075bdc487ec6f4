"""Discord's "slow down" on a result: a 429 longer than discord.py sleeps through becomes the delivery core's
``Deferred`` (retried later from the stored job) and moves ``impasto_platform_rate_limited_total``; every attempt
moves ``impasto_deliveries_total``. Real discord.py against the fake Discord, a real worker, the real core."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from discord_stack import ServiceStack
from fake_discord import FakeDiscord
from prometheus_client import REGISTRY

from impasto.bots.discord.app import ImpastoBot


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_long_429_defers_the_result_and_is_counted(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack
) -> None:
    bot = await start_bot(deliver=False)  # this test posts the end itself, at a moment it chooses
    assert bot.http.max_ratelimit_timeout == 30.0
    ok, retried = (counter("impasto_deliveries_total", platform="discord", outcome=o) for o in ("ok", "retried"))
    limited = counter("impasto_platform_rate_limited_total", platform="discord")
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "patient"}])
    mid = record.original_id or await fake.wait_for(lambda: record.original_id)
    message = await fake.wait_message(lambda m: m["id"] == mid and "Waiting to start" in m["content"])
    view: Any = None
    for _ in range(500):  # the bot records the message just after posting it
        view = await stack.service.find_job_by_message("discord", message["channel_id"], message["id"])
        if view is not None:
            break
        await asyncio.sleep(0.02)
    assert view is not None
    await stack.drain()
    # Discord asks for 40 s: more than discord.py waits inline (30 s), so the bot is told at once.
    path = f"/channels/{message['channel_id']}/messages/{message['id']}"
    fake.rate_limit("PATCH", path, retry_after_s=40.0)
    assert await bot.delivery.deliver_end(view.job_id, paints_noise=True) is False  # deferred, not lost
    assert fake.rate_limited == [f"PATCH {path}"]
    assert counter("impasto_platform_rate_limited_total", platform="discord") == limited + 1
    assert counter("impasto_deliveries_total", platform="discord", outcome="retried") == retried + 1
    # The retry (here at once) posts the result.
    assert await bot.delivery.deliver_end(view.job_id, paints_noise=True) is True
    result = await fake.wait_message(lambda m: m["id"] == message["id"] and bool(m["components"]))
    assert result["attachments"]
    assert counter("impasto_deliveries_total", platform="discord", outcome="ok") == ok + 1
    assert counter("impasto_platform_rate_limited_total", platform="discord") == limited + 1
