"""``impasto discord``: open Redis, the job service and the bot in one ``async with`` stack, then run until stopped."""

from __future__ import annotations

import logging
import os
import socket
from contextlib import AsyncExitStack

from impasto.bots.config import Settings
from impasto.bots.discord.app import BotOptions, ImpastoBot, build_bot
from impasto.bots.discord.endpoints import use_endpoints
from impasto.bots.i18n.discord import CatalogTranslator
from impasto.bots.service.runtime import job_service
from impasto.queue.client import open_pool, service_enqueue
from impasto.queue.keys import namespace_from_env

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A missing or bad setting, said as one line naming the variable."""


def options_from(settings: Settings, *, sync_commands: bool = True) -> BotOptions:
    return BotOptions(
        test_guild=settings.discord_test_guild,
        shards=settings.discord_shards,
        sync_commands=sync_commands,
        max_upload_bytes=settings.max_upload_bytes,
        # A stable name per process slot lets a restarted bot re-read the events it had not finished handling.
        consumer=os.environ.get("IMPASTO_DISCORD_CONSUMER") or f"discord-{socket.gethostname()}",
        web=settings if settings.mask_editor else None,
        download_link_s=settings.web_download_seconds,
        moderation=settings.moderation_policy,
    )


async def serve(settings: Settings, *, sync_commands: bool = True, stack: AsyncExitStack | None = None) -> ImpastoBot:
    """Open everything and start the bot; returns once it is ready. ``stack`` owns the resources (close it to stop)."""
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    if not token:
        raise ConfigError("IMPASTO_DISCORD_TOKEN is not set: the bot token from the Discord developer portal")
    if not settings.redis_url:
        raise ConfigError("IMPASTO_REDIS_URL is not set: the Discord bot queues jobs for workers through Redis")
    stack = stack or AsyncExitStack()
    ns = namespace_from_env()  # IMPASTO_QUEUE_NAMESPACE: the workers of this deployment read the same one
    pool = await open_pool(settings.redis_url, ns=ns)
    stack.push_async_callback(pool.aclose)
    service = await stack.enter_async_context(job_service(settings, enqueue=service_enqueue(pool, ns=ns), redis=pool))
    use_endpoints(settings.discord_api_url, settings.discord_gateway_url)
    bot = build_bot(service, pool, options_from(settings, sync_commands=sync_commands), ns=ns)
    # Command and option descriptions in each user's Discord language (impasto.bots.i18n), sent when they sync.
    await bot.tree.set_translator(CatalogTranslator())
    await stack.enter_async_context(bot)
    await bot.login(token)
    return bot


async def run(settings: Settings, *, sync_commands: bool = True) -> None:
    async with AsyncExitStack() as stack:
        bot = await serve(settings, sync_commands=sync_commands, stack=stack)
        log.info("connecting to the Discord gateway")
        await bot.connect(reconnect=True)
