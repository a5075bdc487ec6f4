"""Where a job's message lives, and how it is edited: Discord errors become one small neutral family here.

A slash command's message is the interaction's original response, editable through the interaction webhook for 15
minutes; a button's result is a reply the bot posted in the channel, editable with the bot token for ever.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any, Protocol

import discord

from impasto.bots.discord.texts import NO_MENTIONS

log = logging.getLogger(__name__)
View = discord.ui.View

INTERACTION_TOKEN_S = 14 * 60  # Discord's tokens live 15 minutes; switch to the bot's own edits a little before


class DeliveryError(Exception):
    """A message could not be posted or edited (gone, no permission, Discord down)."""


class MessageGone(DeliveryError):
    """The message was deleted (by a user, or ❌)."""


def image_file(data: bytes, filename: str, *, flagged: bool = False, nsfw_channel: bool = False) -> discord.File:
    """The spoiler hook: a result moderation flagged goes out as a spoiler unless the channel is marked NSFW."""
    return discord.File(io.BytesIO(data), filename=filename, spoiler=flagged and not nsfw_channel)


class Target(Protocol):
    message_id: int | None
    channel_id: int | None

    async def edit(self, content: str, *, file: discord.File | None = None, view: View | None = None) -> None: ...


def _translate(exc: discord.HTTPException) -> DeliveryError:
    if isinstance(exc, discord.NotFound):
        return MessageGone(str(exc))
    return DeliveryError(f"Discord refused the edit: {exc.status} {exc.text}")


class OriginalResponse:
    """The deferred response of a slash command (or the message a component sits on, after a deferred update)."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction
        self.message_id: int | None = None
        self.channel_id: int | None = interaction.channel_id
        self._opened = time.monotonic()

    async def edit(
        self,
        content: str,
        *,
        file: discord.File | None = None,
        view: View | None = None,
        embed: discord.Embed | None = None,
    ) -> None:
        attachments = [file] if file is not None else []
        extra: dict[str, Any] = {"embed": embed} if embed is not None else {}
        try:
            if self.message_id is not None and time.monotonic() - self._opened > INTERACTION_TOKEN_S:
                channel = self.interaction.client.get_partial_messageable(self.channel_id or 0)
                await channel.get_partial_message(self.message_id).edit(
                    content=content, attachments=attachments, view=view, allowed_mentions=NO_MENTIONS, **extra
                )
                return
            message = await self.interaction.edit_original_response(
                content=content, attachments=attachments, view=view, allowed_mentions=NO_MENTIONS, **extra
            )
            self.message_id = message.id
        except discord.HTTPException as exc:
            raise _translate(exc) from exc


class ChannelMessage:
    """A message the bot posted itself (a reply under the pressed message)."""

    def __init__(self, message: discord.Message | discord.WebhookMessage | discord.PartialMessage) -> None:
        self.message = message
        self.message_id: int | None = message.id
        self.channel_id: int | None = message.channel.id

    async def edit(self, content: str, *, file: discord.File | None = None, view: View | None = None) -> None:
        attachments = [file] if file is not None else []
        try:
            await self.message.edit(content=content, attachments=attachments, view=view, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            raise _translate(exc) from exc


async def reply_to(
    interaction: discord.Interaction[Any],
    content: str,
    *,
    file: discord.File | None = None,
    view: discord.ui.View | None = None,
) -> ChannelMessage:
    """Post a result as a reply to the message whose button was pressed (Midjourney's way); where the bot may not
    post in the channel (an app installed by a user only), a follow-up of the interaction instead."""
    source = interaction.message
    channel = interaction.channel
    files = [file] if file is not None else []
    kwargs: dict[str, Any] = {"content": content, "files": files, "allowed_mentions": NO_MENTIONS}
    if view is not None:
        kwargs["view"] = view
    try:
        if source is not None and isinstance(channel, discord.abc.Messageable):
            message = await channel.send(reference=source.to_reference(fail_if_not_exists=False), **kwargs)
            return ChannelMessage(message)
    except discord.Forbidden:
        log.info("no permission to post in channel %s; answering with a follow-up", interaction.channel_id)
        for f in files:
            f.reset()
    try:
        return ChannelMessage(await interaction.followup.send(wait=True, **kwargs))
    except discord.HTTPException as exc:
        raise _translate(exc) from exc
