"""The worker's transitions on the real databases: claim, complete, fail, cancel, and duplicate deliveries."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.storage import ledger
from impasto.storage.lifecycle import (
    NewImage,
    cancel_job,
    cancel_requested,
    claim_job,
    complete_job,
    fail_job,
    request_cancel,
)
from impasto.storage.models import Image, Job, LedgerEntry, Usage, User, utcnow

PERIOD = ledger.month_period(utcnow())


async def _queued_job(sessions: async_sessionmaker[AsyncSession], *, reserve: float = 10.0, mode: str = "fast") -> str:
    async with sessions() as session, session.begin():
        user = User(platform="discord", platform_user_id="42", display_name="ada")
        session.add(user)
        await session.flush()
        assert await ledger.try_reserve(session, user.id, PERIOD, reserve, limit=100.0)
        job = Job(
            user_id=user.id,
            action="imagine",
            prompt="a lighthouse",
            params={"width": 256},
            seed=7,
            model="tiny-sd15",
            mode=mode,
            idempotency_key="k/0",
            request_key="k",
            reserved_gpu_seconds=reserve,
            cost_multiplier={"fast": 1.0, "turbo": 2.0, "relax": 0.0}[mode],
            month_period=PERIOD,
        )
        session.add(job)
        await session.flush()
        return job.id


async def _usage(sessions: async_sessionmaker[AsyncSession]) -> tuple[float, float]:
    async with sessions() as session:
        row = (await session.execute(select(Usage.used_gpu_seconds, Usage.reserved_gpu_seconds))).one()
        return (row[0], row[1])


GRID = [NewImage(0, "a" * 64 + ".png", 512, 512), *(NewImage(i, f"{i}" * 64 + ".png", 256, 256) for i in range(1, 5))]


async def test_claim_complete_settles_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _queued_job(sessions, mode="turbo")
    async with sessions() as session, session.begin():
        claimed = await claim_job(session, job_id, worker="w1")
    assert claimed is not None
    assert (claimed.attempt, claimed.action, claimed.seed, claimed.mode) == (1, "imagine", 7, "turbo")
    assert claimed.params == {"width": 256}
    # What the settlement needs is read with the claim (no second read of the row).
    assert claimed.holding is not None
    assert (claimed.holding.cost_multiplier, claimed.holding.month_period) == (2.0, PERIOD)

    # A crash-retry claims the running job again.
    async with sessions() as session, session.begin():
        again = await claim_job(session, job_id, worker="w2")
    assert again is not None
    assert again.attempt == 2

    async with sessions() as session, session.begin():
        assert await complete_job(session, job_id, images=GRID, gpu_seconds=3.0)
    # The duplicate delivery: no images, no charge, no claim.
    async with sessions() as session, session.begin():
        assert not await complete_job(session, job_id, images=GRID, gpu_seconds=3.0)
        assert await claim_job(session, job_id, worker="w3") is None
        assert not await fail_job(session, job_id, error="late")

    assert await _usage(sessions) == (6.0, 0.0)  # turbo: 2 × 3 s, the 10 s hold released
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Image)) == 5
        user = (await session.scalars(select(User))).one()
        assert (user.lifetime_images, user.lifetime_gpu_seconds) == (4, 3.0)
        job = await session.get(Job, job_id)
        assert job is not None
        assert job.status == "done"
        assert job.charged_gpu_seconds == 6.0
        kinds = sorted(await session.scalars(select(LedgerEntry.kind)))
        assert kinds == ["settle"]


async def test_fail_releases_the_reservation(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _queued_job(sessions)
    async with sessions() as session, session.begin():
        assert await claim_job(session, job_id, worker="w1") is not None
        assert await fail_job(session, job_id, error="out of memory")
    async with sessions() as session, session.begin():
        assert not await fail_job(session, job_id, error="again")
        assert not await complete_job(session, job_id, images=GRID, gpu_seconds=1.0)
    assert await _usage(sessions) == (0.0, 0.0)
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.error) == ("failed", "out of memory")


async def test_cancel_running_is_a_flag_then_the_worker_cancels(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _queued_job(sessions)
    async with sessions() as session, session.begin():
        await claim_job(session, job_id, worker="w1")
        assert not await cancel_requested(session, job_id)
        assert await request_cancel(session, job_id) == "running"
        assert await cancel_requested(session, job_id)
    async with sessions() as session, session.begin():
        assert await cancel_job(session, job_id)
        assert not await cancel_job(session, job_id)
    assert await _usage(sessions) == (0.0, 0.0)


async def test_cancel_queued_refunds_and_claim_then_does_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _queued_job(sessions)
    async with sessions() as session, session.begin():
        assert await request_cancel(session, job_id) == "cancelled"
    async with sessions() as session, session.begin():
        assert await claim_job(session, job_id, worker="w1") is None
    assert await _usage(sessions) == (0.0, 0.0)


async def test_reservation_never_passes_the_limit(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        user = User(platform="telegram", platform_user_id="1")
        session.add(user)
        await session.flush()
        assert await ledger.try_reserve(session, user.id, PERIOD, 60.0, limit=100.0)
        assert not await ledger.try_reserve(session, user.id, PERIOD, 60.0, limit=100.0)
        assert await ledger.try_reserve(session, user.id, PERIOD, 40.0, limit=100.0)


async def test_relax_is_free_and_counted_as_relaxed_usage(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _queued_job(sessions, reserve=0.0, mode="relax")
    async with sessions() as session, session.begin():
        await claim_job(session, job_id, worker="w1")
        assert await complete_job(session, job_id, images=GRID, gpu_seconds=5.0)
    assert await _usage(sessions) == (0.0, 0.0)
    async with sessions() as session:
        user = (await session.scalars(select(User))).one()
        assert (user.relaxed_images, user.relaxed_gpu_seconds) == (4, 5.0)
        assert (user.lifetime_images, user.lifetime_gpu_seconds) == (4, 5.0)
        job = await session.get(Job, job_id)
        assert job is not None
        assert (job.gpu_seconds, job.charged_gpu_seconds) == (5.0, 0.0)


async def test_negative_gpu_seconds_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _queued_job(sessions)
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="gpu_seconds"):
            await complete_job(session, job_id, images=GRID, gpu_seconds=-1.0)
