"""Users, their preferences, and servers (guilds / group chats): found or created in one statement each.

Functions take a session and never commit: the caller (the job service) owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, select
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
    params = {"u_platform": platform, "u_id": platform_user_id}
    user = (await session.scalars(_USER, params)).one_or_none()
    if user is None:  # first sight (read first: the row almost always exists, and then one statement does)
        await insert_ignore(session, User, values, columns=["platform", "platform_user_id"])
        user = (await session.scalars(_USER, params)).one()
    _keep_name(user, display_name)
    return user


def _keep_name(user: User, display_name: str) -> None:
    if display_name and user.display_name != display_name[:DISPLAY_NAME_LIMIT]:
        user.display_name = display_name[:DISPLAY_NAME_LIMIT]


async def requester(
    session: AsyncSession, platform: str, platform_user_id: str, display_name: str, guild_id: str | None
) -> tuple[User, Preference, Guild | None]:
    """``upsert_user``, ``preferences`` and (with ``guild_id``) ``upsert_guild`` at once: one statement when the rows
    exist, which they almost always do."""
    params = {"u_platform": platform, "u_id": platform_user_id, "g_platform": platform, "g_id": guild_id}
    statement = _REQUESTER_IN_GUILD if guild_id else _REQUESTER
    row: Any = (await session.execute(statement, params)).one_or_none()  # (User, Preference | None[, Guild | None])
    if row is None:  # first sight of this user
        user = await upsert_user(session, platform, platform_user_id, display_name)
        prefs = await preferences(session, user.id)
        return user, prefs, await upsert_guild(session, platform, guild_id) if guild_id else None
    user, prefs = row[0], row[1]
    _keep_name(user, display_name)
    guild = row[2] if guild_id else None
    if guild_id and guild is None:  # first sight of this server
        guild = await upsert_guild(session, platform, guild_id)
    return user, prefs if prefs is not None else default_preferences(user.id), guild


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
    params = {"g_platform": platform, "g_id": guild_id}
    guild = (await session.scalars(_GUILD, params)).one_or_none()
    if guild is None:  # first sight (read first: the row almost always exists, and then one statement does)
        await insert_ignore(session, Guild, values, columns=["platform", "platform_guild_id"])
        guild = (await session.scalars(_GUILD, params)).one()
    return guild


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


# Built once: the lookups of every request (``bots.service.context``).
_USER = select(User).where(User.platform == bindparam("u_platform"), User.platform_user_id == bindparam("u_id"))
_GUILD = select(Guild).where(Guild.platform == bindparam("g_platform"), Guild.platform_guild_id == bindparam("g_id"))
_REQUESTER = (
    select(User, Preference)
    .outerjoin(Preference, Preference.user_id == User.id)
    .where(User.platform == bindparam("u_platform"), User.platform_user_id == bindparam("u_id"))
)
_REQUESTER_IN_GUILD = (
    select(User, Preference, Guild)
    .outerjoin(Preference, Preference.user_id == User.id)
    .outerjoin(Guild, and_(Guild.platform == bindparam("g_platform"), Guild.platform_guild_id == bindparam("g_id")))
    .where(User.platform == bindparam("u_platform"), User.platform_user_id == bindparam("u_id"))
)
