"""Who is asking, from a Discord interaction or reaction: our platform-neutral ``Requester``."""

from __future__ import annotations

from typing import Any

import discord

from impasto.bots.service.requester import Requester


def _is_nsfw(channel: object) -> bool:
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def _roles(member: discord.Member) -> tuple[str, ...]:
    return tuple(str(role.id) for role in member.roles if not role.is_default())


def requester_of(interaction: discord.Interaction[Any]) -> Requester:
    user = interaction.user
    roles = _roles(user) if isinstance(user, discord.Member) else ()
    return Requester(
        platform="discord",
        user_id=str(user.id),
        display_name=user.display_name,
        guild_id=str(interaction.guild_id) if interaction.guild_id is not None else None,
        channel_id=str(interaction.channel_id) if interaction.channel_id is not None else None,
        roles=roles,
        nsfw_channel=_is_nsfw(interaction.channel),
        client_locale=str(interaction.locale.value),
    )


def requester_of_reaction(payload: discord.RawReactionActionEvent, client: discord.Client) -> Requester:
    member = payload.member
    roles = _roles(member) if member is not None else ()
    channel = client.get_channel(payload.channel_id)
    return Requester(
        platform="discord",
        user_id=str(payload.user_id),
        display_name=member.display_name if member is not None else "",
        guild_id=str(payload.guild_id) if payload.guild_id is not None else None,
        channel_id=str(payload.channel_id),
        roles=roles,
        nsfw_channel=_is_nsfw(channel),
    )
