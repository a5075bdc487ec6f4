"""Your jobs: /show, /history, /help, and the ✉️ / ❌ reactions on result messages."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord import texts
from impasto.bots.discord.backend import Backend, UserFacingError
from impasto.bots.discord.cogs.errors import report
from impasto.bots.discord.controls import result_content, result_file, result_view
from impasto.bots.discord.requester import requester_of, requester_of_reaction

log = logging.getLogger(__name__)
_Interaction = discord.Interaction[Any]
ENVELOPE = "✉️"
CROSS = "❌"


@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Jobs(commands.Cog):
    def __init__(self, bot: discord.Client, backend: Backend) -> None:
        self.bot = bot
        self.backend = backend

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    @app_commands.command(name="show", description="Post one of your jobs again, with its buttons")
    @app_commands.describe(job_id="The job id (from ✉️ or /history)")
    async def show(self, interaction: _Interaction, job_id: app_commands.Range[str, 1, 80]) -> None:
        await interaction.response.defer(thinking=True)
        who = requester_of(interaction)
        card, finished = await self.backend.show(who, job_id.strip())
        file = result_file(card, finished, nsfw_channel=who.nsfw_channel)
        message = await interaction.edit_original_response(
            content=result_content(card),
            attachments=[file] if file else [],
            view=result_view(card),
            allowed_mentions=texts.NO_MENTIONS,
        )
        await self.backend.record_message(card.id, str(message.channel.id), str(message.id))

    @app_commands.command(name="history", description="Your recent jobs")
    async def history(self, interaction: _Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        text = await self.backend.command(requester_of(interaction), "history")
        await interaction.edit_original_response(content=text, allowed_mentions=texts.NO_MENTIONS)

    @app_commands.command(name="help", description="How to use impasto")
    async def help(self, interaction: _Interaction) -> None:
        await interaction.response.send_message(texts.HELP, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return
        emoji = str(payload.emoji)
        if emoji not in (ENVELOPE, CROSS):
            return
        job_id = await self.backend.job_for_message(str(payload.channel_id), str(payload.message_id))
        if job_id is None:
            return
        who = requester_of_reaction(payload, self.bot)
        try:
            if emoji == ENVELOPE:
                await self._send_details(who.user_id, job_id, payload)
            else:
                outcome = await self.backend.cancel_or_delete(who, job_id)
                if outcome == "deleted":
                    channel = self.bot.get_partial_messageable(payload.channel_id)
                    await channel.get_partial_message(payload.message_id).delete()
        except UserFacingError as exc:
            # Someone else's ❌ is simply not acted on: a reaction has nowhere private to answer in a channel.
            log.info("reaction %s on job %s by %s refused: %s", emoji, job_id, who.user_id, exc.message)
        except discord.HTTPException:
            log.exception("reaction %s on job %s: Discord refused the follow-up", emoji, job_id)

    async def _send_details(self, user_id: str, job_id: str, payload: discord.RawReactionActionEvent) -> None:
        who = requester_of_reaction(payload, self.bot)
        details = await self.backend.details(who, job_id)
        dm = await self.bot.create_dm(discord.Object(int(user_id)))
        files = [
            discord.File(io.BytesIO(png), filename=f"{job_id}_{n}.png") for n, png in enumerate(details.images_png, 1)
        ]
        await dm.send(details.text, files=files[:10], allowed_mentions=texts.NO_MENTIONS)
