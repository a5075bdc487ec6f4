"""The galleries' queries: a user's finished jobs (search, ❤️ filter), a server's public jobs, a job's children.

Functions take a session and return ``history.JobRecord``s, newest first, a page at a time (``limit`` + ``offset``;
callers ask for one more than a page to know whether another follows). Only finished jobs with images are shown.
"""

from __future__ import annotations

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage.history import JobRecord, records
from impasto.storage.models import DONE, Guild, Image, Job, User

PUBLIC = "public"  # jobs.visibility set by /public and /stealth


def _search(pattern: str) -> str:
    return "%" + pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def user_jobs(
    session: AsyncSession,
    platform: str,
    platform_user_id: str,
    *,
    search: str | None = None,
    favorites_only: bool = False,
    limit: int = 24,
    offset: int = 0,
) -> list[JobRecord]:
    """A user's finished jobs (stealth included: this page is theirs alone)."""
    query = (
        select(Job)
        .join(User, User.id == Job.user_id)
        .where(User.platform == platform, User.platform_user_id == platform_user_id, Job.status == DONE)
        .where(exists().where(Image.job_id == Job.id))
    )
    if favorites_only:
        query = query.where(Job.favorite.is_(True))
    if search:
        pattern = _search(search)
        query = query.where(
            or_(func.lower(Job.prompt).like(pattern, escape="\\"), func.lower(Job.display).like(pattern, escape="\\"))
        )
    return await records(session, query.order_by(Job.queued_at.desc(), Job.id).limit(limit).offset(offset))


async def public_jobs(
    session: AsyncSession, platform: str, platform_guild_id: str, *, limit: int = 24, offset: int = 0
) -> list[JobRecord]:
    """A server's finished public jobs; stealth ones never."""
    query = (
        select(Job)
        .join(Guild, Guild.id == Job.guild_id)
        .where(
            Guild.platform == platform,
            Guild.platform_guild_id == platform_guild_id,
            Job.visibility == PUBLIC,
            Job.status == DONE,
        )
        .where(exists().where(Image.job_id == Job.id))
    )
    return await records(session, query.order_by(Job.queued_at.desc(), Job.id).limit(limit).offset(offset))


async def children(session: AsyncSession, job_id: str, *, limit: int = 24) -> list[JobRecord]:
    """The finished jobs made from ``job_id`` (its lineage's next generation), oldest first."""
    query = (
        select(Job)
        .where(Job.parent_id == job_id, Job.status == DONE)
        .where(exists().where(Image.job_id == Job.id))
        .order_by(Job.queued_at, Job.id)
        .limit(limit)
    )
    return await records(session, query)
