"""Your account: /settings, /prefer, /info, and the one-word mode switches."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord import replies
from impasto.bots.discord.cogs.errors import answer, report
from impasto.bots.discord.controls import Controls, panel_view, settings_text
from impasto.bots.discord.requester import requester_of
from impasto.bots.discord.texts import NO_MENTIONS
from impasto.bots.service.requester import Requester
from impasto.bots.web.links import public_gallery_link

_Interaction = discord.Interaction[Any]


async def private(interaction: _Interaction) -> Requester:
    """Acknowledge a text command (its answer is for the user alone) and say who asked."""
    await interaction.response.defer(thinking=True, ephemeral=True)
    return requester_of(interaction)


@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Account(commands.Cog):
    prefer = app_commands.Group(name="prefer", description="Your personal defaults")
    option = app_commands.Group(name="option", description="Personal --options", parent=prefer)

    def __init__(self, controls: Controls) -> None:
        self.controls = controls
        self.service = controls.service

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    @app_commands.command(name="settings", description="View and adjust your settings")
    async def settings(self, interaction: _Interaction) -> None:
        view = await self.service.settings(await private(interaction))
        await interaction.edit_original_response(
            content=settings_text(view), view=panel_view(view, self.controls.models), allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="info", description="Your plan, usage and running jobs")
    async def info(self, interaction: _Interaction) -> None:
        who = await private(interaction)
        view = await self.service.info(who)
        await answer(interaction, replies.info(view, await self.service.reply_locale(who)))

    async def _mode(self, interaction: _Interaction, mode: str) -> None:
        view = await self.service.update_settings(await private(interaction), mode=mode)
        await answer(interaction, replies.mode_reply(mode, view.locale))

    async def _visibility(self, interaction: _Interaction, visibility: str) -> None:
        who = await private(interaction)
        view = await self.service.update_settings(who, visibility=visibility)
        text = replies.visibility_reply(visibility, view.locale)
        if self.controls.web is not None and who.guild_id is not None:
            link = public_gallery_link(self.controls.web, who, lang=view.locale)
            text += "\n" + replies.public_gallery_line(link, view.locale)
        await answer(interaction, text)

    @app_commands.command(name="fast", description="Switch to fast mode")
    async def fast(self, interaction: _Interaction) -> None:
        await self._mode(interaction, "fast")

    @app_commands.command(name="relax", description="Switch to relax mode (no fast time used)")
    async def relax(self, interaction: _Interaction) -> None:
        await self._mode(interaction, "relax")

    @app_commands.command(name="turbo", description="Switch to turbo mode (fastest, costs more)")
    async def turbo(self, interaction: _Interaction) -> None:
        await self._mode(interaction, "turbo")

    @app_commands.command(name="public", description="Show your new jobs in the public gallery")
    async def public(self, interaction: _Interaction) -> None:
        await self._visibility(interaction, "public")

    @app_commands.command(name="stealth", description="Hide your new jobs from the public gallery")
    async def stealth(self, interaction: _Interaction) -> None:
        await self._visibility(interaction, "stealth")

    @prefer.command(name="suffix", description="Text added to the end of every prompt (empty to clear)")
    @app_commands.describe(new_value="Parameters to add, e.g. --ar 16:9 --style raw")
    async def prefer_suffix(self, interaction: _Interaction, new_value: str = "") -> None:
        who = await private(interaction)
        suffix = await self.service.prefer_suffix(who, new_value)
        await answer(interaction, replies.suffix(suffix, await self.service.reply_locale(who)))

    @prefer.command(name="remix", description="Toggle Remix mode: edit the prompt before variations, pans and zooms")
    async def prefer_remix(self, interaction: _Interaction) -> None:
        who = await private(interaction)
        current = await self.service.settings(who)
        view = await self.service.update_settings(who, remix=not current.remix)
        await answer(interaction, replies.remix(view.remix, view.locale))

    @option.command(name="set", description="Create a personal --option (empty value deletes it)")
    @app_commands.describe(option="The option's name, used as --name", value="What --name stands for")
    async def option_set(self, interaction: _Interaction, option: str, value: str = "") -> None:
        who = await private(interaction)
        options = await self.service.prefer_option_set(who, option, value)
        await answer(interaction, replies.option_set(option, options, await self.service.reply_locale(who)))

    @option.command(name="list", description="List your personal --options")
    async def option_list(self, interaction: _Interaction) -> None:
        who = await private(interaction)
        options = await self.service.prefer_option_list(who)
        await answer(interaction, replies.option_list(options, await self.service.reply_locale(who)))
