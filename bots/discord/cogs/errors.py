"""The one place where a refusal becomes a line for the user: the core's ``ServiceError`` and the command language's
``PromptError`` (and a refused attachment) verbatim, escaped, privately; anything else logged."""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

import discord
from discord import app_commands

from impasto.bots.discord import texts
from impasto.bots.discord.intake import AttachmentRefused
from impasto.bots.discord.language import client_locale, reply_locale
from impasto.bots.discord.review_queue import appeal_view
from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import localize
from impasto.bots.language.errors import PromptError
from impasto.bots.service.errors import PromptRefused, ServiceError
from impasto.bots.service.outages import outage_line
from impasto.queue import metrics

log = logging.getLogger(__name__)

#: What a handler lets through for ``refuse`` to say: each carries a one-line ``.message``.
REFUSALS = (ServiceError, PromptError, AttachmentRefused)
Refusal: TypeAlias = ServiceError | PromptError | AttachmentRefused

#: A command Discord still lists but this process does not have (removed, renamed, or a global sync still spreading),
#: or whose options no longer match the code (a sync pending).
UNKNOWN_COMMAND = "⚠️ This command is not available (any more); Discord may take a while to update its list."
#: An interaction whose options do not have the shape Discord's schema promises (a value missing or of another type).
MALFORMED = "⚠️ This command arrived garbled; please run it again."


async def answer(interaction: discord.Interaction[Any], text: str) -> None:
    """Say ``text`` to whoever ran the command, whether or not it was acknowledged yet."""
    if interaction.response.is_done():
        await interaction.edit_original_response(
            content=text, attachments=[], view=None, allowed_mentions=texts.NO_MENTIONS
        )
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)


async def tell(interaction: discord.Interaction[Any], text: str) -> None:
    """A line only the presser sees, after the interaction was acknowledged."""
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)


async def refuse(interaction: discord.Interaction[Any], refusal: Refusal) -> None:
    """The refusal as one line: in place of a slash command's answer, or privately under a pressed control."""
    metrics.refused_by(refusal)
    locale = await reply_locale(interaction)
    line = texts.refusal(localize(refusal.message, locale))
    if isinstance(refusal, PromptRefused) and refusal.refusal_id is not None and interaction.guild_id is not None:
        await _with_appeal(interaction, line, refusal, locale)
        return
    if interaction.type is discord.InteractionType.application_command or not interaction.response.is_done():
        await answer(interaction, line)
    else:
        await tell(interaction, line)


async def _with_appeal(interaction: discord.Interaction[Any], line: str, refusal: PromptRefused, locale: str) -> None:
    """A policy refusal in a server carries an Appeal button (``review_queue``): once per refusal."""
    view = appeal_view(refusal, locale)
    assert view is not None
    if interaction.response.is_done():
        if interaction.type is discord.InteractionType.application_command:
            await interaction.edit_original_response(
                content=line, attachments=[], view=view, allowed_mentions=texts.NO_MENTIONS
            )
        else:
            await interaction.followup.send(line, view=view, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)
    else:
        await interaction.response.send_message(line, view=view, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)


async def report(interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
    cause: BaseException = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, app_commands.CheckFailure) and interaction.response.is_done():
        return  # the check already told the user why
    if isinstance(cause, REFUSALS):
        await refuse(interaction, cause)
        return
    if isinstance(cause, app_commands.CommandSignatureMismatch | app_commands.TransformerError):
        # What Discord sent does not fit the command (its options changed, an entity was not resolved): said, not
        # logged as a failure of ours.
        log.info("command %s: %s", interaction.command.name if interaction.command else "?", cause)
        unknown = isinstance(cause, app_commands.CommandSignatureMismatch)
        await answer(interaction, UNKNOWN_COMMAND if unknown else MALFORMED)
        return
    outage = outage_line(cause)
    if outage is not None:  # Redis or the database is restarting: say so, not "something went wrong"
        log.warning("command %s met an outage: %s", interaction.command.name if interaction.command else "?", cause)
        await answer(interaction, f"⚠️ {localize(outage, client_locale(interaction))}")
        return
    log.error("command %s failed", interaction.command.name if interaction.command else "?", exc_info=cause)
    await answer(interaction, f"⚠️ {t('reply.internal_error', await reply_locale(interaction))}")
