"""``queue.settle.when_sql_answers``: which failures mean "SQL is away", and that the wait keeps the job's arq lock."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.queue import keys, settle
from impasto.queue.settle import SqlWait, in_transaction, unreachable, when_sql_answers


class CannotConnectNowError(Exception):
    """Named as asyncpg's: raised unwrapped while the server starts up."""


class OperatorInterventionError(Exception):
    pass


class StartingUp(OperatorInterventionError):
    pass


def test_what_counts_as_sql_away() -> None:
    assert unreachable(ConnectionRefusedError(111, "refused"))
    assert unreachable(TimeoutError())
    assert unreachable(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert unreachable(StartingUp("the database system is starting up"))
    assert not unreachable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not unreachable(ValueError("a bug"))
    assert not unreachable(CannotConnectNowError())  # a name alone is not enough: asyncpg's base classes decide


async def test_a_transaction_is_tried_again_until_sql_answers_and_the_lock_is_kept(
    sessions: async_sessionmaker[AsyncSession], pool: ArqRedis, ns: keys.Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settle, "RETRY_FIRST_S", 0.05)
    job_id = f"{ns.prefix}job-1"  # arq's lock key is not in the namespace: a name of this test's own
    lock = in_progress_key_prefix + job_id
    await pool.set(lock, "1", px=300)
    tries = 0

    async def attempt(session: AsyncSession) -> str:
        nonlocal tries
        tries += 1
        if tries < 4:
            raise ConnectionRefusedError(111, "refused")
        return "settled"

    try:
        settled = await when_sql_answers(sessions, attempt, redis=pool, job_id=job_id, lease_s=60, doing="testing")
        assert settled == "settled"
        assert tries == 4
        assert await pool.pttl(lock) > 1000  # renewed to the lease while it waited
    finally:
        await pool.delete(lock)


async def test_any_other_failure_is_raised_at_once(sessions: async_sessionmaker[AsyncSession], pool: ArqRedis) -> None:
    tries = 0

    async def attempt(session: AsyncSession) -> None:
        nonlocal tries
        tries += 1
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        await when_sql_answers(sessions, attempt, redis=pool, job_id="job-2", lease_s=60, doing="testing")
    assert tries == 1


async def test_without_a_wait_a_transaction_runs_once_and_with_one_it_waits(
    sessions: async_sessionmaker[AsyncSession], pool: ArqRedis, ns: keys.Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sweep ends jobs without a wait (its next pass tries again); a worker holding the job waits for SQL.
    monkeypatch.setattr(settle, "RETRY_FIRST_S", 0.05)
    tries = 0

    async def attempt(session: AsyncSession) -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise ConnectionRefusedError(111, "refused")
        return "ended"

    job_id = f"{ns.prefix}job-3"
    with pytest.raises(ConnectionRefusedError):
        await in_transaction(sessions, attempt, job_id=job_id, wait=None, doing="testing")
    assert tries == 1
    lock = in_progress_key_prefix + job_id
    await pool.set(lock, "1", px=300)
    try:
        wait = SqlWait(pool, lease_s=60)
        assert await in_transaction(sessions, attempt, job_id=job_id, wait=wait, doing="testing") == "ended"
        assert tries == 3
        assert await pool.pttl(lock) > 1000
    finally:
        await pool.delete(lock)
