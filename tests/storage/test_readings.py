"""``record_reading``: the translated prompt lands on the job row with its completion, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.storage.lifecycle import claim_job, complete_job
from impasto.storage.models import Job, User
from impasto.storage.readings import record_reading


async def _running_job(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session, session.begin():
        user = User(platform="telegram", platform_user_id="7", display_name="lin")
        session.add(user)
        await session.flush()
        job = Job(user_id=user.id, action="imagine", prompt="一只猫", idempotency_key="r/0", request_key="r")
        session.add(job)
        await session.flush()
        job_id = job.id
    async with sessions() as session, session.begin():
        assert await claim_job(session, job_id, worker="w1") is not None
    return job_id


async def test_the_reading_is_stored_with_the_completion(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _running_job(sessions)
    async with sessions() as session, session.begin():
        assert await complete_job(session, job_id, images=[], gpu_seconds=1.0)
        await record_reading(session, job_id, read_as="a cat", translate_seconds=0.25)
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        assert (job.prompt, job.read_as, job.translate_seconds) == ("一只猫", "a cat", 0.25)


async def test_nothing_translated_leaves_the_row_alone(sessions: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _running_job(sessions)
    async with sessions() as session, session.begin():
        await record_reading(session, job_id, read_as=None, translate_seconds=0.0)
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        assert (job.read_as, job.translate_seconds) == (None, 0.0)
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="translate_seconds must be >= 0"):
            await record_reading(session, job_id, read_as="x", translate_seconds=-1.0)
