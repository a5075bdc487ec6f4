"""The SQL side of admission: what a user has in flight, the jobs of an earlier request, writing new job rows.

Quota holds are in ``ledger``, the per-user lock and the release of held jobs in ``lifecycle``; the job service calls
these inside the one transaction that admits a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage import ledger
from impasto.storage.lifecycle import ACTIVE
from impasto.storage.models import DONE, QUEUED, Guild, Image, Job, User, new_job_id


@dataclass(frozen=True)
class DoneImage:
    """An image a job is born with (U1–U4 picks: the chosen grid image, nothing rendered)."""

    index: int
    store_key: str
    width_px: int
    height_px: int


@dataclass
class NewJob:
    """A job row about to be written, with its reservation already priced (``reserved_gpu_seconds``)."""

    action: str
    prompt: str
    display: str
    params: dict[str, Any]
    seed: int
    model: str
    mode: str
    visibility: str
    reserved_gpu_seconds: float
    cost_multiplier: float
    parent_id: str | None = None
    image_index: int | None = None
    input_image_keys: list[str] = field(default_factory=list)
    done_images: list[DoneImage] = field(default_factory=list)


@dataclass(frozen=True)
class UserJobs:
    """What admission reads under the user's lock, in one statement: whether this request was admitted already, and
    the user's jobs that are active (queued or running), held (queued, not released) and in flight (released, not
    final)."""

    admitted: bool
    active: int
    held: int
    in_flight: int


async def user_jobs(session: AsyncSession, user_id: int, request_key: str) -> UserJobs:
    """``UserJobs`` of a user: call it holding the per-user lock (``lifecycle.lock_user``), in a statement of its own
    (on PostgreSQL a statement that waited for the lock would read from before the wait)."""
    row = (await (await session.connection()).execute(_USER_JOBS, {"a_user": user_id, "a_key": request_key})).one()
    return UserJobs(admitted=bool(row[0]), active=int(row[1] or 0), held=int(row[2] or 0), in_flight=int(row[3] or 0))


async def jobs_for_request(session: AsyncSession, request_key: str) -> list[Job]:
    """The jobs an earlier request with this idempotency key made, in the order it made them."""
    return list(await session.scalars(_REQUEST_JOBS, {"a_key": request_key}))


async def owner_keys(session: AsyncSession, job_id: str) -> tuple[str, str | None]:
    """("platform:user", "platform:guild" or None) of a job: the fairness keys the queue schedules by."""
    row = (
        await session.execute(
            select(User.platform, User.platform_user_id, Guild.platform, Guild.platform_guild_id)
            .join(Job, Job.user_id == User.id)
            .outerjoin(Guild, Guild.id == Job.guild_id)
            .where(Job.id == job_id)
        )
    ).one()
    guild_key = f"{row[2]}:{row[3]}" if row[2] is not None else None
    return f"{row[0]}:{row[1]}", guild_key


async def add_jobs(
    session: AsyncSession,
    new: Sequence[NewJob],
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: str | None,
    nsfw_channel: bool = False,
    locale: str | None = None,
    request_key: str,
    max_concurrent: int,
    now: datetime,
    month: str,
    day: str | None,
    release: int = 0,
) -> list[Job]:
    """Write the rows of one request (``queued``, or ``done`` for picks) and their reservations in the ledger.

    ``release``: how many of its queued jobs, first first, enter the GPU queue now (``released_at`` = ``now``); the
    rest are held. The rows are written on the session's connection (one INSERT per table, built once) and come back
    as ``Job`` objects that are not in the session: what was written, to read.
    """
    values: list[dict[str, Any]] = []
    for n, draft in enumerate(new):
        done = bool(draft.done_images)
        released = done
        if not done and release > 0:
            released, release = True, release - 1
        values.append(
            {
                "id": new_job_id(),
                "user_id": user_id,
                "guild_id": guild_id,
                "channel_id": channel_id,
                "nsfw_channel": nsfw_channel,
                "locale": locale,
                "parent_id": draft.parent_id,
                "action": draft.action,
                "image_index": draft.image_index,
                "prompt": draft.prompt,
                "display": draft.display,
                "params": draft.params,
                "input_image_keys": draft.input_image_keys,
                "seed": draft.seed,
                "model": draft.model,
                "mode": draft.mode,
                "visibility": draft.visibility,
                "status": DONE if done else QUEUED,
                "idempotency_key": f"{request_key}/{n}",
                "request_key": request_key,
                "queued_at": now,
                "started_at": now if done else None,
                "finished_at": now if done else None,
                "released_at": now if released else None,
                "reserved_gpu_seconds": draft.reserved_gpu_seconds,
                "cost_multiplier": draft.cost_multiplier,
                "max_concurrent": max_concurrent,
                "month_period": month,
                "day_period": day if draft.reserved_gpu_seconds > 0 else None,
            }
        )
    connection = await session.connection()
    await connection.execute(_INSERT_JOBS, values)
    images = [
        {
            "job_id": row["id"],
            "index": image.index,
            "store_key": image.store_key,
            "width_px": image.width_px,
            "height_px": image.height_px,
        }
        for row, draft in zip(values, new, strict=True)
        for image in draft.done_images
    ]
    if images:
        await connection.execute(_INSERT_IMAGES, images)
    reserved = [
        {"user_id": user_id, "job_id": row["id"], "kind": "reserve", "gpu_seconds": held, "period": month}
        for row in values
        if (held := row["reserved_gpu_seconds"]) > 0
    ]
    if reserved:
        await connection.execute(ledger.RECORD, reserved)
    return [Job(**row) for row in values]


# Admission's statements, built once and run on the session's connection (see ``lifecycle``'s claim and end).
_USER_JOBS = select(
    exists().where(Job.request_key == bindparam("a_key")),
    select(func.count()).where(Job.user_id == bindparam("a_user"), ACTIVE).scalar_subquery(),
    select(func.count())
    .where(Job.user_id == bindparam("a_user"), Job.status == QUEUED, Job.released_at.is_(None))
    .scalar_subquery(),
    select(func.count())
    .where(Job.user_id == bindparam("a_user"), ACTIVE, Job.released_at.is_not(None))
    .scalar_subquery(),
)
_REQUEST_JOBS = select(Job).where(Job.request_key == bindparam("a_key")).order_by(Job.idempotency_key)
_INSERT_JOBS = insert(Job)
_INSERT_IMAGES = insert(Image)
