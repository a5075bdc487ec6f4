"""Your account: /settings, /prefer, /info, and the one-word mode switches."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord.backend import Backend
from impasto.bots.discord.cogs.errors import answer, report
from impasto.bots.discord.controls import panel_view, settings_text
from impasto.bots.discord.requester import requester_of
from impasto.bots.discord.texts import NO_MENTIONS

_Interaction = discord.Interaction[Any]


async def run_text(backend: Backend, interaction: _Interaction, name: str, argument: str = "") -> None:
    await interaction.response.defer(thinking=True, ephemeral=True)
    text = await backend.command(requester_of(interaction), name, argument)
    await answer(interaction, text)


@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Account(commands.Cog):
    prefer = app_commands.Group(name="prefer", description="Your personal defaults")
    option = app_commands.Group(name="option", description="Personal --options", parent=prefer)

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    @app_commands.command(name="settings", description="View and adjust your settings")
    async def settings(self, interaction: _Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        panel = await self.backend.settings(requester_of(interaction))
        await interaction.edit_original_response(
            content=settings_text(panel), view=panel_view(panel), allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="info", description="Your plan, usage and running jobs")
    async def info(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "info")

    @app_commands.command(name="fast", description="Switch to fast mode")
    async def fast(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "fast")

    @app_commands.command(name="relax", description="Switch to relax mode (no fast time used)")
    async def relax(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "relax")

    @app_commands.command(name="turbo", description="Switch to turbo mode (fastest, costs more)")
    async def turbo(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "turbo")

    @app_commands.command(name="public", description="Show your new jobs in the public gallery")
    async def public(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "public")

    @app_commands.command(name="stealth", description="Hide your new jobs from the public gallery")
    async def stealth(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "stealth")

    @prefer.command(name="suffix", description="Text added to the end of every prompt (empty to clear)")
    @app_commands.describe(new_value="Parameters to add, e.g. --ar 16:9 --style raw")
    async def prefer_suffix(self, interaction: _Interaction, new_value: str = "") -> None:
        await run_text(self.backend, interaction, "prefer_suffix", new_value)

    @prefer.command(name="remix", description="Toggle Remix mode: edit the prompt before variations, pans and zooms")
    async def prefer_remix(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "prefer_remix")

    @option.command(name="set", description="Create a personal --option (empty value deletes it)")
    @app_commands.describe(option="The option's name, used as --name", value="What --name stands for")
    async def option_set(self, interaction: _Interaction, option: str, value: str = "") -> None:
        await run_text(self.backend, interaction, "prefer_option_set", f"{option} {value}".strip())

    @option.command(name="list", description="List your personal --options")
    async def option_list(self, interaction: _Interaction) -> None:
        await run_text(self.backend, interaction, "prefer_option_list")
