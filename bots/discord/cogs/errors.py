"""One place that turns a failed command into a line for the user: refusals verbatim, anything else logged."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from impasto.bots.discord import texts
from impasto.bots.discord.backend import UserFacingError
from impasto.bots.discord.intake import AttachmentRefused

log = logging.getLogger(__name__)


async def answer(interaction: discord.Interaction[Any], text: str) -> None:
    """Say ``text`` to whoever ran the command, whether or not it was acknowledged yet."""
    if interaction.response.is_done():
        await interaction.edit_original_response(
            content=text, attachments=[], view=None, allowed_mentions=texts.NO_MENTIONS
        )
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)


async def report(interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
    cause: BaseException = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, app_commands.CheckFailure) and interaction.response.is_done():
        return  # the check already told the user why
    if isinstance(cause, UserFacingError | AttachmentRefused):
        await answer(interaction, texts.refusal(cause.message))
        return
    log.error("command %s failed", interaction.command.name if interaction.command else "?", exc_info=cause)
    await answer(interaction, "⚠️ Something went wrong on our side; it was logged. Please try again.")
