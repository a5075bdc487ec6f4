"""The usage ledger: reserve GPU time on enqueue, settle it on success, release it on failure or cancel.

Every balance change is one atomic SQL statement on a ``usage`` row, conditional where it must refuse
(``used + reserved + cost <= limit``): on PostgreSQL the row lock makes concurrent requests queue and re-check, on
SQLite the single writer does. A job's reservation is written on the job row itself, so settling or releasing twice
is impossible once the job's status has moved (the caller changes the status in the same transaction).
These functions never commit: the caller owns ``async with session.begin():``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, case, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage.models import Job, LedgerEntry, Usage, User
from impasto.storage.upsert import insert_ignore


def month_period(now: datetime) -> str:
    """The monthly fast-time period of a UTC instant: "2026-11"."""
    return now.strftime("%Y-%m")


def day_period(now: datetime, guild_key: str) -> str:
    """A guild's daily-cap period for one user: "2026-11-22@discord:1234"."""
    return f"{now.strftime('%Y-%m-%d')}@{guild_key}"


async def ensure_usage_row(session: AsyncSession, user_id: int, period: str) -> None:
    """Create the (user, period) row if missing, without racing a concurrent creator."""
    values = {"user_id": user_id, "period": period, "used_gpu_seconds": 0.0, "reserved_gpu_seconds": 0.0, "images": 0}
    await insert_ignore(session, Usage, values, columns=["user_id", "period"])


async def try_reserve(session: AsyncSession, user_id: int, period: str, gpu_seconds: float, limit: float) -> bool:
    """Hold ``gpu_seconds`` in ``period`` if it fits under ``limit``; False (and nothing held) when it does not."""
    connection = await session.connection()
    values = {"t_user": user_id, "t_period": period, "t_cost": gpu_seconds, "t_limit": limit}
    # The row almost always exists (the period's first reservation wrote it): one UPDATE. When it changed nothing,
    # the row is missing or the cost does not fit: create the row if missing, and ask once more.
    if affected_rows(await connection.execute(_RESERVE, values)) == 1:
        return True
    await ensure_usage_row(session, user_id, period)
    return affected_rows(await connection.execute(_RESERVE, values)) == 1


@dataclass(frozen=True)
class Holding:
    """What an active job holds in the ledger, as its row says: enough to settle or release it without loading the
    whole ``Job`` (``storage.lifecycle`` reads these columns alone on the worker's hot path)."""

    job_id: str
    user_id: int
    mode: str
    reserved_gpu_seconds: float
    month_period: str
    day_period: str | None
    cost_multiplier: float = 1.0  # what a GPU second costs this job (fast 1, turbo 2, relax 0)

    @classmethod
    def of(cls, job: Job) -> Holding:
        return cls(
            job.id,
            job.user_id,
            job.mode,
            job.reserved_gpu_seconds,
            job.month_period,
            job.day_period,
            job.cost_multiplier,
        )


async def record(session: AsyncSession, job: Job | Holding, kind: str, gpu_seconds: float, period: str) -> None:
    job_id = job.job_id if isinstance(job, Holding) else job.id
    values = {"user_id": job.user_id, "job_id": job_id, "kind": kind, "gpu_seconds": gpu_seconds, "period": period}
    await (await session.connection()).execute(RECORD, values)


async def release(session: AsyncSession, job: Job | Holding) -> None:
    """Give back what ``job`` held. Call only in the transaction that moved the job to failed/cancelled."""
    holding = job if isinstance(job, Holding) else Holding.of(job)
    held = holding.reserved_gpu_seconds
    if held <= 0:
        return
    for period in _periods(holding):
        await _add(session, holding.user_id, period, reserved=-held)
    await record(session, holding, "release", held, holding.month_period)


async def count_user(session: AsyncSession, user_id: int, *, mode: str, gpu_seconds: float, images: int) -> None:
    """Add a finished job to its user's lifetime (and relaxed) totals. This UPDATE takes the user's row lock: call it
    before touching any ``usage`` row (the lock order admission uses: user, then usage)."""
    relaxed = mode == "relax"
    values = {
        "c_user": user_id,
        "c_images": images,
        "c_gpu": gpu_seconds,
        "c_relaxed_images": images if relaxed else 0,
        "c_relaxed_gpu": gpu_seconds if relaxed else 0.0,
    }
    await (await session.connection()).execute(_COUNT_USER, values)


async def charge_usage(session: AsyncSession, holding: Holding, *, charge: float, images: int) -> None:
    """Turn the reservation into the real charge on the usage rows and write the ledger entry. Call only in the
    transaction that set the job done, after ``count_user`` (which holds the user's lock)."""
    held = holding.reserved_gpu_seconds
    for period in _periods(holding):
        await _add(session, holding.user_id, period, reserved=-held, used=charge, images=images)
    if charge > 0 or held > 0:
        await record(session, holding, "settle", charge, holding.month_period)


async def settle(session: AsyncSession, job: Job | Holding, *, gpu_seconds: float, charge: float, images: int) -> None:
    """Turn the reservation into the real charge and count the images. Call only in the transaction that set done."""
    holding = job if isinstance(job, Holding) else Holding.of(job)
    # Lock order: the user row before the usage rows, as admission takes them (the job service locks the user row
    # first). The opposite order would let a settle and an admission for the same user deadlock on PostgreSQL.
    await count_user(session, holding.user_id, mode=holding.mode, gpu_seconds=gpu_seconds, images=images)
    await charge_usage(session, holding, charge=charge, images=images)


def _periods(job: Holding) -> list[str]:
    periods = [job.month_period] if job.month_period else []
    if job.day_period:
        periods.append(job.day_period)
    return periods


async def _add(
    session: AsyncSession, user_id: int, period: str, *, reserved: float = 0.0, used: float = 0.0, images: int = 0
) -> None:
    connection = await session.connection()
    values = {"a_user": user_id, "a_period": period, "a_reserved": reserved, "a_used": used, "a_images": images}
    # The row almost always exists (the reservation wrote it): one UPDATE; create it only when that changed nothing.
    if affected_rows(await connection.execute(_ADD_USAGE, values)) == 1:
        return
    await ensure_usage_row(session, user_id, period)
    await connection.execute(_ADD_USAGE, values)


def _max0(expr: ColumnElement[float]) -> ColumnElement[float]:
    return case((expr < 0, 0.0), else_=expr)


def affected_rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


# The statements of a job's end, built once and run on the session's connection: a statement built per call and run
# through the ORM costs about twice the CPU, and these run for every job (``impasto bench-service``).
RECORD = insert(LedgerEntry)
_COUNT_USER = (
    update(User)
    .where(User.id == bindparam("c_user"))
    .values(
        lifetime_images=User.lifetime_images + bindparam("c_images"),
        lifetime_gpu_seconds=User.lifetime_gpu_seconds + bindparam("c_gpu"),
        relaxed_images=User.relaxed_images + bindparam("c_relaxed_images"),
        relaxed_gpu_seconds=User.relaxed_gpu_seconds + bindparam("c_relaxed_gpu"),
    )
)
_RESERVE = (
    update(Usage)
    .where(
        Usage.user_id == bindparam("t_user"),
        Usage.period == bindparam("t_period"),
        Usage.used_gpu_seconds + Usage.reserved_gpu_seconds + bindparam("t_cost") <= bindparam("t_limit"),
    )
    .values(reserved_gpu_seconds=Usage.reserved_gpu_seconds + bindparam("t_cost"))
)
_ADD_USAGE = (
    update(Usage)
    .where(Usage.user_id == bindparam("a_user"), Usage.period == bindparam("a_period"))
    .values(
        # Floating-point sums of reservations can leave -1e-12 behind; never show a negative hold.
        reserved_gpu_seconds=_max0(Usage.reserved_gpu_seconds + bindparam("a_reserved")),
        used_gpu_seconds=Usage.used_gpu_seconds + bindparam("a_used"),
        images=Usage.images + bindparam("a_images"),
    )
)
