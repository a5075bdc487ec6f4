"""Held jobs in SQL (the plan's concurrency limit), on both databases: who is released, in which order, atomically."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.storage.lifecycle import Released, claim_job, fail_job, finish_job, in_flight, release_held
from impasto.storage.models import Guild, Job, LedgerEntry, User, utcnow

Sessions = async_sessionmaker[AsyncSession]


async def _user_with_jobs(
    sessions: Sessions, *, flying: int, held: int, limit: int = 3, guild: bool = True
) -> tuple[int, list[str]]:
    """A user with ``flying`` released jobs and then ``held`` held ones from one request (ids in admission order)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        user = User(platform="discord", platform_user_id="42", display_name="ada")
        session.add(user)
        server = Guild(platform="discord", platform_guild_id="777") if guild else None
        if server is not None:
            session.add(server)
        await session.flush()
        jobs = []
        for n in range(flying + held):
            job = Job(
                user_id=user.id,
                guild_id=server.id if server is not None else None,
                action="imagine",
                mode="relax" if n % 2 else "fast",
                idempotency_key=f"k/{n}",
                request_key="k",
                queued_at=now + timedelta(seconds=0 if n >= flying else -60),
                released_at=now if n < flying else None,
                max_concurrent=limit,
            )
            session.add(job)
            jobs.append(job)
        await session.flush()
        return user.id, [job.id for job in jobs]


async def test_release_takes_the_oldest_held_jobs_up_to_the_limit(sessions: Sessions) -> None:
    user_id, ids = await _user_with_jobs(sessions, flying=0, held=12)
    async with sessions() as session, session.begin():
        released = await release_held(session, user_id)
    # "k/0", "k/1", "k/2": numeric order within a request, not "k/10" before "k/2".
    assert released == [
        Released(job_id=ids[n], mode="relax" if n % 2 else "fast", user_key="discord:42", guild_key="discord:777")
        for n in range(3)
    ]
    async with sessions() as session, session.begin():
        assert await release_held(session, user_id) == []  # full: nothing more
        assert await in_flight(session, user_id) == 3


async def test_an_ended_job_frees_exactly_its_slot(sessions: Sessions) -> None:
    user_id, ids = await _user_with_jobs(sessions, flying=3, held=2, guild=False)
    async with sessions() as session, session.begin():
        assert await release_held(session, user_id) == []
        assert await fail_job(session, ids[0], error="boom")
    async with sessions() as session, session.begin():
        [released] = await release_held(session, user_id)
    assert (released.job_id, released.guild_key) == (ids[3], None)


async def test_concurrent_releases_never_pass_the_limit(sessions: Sessions) -> None:
    """Two workers ending two jobs of one user at once, and sweeps beside them: eight racing releases."""
    user_id, ids = await _user_with_jobs(sessions, flying=3, held=5)
    async with sessions() as session, session.begin():
        assert await fail_job(session, ids[0], error="one")
        assert await fail_job(session, ids[1], error="two")

    async def release() -> list[Released]:
        async with sessions() as session, session.begin():
            return await release_held(session, user_id)

    results = await asyncio.gather(*(release() for _ in range(8)))
    released = [job.job_id for batch in results for job in batch]
    assert sorted(released) == sorted(ids[3:5])  # exactly the two oldest held, each once
    async with sessions() as session:
        assert await in_flight(session, user_id) == 3


async def test_a_held_job_keeps_the_limit_of_the_plan_it_was_admitted_under(sessions: Sessions) -> None:
    user_id, ids = await _user_with_jobs(sessions, flying=0, held=3, limit=1)
    async with sessions() as session, session.begin():
        assert [job.job_id for job in await release_held(session, user_id)] == [ids[0]]


async def test_waited_too_long_never_fails_a_job_a_worker_just_claimed(sessions: Sessions) -> None:
    _user_id, [job_id] = await _user_with_jobs(sessions, flying=1, held=0)
    async with sessions() as session, session.begin():
        assert await claim_job(session, job_id, worker="w1") is not None
    async with sessions() as session, session.begin():
        assert not await fail_job(session, job_id, error="waited too long", only_if=("queued",))
        job = await session.get(Job, job_id)
        assert job is not None
        assert job.status == "running"


async def test_settling_a_result_releases_the_next_held_job_in_the_same_transaction(sessions: Sessions) -> None:
    user_id, ids = await _user_with_jobs(sessions, flying=3, held=2)
    async with sessions() as session, session.begin():
        completed = await finish_job(session, ids[0], images=[], gpu_seconds=2.0)
    assert completed is not None
    assert (completed.user_id, [job.job_id for job in completed.released]) == (user_id, [ids[3]])
    async with sessions() as session, session.begin():
        assert await finish_job(session, ids[0], images=[], gpu_seconds=2.0) is None  # a duplicate: nothing again
        assert await in_flight(session, user_id) == 3


async def test_concurrent_settlements_and_releases_never_pass_the_limit_nor_settle_twice(sessions: Sessions) -> None:
    """Two workers settling two jobs of one user at once (each twice: a duplicate delivery), sweeps beside them."""
    user_id, ids = await _user_with_jobs(sessions, flying=3, held=4)

    async def settle(job_id: str) -> list[Released]:
        async with sessions() as session, session.begin():
            completed = await finish_job(session, job_id, images=[], gpu_seconds=1.0)
        return completed.released if completed is not None else []

    async def release() -> list[Released]:
        async with sessions() as session, session.begin():
            return await release_held(session, user_id)

    results = await asyncio.gather(*(settle(i) for i in ids[:2] * 2), *(release() for _ in range(4)))
    released = [job.job_id for batch in results for job in batch]
    assert sorted(released) == sorted(ids[3:5])  # the two oldest held, each once
    async with sessions() as session:
        assert await in_flight(session, user_id) == 3
        settled = await session.scalars(select(LedgerEntry.job_id).where(LedgerEntry.kind == "settle"))
        assert sorted(settled.all()) == sorted(ids[:2])  # one charge each
