"""/imagine, /blend and /describe: the commands that start renders."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord import texts
from impasto.bots.discord.cogs.errors import answer, report
from impasto.bots.discord.controls import Controls
from impasto.bots.discord.delivery import OriginalResponse
from impasto.bots.discord.intake import Attached, AttachmentRefused, check_declared, check_image
from impasto.bots.discord.requester import requester_of
from impasto.bots.discord.review_queue import locale_of
from impasto.bots.i18n.catalog import t

_Interaction = discord.Interaction[Any]

DIMENSIONS = [
    app_commands.Choice(name="Portrait", value="portrait"),
    app_commands.Choice(name="Square", value="square"),
    app_commands.Choice(name="Landscape", value="landscape"),
]


async def read_images(attachments: list[discord.Attachment | None], max_bytes: int) -> list[Attached]:
    """Check what Discord says about each file first, download only what passes, then decode it fully."""
    present = [a for a in attachments if a is not None]
    if not all(isinstance(a, discord.Attachment) for a in present):
        # An attachment option without its "resolved" entry: discord.py hands over a bare Object (no file, no URL).
        raise AttachmentRefused("an attached file did not arrive; please attach it again")
    for attachment in present:
        check_declared(attachment.filename, attachment.size, attachment.content_type, max_bytes)
    return [Attached(a.url, check_image(a.filename, await _download(a), max_bytes).data) for a in present]


async def _download(attachment: discord.Attachment) -> bytes:
    try:
        return await attachment.read()
    except (discord.NotFound, discord.Forbidden) as exc:  # the CDN link expired, or the file was deleted meanwhile
        raise AttachmentRefused(
            f"attachment {attachment.filename[:100]!r} could not be downloaded from Discord; please attach it again"
        ) from exc


@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Create(commands.Cog):
    def __init__(self, controls: Controls, *, max_upload_bytes: int) -> None:
        self.controls = controls
        self.service = controls.service
        self.max_upload_bytes = max_upload_bytes

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    @app_commands.command(name="imagine", description="Create images from a text prompt")
    @app_commands.describe(
        prompt="What to paint, then --parameters (e.g. a lighthouse at dusk --ar 16:9 --no people)",
        image="An image prompt (optional)",
        image2="A second image prompt (optional)",
    )
    async def imagine(
        self,
        interaction: _Interaction,
        prompt: app_commands.Range[str, 1, 6000],
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True)
        images = await read_images([image, image2], self.max_upload_bytes)
        who = requester_of(interaction)
        tickets = await self.service.imagine(
            who, prompt, image_urls=[i.url for i in images], idempotency_key=f"discord:{interaction.id}"
        )
        await self.controls.start_jobs(interaction, tickets, OriginalResponse(interaction), who)

    @app_commands.command(name="blend", description="Blend 2–5 images into a new one")
    @app_commands.describe(
        image1="First image",
        image2="Second image",
        image3="Third image (optional)",
        image4="Fourth image (optional)",
        image5="Fifth image (optional)",
        dimensions="The result's shape (default square)",
    )
    @app_commands.choices(dimensions=DIMENSIONS)
    async def blend(
        self,
        interaction: _Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True)
        images = await read_images([image1, image2, image3, image4, image5], self.max_upload_bytes)
        who = requester_of(interaction)
        shape = dimensions.value if dimensions is not None else "square"
        # The checked bytes go to the image store now: the worker reads them there, no second download.
        keys = [await asyncio.to_thread(self.service.images.put, image.data) for image in images]
        tickets = await self.service.blend(
            who, [i.url for i in images], shape, idempotency_key=f"discord:{interaction.id}", image_keys=keys
        )
        await self.controls.start_jobs(interaction, tickets, OriginalResponse(interaction), who)

    @app_commands.command(name="describe", description="Four prompts for an image, to imagine from")
    @app_commands.describe(
        image="The image to describe",
        link="Or a link to the image (https://…)",
        job="Or a job id: describe its picture",
    )
    async def describe(
        self,
        interaction: _Interaction,
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 2000] | None = None,
        job: app_commands.Range[str, 1, 80] | None = None,
    ) -> None:
        # Public, as Midjourney posts its describe: the four prompts and their buttons stay in the channel.
        await interaction.response.defer(thinking=True)
        locale = await locale_of(interaction)
        if sum(x is not None for x in (image, link, job)) != 1:
            await answer(interaction, texts.refusal(t("describe.refusal.one_image", locale)))
            return
        who = requester_of(interaction)
        key = f"discord:{interaction.id}"
        if image is not None:
            checked = await read_images([image], self.max_upload_bytes)
            stored = await asyncio.to_thread(self.service.images.put, checked[0].data)
            ticket = await self.service.describe(who, idempotency_key=key, image_key=stored, display=image.filename)
        else:
            ticket = await self.service.describe(who, idempotency_key=key, link=link, job_id=job)
        await self.controls.start_jobs(interaction, [ticket], OriginalResponse(interaction), who)
