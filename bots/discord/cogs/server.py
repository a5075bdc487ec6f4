"""/server: a server's own rules, for its managers — the channels impasto answers in, and which roles get which plan."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord import replies
from impasto.bots.discord.cogs.account import private
from impasto.bots.discord.cogs.errors import answer, report
from impasto.bots.discord.controls import Controls
from impasto.bots.discord.language import reply_locale
from impasto.bots.discord.surface import PLATFORM
from impasto.bots.i18n.catalog import t
from impasto.bots.service.errors import InvalidRequest

_Interaction = discord.Interaction[Any]


LANGUAGES = [
    app_commands.Choice(name="Automatic (each member's app language)", value="auto"),
    app_commands.Choice(name="English", value="en"),
    app_commands.Choice(name="Simplified Chinese", value="zh_Hans"),
]


def _guild_id(interaction: _Interaction) -> str:
    if interaction.guild_id is None:
        raise InvalidRequest("/server works in a server, not in DMs")
    return str(interaction.guild_id)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Server(commands.GroupCog, group_name="server", group_description="Server rules for impasto (managers only)"):
    def __init__(self, controls: Controls) -> None:
        self.service = controls.service
        super().__init__()

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    async def interaction_check(self, interaction: _Interaction) -> bool:
        # Discord hides the commands from others by default, but a server may change that: check again here.
        if not interaction.permissions.manage_guild:
            await answer(interaction, f"⚠️ {t('server.needs_manage', await reply_locale(interaction))}")
            return False
        return True

    async def _show(self, interaction: _Interaction, guild_id: str) -> None:
        guild = await self.service.guild(PLATFORM, guild_id)
        locale = await reply_locale(interaction)
        await answer(interaction, replies.server(guild, list(self.service.plans.plans), locale))

    @app_commands.command(name="language", description="The reply language for members who chose none")
    @app_commands.describe(language="Used when a member's Discord sends a language impasto does not speak")
    @app_commands.choices(language=LANGUAGES)
    async def language(self, interaction: _Interaction, language: app_commands.Choice[str]) -> None:
        await private(interaction)
        guild_id = _guild_id(interaction)
        await self.service.set_server_language(
            PLATFORM, guild_id, language.value, locale=await reply_locale(interaction)
        )
        await self._show(interaction, guild_id)

    @app_commands.command(name="show", description="Where impasto answers here, and the role → plan map")
    async def show(self, interaction: _Interaction) -> None:
        await private(interaction)
        await self._show(interaction, _guild_id(interaction))

    @app_commands.command(name="allow", description="Toggle a channel in the list impasto answers in")
    @app_commands.describe(channel="The channel to add (or remove, if it is listed)")
    async def allow(self, interaction: _Interaction, channel: discord.TextChannel) -> None:
        await private(interaction)
        guild_id = _guild_id(interaction)
        chosen = str(channel.id)
        current = list((await self.service.guild(PLATFORM, guild_id)).allowed_channels)
        allowed = [c for c in current if c != chosen] if chosen in current else [*current, chosen]
        await self.service.configure_guild(PLATFORM, guild_id, allowed_channels=allowed)
        await self._show(interaction, guild_id)

    @app_commands.command(name="allow_all", description="Answer in every channel impasto can post in (the default)")
    async def allow_all(self, interaction: _Interaction) -> None:
        await private(interaction)
        guild_id = _guild_id(interaction)
        await self.service.configure_guild(PLATFORM, guild_id, allowed_channels=[])
        await self._show(interaction, guild_id)

    @app_commands.command(name="plan", description="Give members with a role a plan (no plan: remove the mapping)")
    @app_commands.describe(role="The role", plan="The plan's name (see /server show)")
    async def plan(self, interaction: _Interaction, role: discord.Role, plan: str = "") -> None:
        await private(interaction)
        guild_id = _guild_id(interaction)
        plans = dict((await self.service.guild(PLATFORM, guild_id)).role_plans)
        if plan:
            plans[str(role.id)] = plan
        else:
            plans.pop(str(role.id), None)
        await self.service.configure_guild(PLATFORM, guild_id, role_plans=plans)
        await self._show(interaction, guild_id)
