"""The bot: a discord.py ``commands.Bot`` with our cogs, persistent controls and command sync in ``setup_hook``.

Resources (the job service, Redis, SQL) are opened by the caller and passed in: the core ``JobService`` and the Redis
its events come through; nothing here is a module-level singleton. Each process runs the delivery core
(``bots/service/delivery``) with ``DiscordSurface``. Intents are the unprivileged minimum: slash commands
and buttons arrive as interactions whatever the intents, and reactions need only the reaction intents.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from redis.asyncio import Redis

from impasto.bots.discord.cogs.account import Account
from impasto.bots.discord.cogs.create import Create
from impasto.bots.discord.cogs.errors import MALFORMED, UNKNOWN_COMMAND, answer
from impasto.bots.discord.cogs.jobs import Jobs
from impasto.bots.discord.cogs.moderation import Moderation
from impasto.bots.discord.cogs.server import Server
from impasto.bots.discord.controls import Controls
from impasto.bots.discord.review_queue import REVIEW_ITEMS, DiscordReview
from impasto.bots.discord.surface import DiscordSurface
from impasto.bots.discord.upload_limits import UploadLimits
from impasto.bots.discord.views import DYNAMIC_ITEMS
from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.jobs import JobService
from impasto.bots.web.links import WebLinkSettings
from impasto.queue import events
from impasto.queue.keys import DEFAULT, Namespace
from impasto.queue.moderation.policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotOptions:
    test_guild: int | None = None  # sync commands to this guild only (instant); None: globally (up to an hour)
    sync_commands: bool = True
    shards: int | None = None  # set: discord.py's auto-sharded client with this many shards
    min_edit_interval_s: float = 2.0  # progress edits per channel, at most one per this (across bot processes)
    max_upload_bytes: int = 10 * 1024 * 1024
    guild_ready_timeout_s: float = 2.0
    consumer: str | None = None  # this process's name in the "discord" event consumer group (default host-pid)
    deliver: bool = True  # run the delivery core in this process (off: commands only, another process delivers)
    events_group: str | None = None  # the consumer group (default "discord"; tests use their own)
    reclaim_idle_ms: int = events.RECLAIM_IDLE_MS  # take over what a vanished process left unacknowledged
    events_block_ms: int = 5000
    # The web front door's link settings when it is configured: Vary (Region) is offered and answered with a private
    # link to the region editor. None: no editor, so no Vary (Region) button (``queue.actions.offered``).
    web: WebLinkSettings | None = None
    download_link_s: int | None = None  # how long a full PNG's download link works (None: links.LIFETIMES)
    # The prompt policy (``IMPASTO_MODERATION``): the /mod commands for moderators. None: no /mod group.
    moderation: Policy | None = None
    # A 429 asking to wait longer than this is not slept through by discord.py but raised (``discord.RateLimited``):
    # the delivery core retries that post later and counts the rate limit. discord.py's smallest allowed value: 30.
    max_rate_limit_wait_s: float = 30.0


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True  # channel objects (NSFW flag, permissions) for interactions and reactions
    wanted.guild_reactions = True
    wanted.dm_reactions = True
    return wanted


def settable_models(service: JobService) -> list[str]:
    """The models /settings can choose: those a prompt names with --v N or --niji N (what the core stores as the
    user's default; a model without such a name, like the built-in tiny ones, is refused there)."""
    return [name for name in service.registry.names() if re.fullmatch(r"(v\d.*|niji.*)", name)]


# Per option type, what its "value" must be (Discord validates against the synced schema; anything else is forged or
# a bug, and discord.py would raise parsing it, before any handler of ours could answer).
_VALUE_TYPES: dict[int, tuple[type, ...]] = {3: (str,), 4: (int,), 5: (bool,), 10: (int, float)}
_SNOWFLAKE_TYPES = {6, 7, 8, 9, 11}


def well_formed(options: Any) -> bool:
    """Whether a command's options (nested subcommands included) carry values discord.py can parse."""
    if not isinstance(options, list):
        return False
    for option in options:
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            return False
        kind, value = option.get("type"), option.get("value")
        if kind in (1, 2):
            if not well_formed(option.get("options", [])):
                return False
        elif kind in _VALUE_TYPES:
            wanted = _VALUE_TYPES[kind]
            if not isinstance(value, wanted) or (kind != 5 and isinstance(value, bool)):
                return option.get("focused", False) is True  # autocomplete sends what the user is typing
        elif kind in _SNOWFLAKE_TYPES:
            if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20):
                return False
        else:
            return False
    return True


class ImpastoTree(app_commands.CommandTree[Any]):
    """The command tree; a command it does not know (or whose shape changed) is answered, not logged as an error, and
    so is one whose options are garbled (checked before discord.py parses them)."""

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        data: dict[str, Any] = dict(interaction.data or {})
        if well_formed(data.get("options", [])):
            return True
        log.info("garbled options in /%s ignored", str(data.get("name", "?"))[:40])
        if interaction.type is discord.InteractionType.application_command:
            await answer(interaction, MALFORMED)
        return False

    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /) -> None:
        if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            log.info("unknown command: %s", error)
            await answer(interaction, UNKNOWN_COMMAND)
            return
        await super().on_error(interaction, error)


class ImpastoBot(commands.Bot):
    def __init__(
        self, service: JobService, redis: Redis, options: BotOptions, *, ns: Namespace = DEFAULT, **kwargs: Any
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            guild_ready_timeout=options.guild_ready_timeout_s,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=ImpastoTree,
            max_ratelimit_timeout=options.max_rate_limit_wait_s,
            **kwargs,
        )
        self.options = options
        self.upload_limits = UploadLimits(redis, ns=ns)
        surface = DiscordSurface(
            self,
            service.images,
            mask_editor=options.web is not None,
            limits=self.upload_limits,
            web=options.web,
            download_s=options.download_link_s,
        )
        self.delivery = Delivery(
            service,
            redis,
            surface,
            ns=ns,
            group=options.events_group,
            edit_interval_s=options.min_edit_interval_s,
            reclaim_idle_ms=options.reclaim_idle_ms,
            block_ms=options.events_block_ms,
        )
        self.controls = Controls(
            service, self.delivery, models=settable_models(service), web=options.web, download_s=options.download_link_s
        )
        # The review queue, appeals and the audit feed, with the /mod commands (``review_queue.py``).
        self.review: DiscordReview | None = None
        if options.moderation is not None:
            self.review = DiscordReview(self, service, self.delivery, options.moderation, redis, ns=ns)
            self.delivery.on_held = self.review.on_held
        self.synced: list[discord.app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS, *REVIEW_ITEMS)
        await self.add_cog(Create(self.controls, max_upload_bytes=self.options.max_upload_bytes))
        await self.add_cog(Account(self.controls))
        await self.add_cog(Jobs(self, self.controls))
        await self.add_cog(Server(self.controls))
        if self.options.moderation is not None:
            await self.add_cog(Moderation(self.controls, self.options.moderation, self.review))
        if self.options.sync_commands:
            await self.sync_commands()
        if self.options.deliver:
            consumer = self.options.consumer or f"discord-{socket.gethostname()}-{os.getpid()}"
            self.controls.spawn(self.delivery.run(consumer=consumer))
            if self.review is not None:
                self.controls.spawn(self.review.feed.run())

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Every interaction says what its channel takes (``attachment_size_limit``): kept for the results posted
        there later, by whichever process delivers them."""
        if interaction.channel_id is not None and interaction.filesize_limit:
            await self.upload_limits.remember(interaction.channel_id, interaction.filesize_limit)

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


def build_bot(service: JobService, redis: Redis, options: BotOptions, *, ns: Namespace = DEFAULT) -> ImpastoBot:
    if options.shards is not None:
        return ShardedImpastoBot(service, redis, options, ns=ns, shard_count=options.shards)
    return ImpastoBot(service, redis, options, ns=ns)
