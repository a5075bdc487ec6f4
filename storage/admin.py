"""The operator's writes and reads (``impasto admin …``): grants, plans, daily caps and one user's account.

Grants go through the same ``usage`` rows the job service's balance check reads (``used + reserved + cost <=
limit``): granting fast time lowers the month's ``used_gpu_seconds`` (below zero when the user has used less than the
grant) and revoking raises it, so admission needs no change to honour them, and every grant is a ``grant`` /
``revoke`` entry in the ledger with the operator's note. A grant is for the current month, as the plan's own fast
time is: the next month starts from the plan again.

Like every storage function these never commit: the caller owns ``async with session.begin():``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage import accounts, ledger
from impasto.storage.models import ACTIVE_STATUSES, AdminAction, Guild, Job, LedgerEntry, Usage, User, utcnow

PLATFORMS = ("discord", "telegram", "console")

GRANT = "grant"
REVOKE = "revoke"


class AdminError(ValueError):
    """An operator's request that cannot be done as asked: the message names what and why."""


def parse_account(text: str, *, what: str = "user") -> tuple[str, str]:
    """``"discord:1234"`` → ``("discord", "1234")``; the message names the form when it is not one."""
    platform, sep, ident = text.partition(":")
    platform = platform.strip().lower()
    ident = ident.strip()
    if not sep or platform not in PLATFORMS or not ident or len(ident) > 64:
        raise AdminError(
            f"{text!r} is not a {what}: write PLATFORM:ID with PLATFORM one of {', '.join(PLATFORMS)}, "
            f"e.g. discord:123456789012345678 or telegram:42"
        )
    return platform, ident


async def ensure_user(session: AsyncSession, platform: str, platform_user_id: str) -> User:
    """The user row, created when the user has never used the bot (an operator may grant before their first job)."""
    return await accounts.upsert_user(session, platform, platform_user_id)


async def find_user(session: AsyncSession, platform: str, platform_user_id: str) -> User | None:
    return await session.scalar(
        select(User).where(User.platform == platform, User.platform_user_id == platform_user_id)
    )


async def ensure_guild(session: AsyncSession, platform: str, platform_guild_id: str) -> Guild:
    return await accounts.upsert_guild(session, platform, platform_guild_id)


async def grant(
    session: AsyncSession, user: User, gpu_seconds: float, *, note: str = "", now: datetime | None = None
) -> float:
    """Give ``user`` this much more fast time this month (negative: take it back). Returns the month's new ``used``.

    The user row is locked first, as admission and settling lock it, so a grant never interleaves with a charge.
    """
    if gpu_seconds == 0:
        raise AdminError("the amount must not be 0")
    period = ledger.month_period(now or utcnow())
    await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    await ledger.ensure_usage_row(session, user.id, period)
    await session.execute(
        update(Usage)
        .where(Usage.user_id == user.id, Usage.period == period)
        .values(used_gpu_seconds=Usage.used_gpu_seconds - gpu_seconds)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        insert(LedgerEntry).values(
            user_id=user.id,
            job_id=None,
            kind=GRANT if gpu_seconds > 0 else REVOKE,
            gpu_seconds=abs(gpu_seconds),
            period=period,
            note=note[:200] or None,
            created_at=now or utcnow(),
        )
    )
    used = await session.scalar(select(Usage.used_gpu_seconds).where(Usage.user_id == user.id, Usage.period == period))
    return float(used or 0.0)


async def set_plan(session: AsyncSession, user: User, plan: str | None) -> None:
    """Give ``user`` a plan of their own (checked against the plans file by the caller); None: back to roles."""
    user.plan = plan
    await session.flush()


async def set_daily_cap(session: AsyncSession, guild: Guild, gpu_seconds: float | None) -> None:
    """Each member's fast/turbo GPU-seconds per UTC day in ``guild``; None lifts the cap."""
    if gpu_seconds is not None and gpu_seconds < 0:
        raise AdminError(f"the daily cap must be >= 0, not {gpu_seconds}")
    guild.daily_cap_gpu_seconds = gpu_seconds
    await session.flush()


async def record_action(
    session: AsyncSession, *, operator: str, command: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Write one line of the operator's audit trail (in the caller's transaction, with the change itself)."""
    session.add(
        AdminAction(at=utcnow(), operator=operator[:64], command=command, target=target[:160], detail=detail or {})
    )
    await session.flush()


async def recent_actions(session: AsyncSession, *, target: str | None = None, limit: int = 20) -> list[AdminAction]:
    """The newest audit lines first, all of them or those about one target ("discord:1234", a job id)."""
    query = select(AdminAction).order_by(AdminAction.at.desc(), AdminAction.id.desc()).limit(limit)
    if target is not None:
        query = query.where(AdminAction.target == target)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class JobLine:
    job_id: str
    queued_at: datetime
    status: str
    action: str
    mode: str
    model: str
    charged_gpu_seconds: float
    prompt: str


@dataclass(frozen=True)
class LedgerLine:
    created_at: datetime
    kind: str
    gpu_seconds: float
    period: str
    job_id: str | None
    note: str | None


@dataclass(frozen=True)
class UserReport:
    """What ``impasto admin user show`` prints: who, their plan, this month's balance, usage and latest jobs."""

    platform: str
    platform_user_id: str
    display_name: str
    plan_override: str | None
    locale: str | None
    period: str
    used_gpu_seconds: float
    reserved_gpu_seconds: float
    month_images: int
    lifetime_images: int
    lifetime_gpu_seconds: float
    relaxed_images: int
    active_jobs: int
    daily: dict[str, float]  # "2026-12-01@discord:5678" → GPU-seconds used that day in that server
    jobs: tuple[JobLine, ...]
    grants: tuple[LedgerLine, ...]


async def user_report(session: AsyncSession, user: User, *, now: datetime | None = None, limit: int = 10) -> UserReport:
    period = ledger.month_period(now or utcnow())
    usage = (
        await session.execute(
            select(Usage.used_gpu_seconds, Usage.reserved_gpu_seconds, Usage.images).where(
                Usage.user_id == user.id, Usage.period == period
            )
        )
    ).one_or_none()
    daily_rows = await session.execute(
        select(Usage.period, Usage.used_gpu_seconds).where(Usage.user_id == user.id, Usage.period.like(f"{period}-%@%"))
    )
    active = await session.scalar(
        select(func.count()).select_from(Job).where(Job.user_id == user.id, Job.status.in_(ACTIVE_STATUSES))
    )
    jobs = await session.scalars(
        select(Job).where(Job.user_id == user.id).order_by(Job.queued_at.desc(), Job.id).limit(limit)
    )
    grants = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user.id, LedgerEntry.kind.in_((GRANT, REVOKE)))
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(limit)
    )
    return UserReport(
        platform=user.platform,
        platform_user_id=user.platform_user_id,
        display_name=user.display_name,
        plan_override=user.plan,
        locale=user.locale,
        period=period,
        used_gpu_seconds=float(usage[0]) if usage else 0.0,
        reserved_gpu_seconds=float(usage[1]) if usage else 0.0,
        month_images=int(usage[2]) if usage else 0,
        lifetime_images=user.lifetime_images,
        lifetime_gpu_seconds=user.lifetime_gpu_seconds,
        relaxed_images=user.relaxed_images,
        active_jobs=int(active or 0),
        daily={str(p): float(u) for p, u in daily_rows},
        jobs=tuple(
            JobLine(
                job_id=j.id,
                queued_at=j.queued_at,
                status=j.status,
                action=j.action,
                mode=j.mode,
                model=j.model,
                charged_gpu_seconds=j.charged_gpu_seconds,
                prompt=j.display or j.prompt,
            )
            for j in jobs
        ),
        grants=tuple(
            LedgerLine(
                created_at=g.created_at,
                kind=g.kind,
                gpu_seconds=g.gpu_seconds,
                period=g.period,
                job_id=g.job_id,
                note=g.note,
            )
            for g in grants
        ),
    )
