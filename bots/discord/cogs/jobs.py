"""Your jobs: /show, /history, /help, and the ✉️ / ❌ reactions on result messages."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord import replies, texts
from impasto.bots.discord.cogs.account import private
from impasto.bots.discord.cogs.errors import REFUSALS, answer, report
from impasto.bots.discord.controls import Controls
from impasto.bots.discord.delivery import OriginalResponse
from impasto.bots.discord.describe import (
    describe_content,
    describe_picture,
    describe_view,
    is_describe,
    locale_of_job,
)
from impasto.bots.discord.language import reply_locale
from impasto.bots.discord.requester import requester_of, requester_of_reaction
from impasto.bots.discord.surface import (
    PLATFORM,
    finished,
    result_content,
    result_download,
    result_file,
    result_view,
    with_line,
)
from impasto.bots.i18n.refusals import localize
from impasto.bots.service.errors import JobNotReady
from impasto.bots.service.requester import Requester
from impasto.bots.service.result_forms import discord_limits
from impasto.bots.web.links import gallery_link

log = logging.getLogger(__name__)
_Interaction = discord.Interaction[Any]
ENVELOPE = "✉️"
CROSS = "❌"


@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Jobs(commands.Cog):
    def __init__(self, bot: discord.Client, controls: Controls) -> None:
        self.bot = bot
        self.controls = controls
        self.service = controls.service

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    @app_commands.command(name="show", description="Post one of your jobs again, with its buttons")
    @app_commands.describe(job_id="The job id (from ✉️ or /history)")
    async def show(self, interaction: _Interaction, job_id: app_commands.Range[str, 1, 80]) -> None:
        await interaction.response.defer(thinking=True)
        who = requester_of(interaction)
        shown = await self.service.show(who, job_id.strip())
        view = shown.view
        if view.status != "done":
            raise JobNotReady(f"job {view.job_id} is {view.status}; /show works on finished jobs")
        if is_describe(view):  # a /describe: its four prompts and their buttons again
            target = OriginalResponse(interaction)
            picture = await asyncio.to_thread(describe_picture, view, self.service.images)
            await target.edit(
                describe_content(view),
                view=describe_view(view.job_id, locale_of_job(view)),
                embed=picture[0] if picture is not None else None,
                file=picture[1] if picture is not None else None,
            )
            await self.controls.shows(view.job_id, target, "result")
            return
        pictures = await asyncio.to_thread(finished, self.service.images, view)
        pictures = replace(pictures, flagged=shown.spoiler)  # the service decided, with this server's settings
        # The interaction says what this channel takes (a boosted server takes more); the PNG when it fits.
        limits = discord_limits(interaction.filesize_limit)
        url = result_download(self.controls.web, view, lifetime_s=self.controls.download_s)
        file, line, _size = await asyncio.to_thread(
            result_file, view, pictures, nsfw_channel=False, limits=limits, download_url=url
        )
        target = OriginalResponse(interaction)
        await target.edit(with_line(result_content(view), line), file=file, view=result_view(view))
        await self.controls.shows(view.job_id, target, "result")

    @app_commands.command(name="history", description="Your recent jobs")
    async def history(self, interaction: _Interaction) -> None:
        who = await private(interaction)
        views = await self.service.history(who)
        # The gallery shows stealth jobs too: its link goes to the user alone (``private`` answers ephemerally).
        locale = await self.service.reply_locale(who)
        url = gallery_link(self.controls.web, who, lang=locale) if self.controls.web is not None else None
        await answer(interaction, replies.history(views, url, locale))

    @app_commands.command(name="help", description="How to use impasto")
    async def help(self, interaction: _Interaction) -> None:
        text = texts.help_text(await reply_locale(interaction))
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return
        emoji = str(payload.emoji)
        if emoji not in (ENVELOPE, CROSS):
            return
        shown = await self.service.find_job_by_message(PLATFORM, str(payload.channel_id), str(payload.message_id))
        if shown is None:
            return
        job_id = shown.job_id
        who = requester_of_reaction(payload, self.bot)
        try:
            if emoji == ENVELOPE:
                await self._send_details(who, job_id)
            else:
                await self._cancel_or_delete(who, job_id, payload)
        except REFUSALS as refusal:
            # Someone else's ❌ is simply not acted on: a reaction has nowhere private to answer in a channel.
            log.info("reaction %s on job %s by %s refused: %s", emoji, job_id, who.user_id, refusal.message)
        except discord.HTTPException:
            log.exception("reaction %s on job %s: Discord refused the follow-up", emoji, job_id)

    async def _cancel_or_delete(self, who: Requester, job_id: str, payload: discord.RawReactionActionEvent) -> None:
        status = await self.service.cancel(who, job_id)
        if status == "cancelled":
            await self.controls.delivery.announce_cancelled(job_id)
        elif status in ("done", "failed"):
            # A finished job has nothing to stop: ❌ removes its message (the service checked ownership either way).
            channel = self.bot.get_partial_messageable(payload.channel_id)
            await channel.get_partial_message(payload.message_id).delete()

    async def _send_details(self, who: Requester, job_id: str) -> None:
        # The service decides: a stealth job only to its owner, flagged pictures as /show has them (a DM is no NSFW
        # place); held, rejected or removed ones are left out, with the line saying why.
        mailed = await self.service.mailed(who, job_id)
        view = mailed.view
        locale = await self.service.reply_locale(who)
        text = replies.details(view, locale)
        files: list[discord.File] = []
        if mailed.withheld is None:
            pictures = await asyncio.to_thread(finished, self.service.images, view)
            files = [
                discord.File(io.BytesIO(png), filename=f"{job_id}_{n}.png", spoiler=mailed.spoiler)
                for n, png in enumerate(pictures.images_png, 1)
            ]
        else:
            tail = f"\n⚠️ {localize(mailed.withheld, locale)}"
            text = text[: texts.MAX_MESSAGE - len(tail)] + tail
        dm = await self.bot.create_dm(discord.Object(int(who.user_id)))
        await dm.send(text, files=files[:10], allowed_mentions=texts.NO_MENTIONS)
