"""Reading jobs back: one job with its images and owner, a user's history, their active jobs and usage.

Functions take a session and return rows bundled with what a reader needs (``JobRecord``); the job service turns
them into the views the adapters show.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage.models import ACTIVE_STATUSES, DONE, Guild, Image, Job, Usage, User


@dataclass(frozen=True)
class JobRecord:
    job: Job
    owner_platform: str
    owner_user_id: str  # the platform's user id
    owner_name: str
    guild_id: str | None  # the platform's guild/chat id
    images: tuple[Image, ...]


async def records(session: AsyncSession, query: Select[Job]) -> list[JobRecord]:
    """The jobs ``query`` selects, in its order, each with its images (by index), owner and server."""
    jobs = list(await session.scalars(query))
    if not jobs:
        return []
    ids = [job.id for job in jobs]
    images: dict[str, list[Image]] = {job_id: [] for job_id in ids}
    for image in await session.scalars(select(Image).where(Image.job_id.in_(ids)).order_by(Image.index)):
        images[image.job_id].append(image)
    owners = {
        row[0]: (row[1], row[2], row[3])
        for row in await session.execute(
            select(User.id, User.platform, User.platform_user_id, User.display_name).where(
                User.id.in_({job.user_id for job in jobs})
            )
        )
    }
    guild_ids = {job.guild_id for job in jobs if job.guild_id is not None}
    guilds: dict[int, str] = {}
    if guild_ids:
        rows = await session.execute(select(Guild.id, Guild.platform_guild_id).where(Guild.id.in_(guild_ids)))
        guilds = {row[0]: row[1] for row in rows}
    return [
        JobRecord(
            job=job,
            owner_platform=owners[job.user_id][0],
            owner_user_id=owners[job.user_id][1],
            owner_name=owners[job.user_id][2],
            guild_id=guilds.get(job.guild_id) if job.guild_id is not None else None,
            images=tuple(images[job.id]),
        )
        for job in jobs
    ]


async def job_record(session: AsyncSession, job_id: str) -> JobRecord | None:
    """One job, as ``records`` bundles it, in two statements instead of four: the bots read a job for every press
    and every event they deliver (``Reading.job``)."""
    row = (await session.execute(_ONE_JOB, {"h_job": job_id})).one_or_none()
    if row is None:
        return None
    job, platform, user_id, name, guild_id = row
    images = tuple(await session.scalars(_ITS_IMAGES, {"h_job": job_id}))
    return JobRecord(
        job=job, owner_platform=platform, owner_user_id=user_id, owner_name=name, guild_id=guild_id, images=images
    )


# ``job_record``'s statements, built once: the job with its owner and server (outer: DMs and the console have none).
_ONE_JOB = (
    select(Job, User.platform, User.platform_user_id, User.display_name, Guild.platform_guild_id)
    .join(User, User.id == Job.user_id)
    .outerjoin(Guild, Guild.id == Job.guild_id)
    .where(Job.id == bindparam("h_job"))
)
_ITS_IMAGES = select(Image).where(Image.job_id == bindparam("h_job")).order_by(Image.index)


async def history(session: AsyncSession, user_id: int, search: str | None, limit: int) -> list[JobRecord]:
    """A user's jobs, newest first; ``search`` matches the prompt or its display text, case-insensitively."""
    query = select(Job).where(Job.user_id == user_id)
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                func.lower(Job.prompt).like(pattern, escape="\\"),
                func.lower(Job.display).like(pattern, escape="\\"),
            )
        )
    return await records(session, query.order_by(Job.queued_at.desc(), Job.id).limit(limit))


async def active_jobs(session: AsyncSession, user_id: int) -> list[tuple[str, str, str]]:
    """(job id, status, mode) of the user's queued and running jobs, oldest first."""
    rows = await session.execute(
        select(Job.id, Job.status, Job.mode)
        .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
        .order_by(Job.queued_at)
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def usage(session: AsyncSession, user_id: int, period: str) -> tuple[float, float]:
    """(used, reserved) GPU-seconds of a ledger period; zeros when nothing was spent in it."""
    row = (
        await session.execute(
            select(Usage.used_gpu_seconds, Usage.reserved_gpu_seconds).where(
                Usage.user_id == user_id, Usage.period == period
            )
        )
    ).one_or_none()
    return (float(row[0]), float(row[1])) if row is not None else (0.0, 0.0)


async def earlier_pick(session: AsyncSession, parent_id: str, index: int, user_id: int, action: str) -> str | None:
    """The finished pick (U#) this user already made of this image, if any: the same pick twice is one job."""
    return await session.scalar(
        select(Job.id)
        .where(
            Job.parent_id == parent_id,
            Job.action == action,
            Job.image_index == index,
            Job.user_id == user_id,
            Job.status == DONE,
        )
        .order_by(Job.queued_at)
        .limit(1)
    )


async def toggle_favorite(session: AsyncSession, job_id: str) -> None:
    await session.execute(
        update(Job).where(Job.id == job_id).values(favorite=~Job.favorite).execution_options(synchronize_session=False)
    )
