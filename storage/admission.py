"""The SQL side of admission: what a user has in flight, the jobs of an earlier request, writing new job rows.

Quota holds are in ``ledger``, the per-user lock and the release of held jobs in ``lifecycle``; the job service calls
these inside the one transaction that admits a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage import ledger
from impasto.storage.models import ACTIVE_STATUSES, DONE, QUEUED, Guild, Image, Job, User


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


async def count_active(session: AsyncSession, user_id: int) -> int:
    """The user's jobs that are queued (held or released) or running."""
    count = await session.scalar(
        select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
    )
    return int(count or 0)


async def jobs_for_request(session: AsyncSession, request_key: str) -> list[Job]:
    """The jobs an earlier request with this idempotency key made, in the order it made them."""
    return list(await session.scalars(select(Job).where(Job.request_key == request_key).order_by(Job.idempotency_key)))


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
) -> list[Job]:
    """Write the rows of one request (``queued``, or ``done`` for picks) and their reservations in the ledger."""
    rows: list[Job] = []
    for n, draft in enumerate(new):
        done = bool(draft.done_images)
        row = Job(
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            nsfw_channel=nsfw_channel,
            locale=locale,
            parent_id=draft.parent_id,
            action=draft.action,
            image_index=draft.image_index,
            prompt=draft.prompt,
            display=draft.display,
            params=draft.params,
            input_image_keys=draft.input_image_keys,
            seed=draft.seed,
            model=draft.model,
            mode=draft.mode,
            visibility=draft.visibility,
            status=DONE if done else QUEUED,
            idempotency_key=f"{request_key}/{n}",
            request_key=request_key,
            queued_at=now,
            started_at=now if done else None,
            finished_at=now if done else None,
            released_at=now if done else None,
            reserved_gpu_seconds=draft.reserved_gpu_seconds,
            cost_multiplier=draft.cost_multiplier,
            max_concurrent=max_concurrent,
            month_period=month,
            day_period=day if draft.reserved_gpu_seconds > 0 else None,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    for row, draft in zip(rows, new, strict=True):
        for image in draft.done_images:
            session.add(
                Image(
                    job_id=row.id,
                    index=image.index,
                    store_key=image.store_key,
                    width_px=image.width_px,
                    height_px=image.height_px,
                )
            )
        if row.reserved_gpu_seconds > 0:
            await ledger.record(session, row, "reserve", row.reserved_gpu_seconds, month)
    return rows
