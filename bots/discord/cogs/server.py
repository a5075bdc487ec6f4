"""/server: a server's own rules, for its managers — the channels impasto answers in, and which roles get which plan."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord.backend import Backend
from impasto.bots.discord.cogs.account import run_text
from impasto.bots.discord.cogs.errors import answer, report

_Interaction = discord.Interaction[Any]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Server(commands.GroupCog, group_name="server", group_description="Server rules for impasto (managers only)"):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        super().__init__()

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    async def interaction_check(self, interaction: _Interaction) -> bool:
        # Discord hides the commands from others by default, but a server may change that: check again here.
        if not interaction.permissions.manage_guild:
            await answer(interaction, "⚠️ /server needs the Manage Server permission")
            return False
        return True

    @app_commands.command(name="show", description="Where impasto answers here, and the role → plan map")
    async def show(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "server_show")

    @app_commands.command(name="allow", description="Toggle a channel in the list impasto answers in")
    @app_commands.describe(channel="The channel to add (or remove, if it is listed)")
    async def allow(self, interaction: _Interaction, channel: discord.TextChannel) -> None:
        await run_text(self.backend, interaction, "server_allow", str(channel.id))

    @app_commands.command(name="allow_all", description="Answer in every channel impasto can post in (the default)")
    async def allow_all(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "server_allow_all")

    @app_commands.command(name="plan", description="Give members with a role a plan (no plan: remove the mapping)")
    @app_commands.describe(role="The role", plan="The plan's name (see /server show)")
    async def plan(self, interaction: _Interaction, role: discord.Role, plan: str = "") -> None:
        await run_text(self.backend, interaction, "server_plan", f"{role.id} {plan}".strip())
