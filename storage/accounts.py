"""Users, their preferences, and servers (guilds / group chats): found or created in one statement each.

Functions take a session and never commit: the caller (the job service) owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage.models import Guild, Preference, User, utcnow
from impasto.storage.upsert import insert_ignore

DISPLAY_NAME_LIMIT = 128


async def upsert_user(session: AsyncSession, platform: str, platform_user_id: str, display_name: str = "") -> User:
    """The user's row, created on first sight; a changed display name is kept up to date."""
    values: dict[str, Any] = {
        "platform": platform,
        "platform_user_id": platform_user_id,
        "display_name": display_name[:DISPLAY_NAME_LIMIT],
        "created_at": utcnow(),
        "lifetime_images": 0,
        "lifetime_gpu_seconds": 0.0,
        "relaxed_images": 0,
        "relaxed_gpu_seconds": 0.0,
    }
    await insert_ignore(session, User, values, columns=["platform", "platform_user_id"])
    user = (
        await session.scalars(select(User).where(User.platform == platform, User.platform_user_id == platform_user_id))
    ).one()
    if display_name and user.display_name != display_name[:DISPLAY_NAME_LIMIT]:
        user.display_name = display_name[:DISPLAY_NAME_LIMIT]
    return user


async def find_user_id(session: AsyncSession, platform: str, platform_user_id: str) -> int | None:
    return await session.scalar(
        select(User.id).where(User.platform == platform, User.platform_user_id == platform_user_id)
    )


async def upsert_guild(session: AsyncSession, platform: str, guild_id: str) -> Guild:
    """The server's row (its rules), created with no rules on first sight."""
    values: dict[str, Any] = {
        "platform": platform,
        "platform_guild_id": guild_id,
        "allowed_channels": [],
        "role_plans": {},
        "daily_cap_gpu_seconds": None,
        "created_at": utcnow(),
    }
    await insert_ignore(session, Guild, values, columns=["platform", "platform_guild_id"])
    return (
        await session.scalars(select(Guild).where(Guild.platform == platform, Guild.platform_guild_id == guild_id))
    ).one()


def default_preferences(user_id: int) -> Preference:
    """A user's preferences before they changed anything (not yet added to the session)."""
    return Preference(
        user_id=user_id,
        suffix="",
        options={},
        remix=False,
        mode="fast",
        visibility="public",
        variation="high",
        raw=False,
        stylize=None,
        model=None,
    )


async def preferences(session: AsyncSession, user_id: int) -> Preference:
    """The user's preferences to read (defaults, not added, when they never changed any)."""
    prefs = await session.get(Preference, user_id)
    return prefs if prefs is not None else default_preferences(user_id)


async def preferences_for_update(session: AsyncSession, user_id: int) -> Preference:
    """The user's preferences, locked and in the session, ready to change."""
    prefs = await session.get(Preference, user_id, with_for_update=True)
    if prefs is None:
        prefs = default_preferences(user_id)
        session.add(prefs)
    return prefs
