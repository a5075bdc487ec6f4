"""The reply language people chose: a user's own (/settings) and a server's default (/server language).

Stored as catalog names (``"en"``, ``"zh_Hans"``; ``impasto.bots.i18n`` checks them before they get here); NULL means
"not chosen": the platform's locale decides. Functions take a session and never commit (the caller's transaction).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage import admin
from impasto.storage.models import Guild, User


async def chosen_locales(
    session: AsyncSession, platform: str, user_id: str, guild_id: str | None
) -> tuple[str | None, str | None]:
    """(the user's own choice, the server's default); either None when not chosen or the row does not exist yet."""
    mine = await session.scalar(select(User.locale).where(User.platform == platform, User.platform_user_id == user_id))
    server = None
    if guild_id is not None:
        server = await session.scalar(
            select(Guild.locale).where(Guild.platform == platform, Guild.platform_guild_id == guild_id)
        )
    return mine, server


async def set_user_locale(session: AsyncSession, platform: str, user_id: str, locale: str | None) -> None:
    user = await admin.ensure_user(session, platform, user_id)
    await session.execute(update(User).where(User.id == user.id).values(locale=locale))


async def set_guild_locale(session: AsyncSession, platform: str, guild_id: str, locale: str | None) -> None:
    guild = await admin.ensure_guild(session, platform, guild_id)
    await session.execute(update(Guild).where(Guild.id == guild.id).values(locale=locale))
