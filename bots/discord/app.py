"""The bot: a discord.py ``commands.Bot`` with our cogs, persistent controls and command sync in ``setup_hook``.

Resources (the job service, Redis, SQL) are opened by the caller and passed in as a ``Backend``; nothing here is a
module-level singleton. Intents are the unprivileged minimum: slash commands and buttons arrive as interactions
whatever the intents, and reactions need only the reaction intents.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import discord
from discord.ext import commands

from impasto.bots.discord.backend import Backend, CatchUp
from impasto.bots.discord.cogs.account import Account
from impasto.bots.discord.cogs.create import Create
from impasto.bots.discord.cogs.jobs import Jobs
from impasto.bots.discord.cogs.server import Server
from impasto.bots.discord.controls import Controls
from impasto.bots.discord.views import DYNAMIC_ITEMS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotOptions:
    test_guild: int | None = None  # sync commands to this guild only (instant); None: globally (up to an hour)
    sync_commands: bool = True
    shards: int | None = None  # set: discord.py's auto-sharded client with this many shards
    min_edit_interval_s: float = 2.0  # progress edits per message, at most one per this
    max_upload_bytes: int = 10 * 1024 * 1024
    guild_ready_timeout_s: float = 2.0
    consumer: str | None = None  # this process's name in the "discord" event consumer group (default host-pid)


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True  # channel objects (NSFW flag, permissions) for interactions and reactions
    wanted.guild_reactions = True
    wanted.dm_reactions = True
    return wanted


class ImpastoBot(commands.Bot):
    def __init__(
        self, backend: Backend, options: BotOptions, *, catch_up: CatchUp | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            guild_ready_timeout=options.guild_ready_timeout_s,
            allowed_mentions=discord.AllowedMentions.none(),
            **kwargs,
        )
        self.backend = backend
        self.options = options
        self.controls = Controls(backend, min_edit_interval_s=options.min_edit_interval_s)
        self.synced: list[discord.app_commands.AppCommand] = []
        self.catch_up_source = catch_up

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.add_cog(Create(self.backend, self.controls, max_upload_bytes=self.options.max_upload_bytes))
        await self.add_cog(Account(self.backend))
        await self.add_cog(Jobs(self, self.backend))
        await self.add_cog(Server(self.backend))
        if self.options.sync_commands:
            await self.sync_commands()
        if self.catch_up_source is not None:
            consumer = self.options.consumer or f"discord-{socket.gethostname()}-{os.getpid()}"
            self.controls.spawn(self.controls.catch_up(self, self.catch_up_source, consumer=consumer))

    async def sync_commands(self) -> None:
        if self.options.test_guild is not None:
            guild = discord.Object(self.options.test_guild)
            self.tree.copy_global_to(guild=guild)
            self.synced = await self.tree.sync(guild=guild)
        else:
            self.synced = await self.tree.sync()
        log.info("synced %d slash commands (%s)", len(self.synced), self.options.test_guild or "global")

    async def close(self) -> None:
        await self.controls.close()
        await super().close()


class ShardedImpastoBot(ImpastoBot, commands.AutoShardedBot):
    """The same bot over several gateway connections (``IMPASTO_DISCORD_SHARDS``)."""


def build_bot(backend: Backend, options: BotOptions, *, catch_up: CatchUp | None = None) -> ImpastoBot:
    if options.shards is not None:
        return ShardedImpastoBot(backend, options, catch_up=catch_up, shard_count=options.shards)
    return ImpastoBot(backend, options, catch_up=catch_up)
