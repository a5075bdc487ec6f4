"""The worker's side of a job's life: claim, complete, fail, cancel — each safe under at-least-once delivery.

arq may deliver a job twice (a worker killed mid-job, a retry). The SQL row is the truth: every transition here is a
conditional UPDATE on the job's status, and the charge is settled or released in the same transaction as the status
change, so a duplicate delivery finds the job already final and does nothing — no second result, no second charge.

None of these functions commits; the caller owns the transaction::

    async with sessions() as session, session.begin():
        claimed = await claim_job(session, job_id, worker="gpu0")

Concurrency limits live here too. A plan allows a user a number of jobs *in flight* (in the GPU queue or painting);
the job service admits the rest as *held* (``released_at`` is NULL) and ``release_held`` hands them to the queue,
oldest first, as the user's jobs end. Failing or cancelling a job calls it in a transaction of its own after the
final transition commits: it takes the per-user lock first (as admission does), so two lock orders never meet, and a
process that dies between the two leaves held jobs that the queue's sweep releases later. A worker settling a result
does it all in one transaction (``finish_job``: job, user lock, held jobs, usage), the order its docstring explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from impasto.storage import ledger
from impasto.storage.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    DONE,
    FAILED,
    FLAGGED_IMAGE,
    PASSED_IMAGE,
    QUEUED,
    RUNNING,
    Guild,
    Image,
    Job,
    User,
    utcnow,
)


@dataclass(frozen=True)
class NewImage:
    """An image the worker has put in the ImageStore. Index 0 is a grid, 1–4 its singles; a single result is 1."""

    index: int
    key: str
    width_px: int
    height_px: int
    nsfw_score: float | None = None  # the worker's image classifier; None when none ran
    flagged: bool = False


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to render a claimed job: the stored request, and the images it starts from."""

    job_id: str
    action: str  # "imagine", "blend", or an Action value ("v", "r", "z2", "us", ...)
    image_index: int | None  # the parent image the action took (1–4), None for imagine/blend/reroll
    params: dict[str, Any]  # Job.to_json() of the command language, seed resolved
    prompt: str
    display: str
    seed: int
    model: str
    mode: str  # fast | relax | turbo
    attempt: int  # 1 on the first delivery, 2+ on a retry after a crash
    parent_id: str | None
    # The store keys to load first: for a button on a grid, the chosen single; for a single, its image; for blend,
    # the blended images. Empty for imagine (image prompts are URLs or keys inside params["image_prompts"]).
    input_image_keys: tuple[str, ...] = ()
    parent_image_keys: dict[int, str] = field(default_factory=dict)  # every image of the parent, by index
    cancel_requested: bool = False
    # What the job holds in the ledger, read with the claim: ``finish_job`` settles from it without reading the row
    # again (these columns are written at admission and never change while the job is active).
    holding: ledger.Holding | None = None


async def claim_job(session: AsyncSession, job_id: str, *, worker: str) -> ClaimedJob | None:
    """Start (or restart after a crash) a job: queued/running → running, attempts += 1.

    Returns None when the job is done, failed, cancelled or unknown: the delivery is a duplicate and must do nothing.
    """
    connection = await session.connection()
    now = utcnow()
    row = (await connection.execute(_CLAIM, {"k_job": job_id, "k_now": now, "k_worker": worker})).one_or_none()
    if row is None:
        return None
    _in_session(session, job_id, status=RUNNING, attempts=row.attempts, started_at=now, worker=worker)
    parent_images: dict[int, str] = {}
    if row.parent_id is not None:
        images = await connection.execute(_PARENT_IMAGES, {"k_parent": row.parent_id})
        parent_images = {int(index): str(key) for index, key in images}
    return ClaimedJob(
        job_id=job_id,
        action=row.action,
        image_index=row.image_index,
        params=dict(row.params),
        prompt=row.prompt,
        display=row.display,
        seed=row.seed,
        model=row.model,
        mode=row.mode,
        attempt=row.attempts,
        parent_id=row.parent_id,
        input_image_keys=tuple(row.input_image_keys),
        parent_image_keys=parent_images,
        cancel_requested=row.cancel_requested,
        holding=ledger.Holding(
            job_id,
            row.user_id,
            row.mode,
            row.reserved_gpu_seconds,
            row.month_period,
            row.day_period,
            row.cost_multiplier,
        ),
    )


@dataclass(frozen=True)
class Completed:
    """A job that ``finish_job`` moved to done: whose it was, and the held jobs its end released (the caller queues
    them after committing)."""

    user_id: int
    released: list[Released]


async def complete_job(session: AsyncSession, job_id: str, *, images: Sequence[NewImage], gpu_seconds: float) -> bool:
    """Mark the job done, store its images and settle its charge, all in the caller's one transaction.

    The charge is ``gpu_seconds × the job's cost multiplier`` (fast 1, turbo 2, relax 0). Returns False, changing
    nothing, when the job was already final: a duplicate delivery never double-charges or double-inserts.
    """
    return await finish_job(session, job_id, images=images, gpu_seconds=gpu_seconds, release=False) is not None


async def finish_job(
    session: AsyncSession,
    job_id: str,
    *,
    images: Sequence[NewImage],
    gpu_seconds: float,
    release: bool = True,
    holding: ledger.Holding | None = None,
) -> Completed | None:
    """``complete_job``, and (``release``) the release of the user's held jobs in the same transaction: the worker's
    whole settlement of a result in one transaction. None, changing nothing, when the job was already final.

    Lock order (PostgreSQL): the job row, the user row (``ledger.count_user``: the per-user lock that admission and
    ``release_held`` take), the held jobs it releases, then the usage rows. Admission takes user, usage, new rows;
    cancelling a held job takes that job, then usage; neither waits for a job this transaction holds, and usage
    comes last here, so no two orders meet.

    ``holding``: what the claim read (``ClaimedJob.holding``), which spares reading the row again.
    """
    if gpu_seconds < 0:
        raise ValueError(f"gpu_seconds must be >= 0, got {gpu_seconds}")
    connection = await session.connection()
    if holding is None:
        row = (await connection.execute(_HOLDING, {"f_job": job_id})).one_or_none()
        if row is None:
            return None
        holding = ledger.Holding(job_id, *row)
    # The reservation, multiplier and periods are written at admission and never change while the job is active, so
    # what was read is what the conditional UPDATE below settles; a concurrent end makes it change nothing.
    charge = gpu_seconds * holding.cost_multiplier
    done = {"finished_at": utcnow(), "gpu_seconds": gpu_seconds, "charged_gpu_seconds": charge}
    result = await connection.execute(
        _FINISH, {"f_job": job_id, "f_now": done["finished_at"], "f_gpu": gpu_seconds, "f_charge": charge}
    )
    if ledger.affected_rows(result) != 1:
        return None
    _in_session(session, job_id, status=DONE, reserved_gpu_seconds=0.0, **done)
    if images:
        await connection.execute(
            _INSERT_IMAGES,
            [
                {
                    "job_id": job_id,
                    "index": image.index,
                    "store_key": image.key,
                    "width_px": image.width_px,
                    "height_px": image.height_px,
                    "nsfw_score": image.nsfw_score,
                    "moderation": _moderation(image),
                }
                for image in images
            ],
        )
    singles = sum(1 for image in images if image.index >= 1)
    await ledger.count_user(session, holding.user_id, mode=holding.mode, gpu_seconds=gpu_seconds, images=singles)
    released = await release_held(session, holding.user_id, locked=True) if release else []
    await ledger.charge_usage(session, holding, charge=charge, images=singles)
    return Completed(user_id=holding.user_id, released=released)


def _moderation(image: NewImage) -> str | None:
    if image.nsfw_score is None:
        return None
    return FLAGGED_IMAGE if image.flagged else PASSED_IMAGE


async def fail_job(
    session: AsyncSession, job_id: str, *, error: str, only_if: tuple[str, ...] = ACTIVE_STATUSES
) -> bool:
    """Mark the job failed with a one-line reason and release its reservation. False if it was already final.

    ``only_if`` narrows which active statuses may fail: "waited too long" must not fail a job that a worker claimed
    a moment ago (``only_if=(QUEUED,)``).
    """
    job = await _transition(session, job_id, FAILED, only_if=only_if, error=error)
    if job is None:
        return False
    await ledger.release(session, job)
    job.reserved_gpu_seconds = 0.0
    await session.flush()
    return True


async def cancel_job(session: AsyncSession, job_id: str) -> bool:
    """Mark the job cancelled and release its reservation. False if it was already final.

    The worker calls this when it stops a running job whose cancellation was requested; the job service calls it
    for a job still queued.
    """
    job = await _transition(session, job_id, CANCELLED)
    if job is None:
        return False
    await ledger.release(session, job)
    job.reserved_gpu_seconds = 0.0
    await session.flush()
    return True


async def cancel_requested(session: AsyncSession, job_id: str) -> bool:
    """Whether the owner asked to stop this job (or it is already cancelled): the worker polls this between steps."""
    row = (await session.execute(select(Job.cancel_requested, Job.status).where(Job.id == job_id))).one_or_none()
    if row is None:
        return True  # the job row is gone: nothing is waiting for this render
    requested, status = row
    return bool(requested) or status == CANCELLED


async def request_cancel(session: AsyncSession, job_id: str) -> str | None:
    """Flag a running job for the worker, or cancel a queued one outright. Returns the status after the request."""
    queued = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    if ledger.affected_rows(queued) == 1:
        await cancel_job(session, job_id)
        return CANCELLED
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == RUNNING)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return await session.scalar(select(Job.status).where(Job.id == job_id))


@dataclass(frozen=True)
class Released:
    """A held job that may now run: what the queue needs to place it in its lane, fairly."""

    job_id: str
    mode: str  # fast | relax | turbo: the lane
    user_key: str  # "discord:1234"
    guild_key: str | None  # "discord:5678"; None in DMs and the console


async def lock_user(session: AsyncSession, user_id: int) -> None:
    """Take the per-user lock that admission and release share (SQLite: ``BEGIN IMMEDIATE`` already holds one)."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def in_flight(session: AsyncSession, user_id: int) -> int:
    """The user's jobs in the GPU queue or painting: released and not final."""
    count = await (await session.connection()).scalar(_IN_FLIGHT, {"r_user": user_id})
    return int(count or 0)


async def release_held(session: AsyncSession, user_id: int, *, locked: bool = False) -> list[Released]:
    """Release the user's held jobs, oldest first, while fewer than their limit are in flight.

    Each held job carries the limit of the plan it was admitted under. The caller enqueues what comes back after
    committing; the ``released_at`` stamp is also the start of the job's "waited too long" clock. ``locked``: the
    caller already holds the per-user lock (admission does).
    """
    if not locked:
        await lock_user(session, user_id)
    if session.new or session.dirty:
        await session.flush()  # the caller's rows (admission's new jobs) before the SELECT on the connection
    held = (await (await session.connection()).execute(_HELD, {"r_user": user_id})).all()
    if not held:
        return []
    flying = int(held[0].in_flight or 0)  # read with the held jobs (the same count on every row)
    chosen: list[Released] = []
    for row in held:
        if flying >= row.max_concurrent:
            break
        flying += 1
        guild_key = f"{row.guild_platform}:{row.platform_guild_id}" if row.guild_platform is not None else None
        chosen.append(
            Released(
                job_id=row.id, mode=row.mode, user_key=f"{row.platform}:{row.platform_user_id}", guild_key=guild_key
            )
        )
    if not chosen:
        return []
    now = utcnow()
    await (await session.connection()).execute(_RELEASE, {"r_ids": [job.job_id for job in chosen], "r_now": now})
    for job in chosen:
        # Admission reads ``released_at`` of the rows it has just added in this session: keep them in step.
        _in_session(session, job.job_id, released_at=now)
    return chosen


async def user_of(session: AsyncSession, job_id: str) -> int | None:
    """The id of the user who owns a job (None for an unknown job)."""
    return await session.scalar(select(Job.user_id).where(Job.id == job_id))


async def _transition(
    session: AsyncSession, job_id: str, status: str, *, only_if: tuple[str, ...] = ACTIVE_STATUSES, **values: Any
) -> Job | None:
    """Move an active job to a final status; None when it was not active. The row comes back reloaded."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(only_if))
        .values(status=status, finished_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if ledger.affected_rows(result) != 1:
        return None
    return (await session.scalars(select(Job).where(Job.id == job_id).execution_options(populate_existing=True))).one()


def _in_session(session: AsyncSession, job_id: str, **values: Any) -> None:
    """Show what a statement on the connection changed to a ``Job`` this session already holds (a caller that loaded
    the row before ending it reads the new values, as with the ORM's own UPDATE)."""
    job = session.sync_session.identity_map.get(identity_key(Job, job_id))
    if job is not None:
        for name, value in values.items():
            set_committed_value(job, name, value)


# "Active" spelled as equalities: ``status IN (…)`` with a list is an expanding parameter, which SQLAlchemy
# re-renders on every execution.
ACTIVE = or_(*(Job.status == status for status in ACTIVE_STATUSES))

# A job's claim and end, built once and run on the session's connection (Core): a statement built per call and run
# through the ORM costs about twice the CPU, and these run for every job (``impasto bench-service``). Bind names are
# prefixed: a bare column name is reserved for the SET clause.
# The claim returns what the worker needs (UPDATE … RETURNING: PostgreSQL, and SQLite since 3.35): one statement.
_CLAIM = (
    update(Job)
    .where(Job.id == bindparam("k_job"), ACTIVE)
    .values(status=RUNNING, attempts=Job.attempts + 1, started_at=bindparam("k_now"), worker=bindparam("k_worker"))
    .returning(
        Job.action,
        Job.image_index,
        Job.params,
        Job.prompt,
        Job.display,
        Job.seed,
        Job.model,
        Job.mode,
        Job.attempts,
        Job.parent_id,
        Job.input_image_keys,
        Job.cancel_requested,
        Job.user_id,
        Job.reserved_gpu_seconds,
        Job.month_period,
        Job.day_period,
        Job.cost_multiplier,
    )
)
_PARENT_IMAGES = select(Image.index, Image.store_key).where(Image.job_id == bindparam("k_parent")).order_by(Image.index)
_HOLDING = select(
    Job.user_id, Job.mode, Job.reserved_gpu_seconds, Job.month_period, Job.day_period, Job.cost_multiplier
).where(Job.id == bindparam("f_job"), ACTIVE)
_FINISH = (
    update(Job)
    .where(Job.id == bindparam("f_job"), ACTIVE)
    .values(
        status=DONE,
        finished_at=bindparam("f_now"),
        gpu_seconds=bindparam("f_gpu"),
        charged_gpu_seconds=bindparam("f_charge"),
        reserved_gpu_seconds=0.0,
    )
)
_INSERT_IMAGES = insert(Image)
_IN_FLIGHT = (
    select(func.count())
    .select_from(Job)
    .where(Job.user_id == bindparam("r_user"), ACTIVE, Job.released_at.is_not(None))
)
_HELD = (
    select(
        Job.id,
        Job.mode,
        Job.max_concurrent,
        User.platform,
        User.platform_user_id,
        Guild.platform.label("guild_platform"),
        Guild.platform_guild_id,
        # The user's jobs in flight, with the held ones: one statement (an uncorrelated subquery, evaluated once).
        _IN_FLIGHT.correlate(None).scalar_subquery().label("in_flight"),
    )
    .join(User, User.id == Job.user_id)
    .outerjoin(Guild, Guild.id == Job.guild_id)
    .where(Job.user_id == bindparam("r_user"), Job.status == QUEUED, Job.released_at.is_(None))
    # A prompt's permutations share queued_at; "key/2" before "key/10".
    .order_by(Job.queued_at, func.length(Job.idempotency_key), Job.idempotency_key)
)
_RELEASE = (
    update(Job)
    .where(Job.id.in_(bindparam("r_ids", expanding=True)), Job.status == QUEUED, Job.released_at.is_(None))
    .values(released_at=bindparam("r_now"))
)
