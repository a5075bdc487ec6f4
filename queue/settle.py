"""How the worker settles a render, and what it does while SQL is away.

**One transaction per result.** ``storage.lifecycle.finish_job`` marks the job done, writes its images, charges the
user and releases their next held jobs in one transaction (the reading of a translated prompt and the audit of a
flagged image join it). After the commit: the completion event (once-only, ``events.publish_final``), then the
released jobs go on the queue. A worker that dies between the two leaves released jobs missing from Redis; the sweep
queues them (``queue.sweep``).

**SQL away.** PostgreSQL restarting must not cost a user the picture the GPU has just painted. When SQL cannot be
reached (``unreachable``), ``when_sql_answers`` keeps the result (its images are already in the store; the rest is in
memory) and tries the same transaction again with a growing pause (``RETRY_FIRST_S`` doubling up to
``RETRY_MAX_S``), renewing arq's in-progress lock meanwhile so that neither another worker nor the sweep takes the
job. The worker has one job slot (``max_jobs=1``), so while it waits it claims nothing else. When SQL answers, the
job is settled exactly once: the transaction's UPDATE is conditional on the job being active, so even a retry whose
first commit did reach the server before the connection broke changes nothing the second time (and the event is
published from what the row says, see ``functions._reannounce``).

The claim and the other reads of a job's start wait the same way, so a worker that takes a job from Redis while SQL
is down holds it (one job, its lock renewed) until SQL answers instead of failing it.

**A job that ends otherwise.** A job the worker fails (a stalled render, an engine error, a flagged input, a refused
translation, a job that waited too long) or cancels waits the same way: the worker hands ``queue.endings`` a
``SqlWait`` (its Redis and lease), and the failing or cancelling transaction, with its audit row, is tried again
until SQL answers; its terminal event is published once after the commit, then the user's held jobs are released
(that transaction waits too), and a worker that finds its end already written (its commit reached the server
before the connection broke) announces it from the row (``functions._reannounce``, whose read waits as well). The
sweep passes no ``SqlWait``: it holds no job whose lock it could keep, so its transaction runs once and a failure is
retried by the next sweep.

Limits: the wait lasts at most arq's timeout for the job (``max_run_s + 2 × step_timeout_s``); a worker stopped
while it waits loses the result (or the end it was writing), and the sweep of a later worker fails and refunds the
job (it is left *running* with nobody holding it). A statement that fails for another reason (a bug, a constraint)
is raised as before. What a worker reads outside these paths (the place of a /describe job whose input image is
flagged, the cancellation poll, which skips a turn) does not wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger("impasto.queue")

T = TypeVar("T")

#: The first pause before trying SQL again, doubled after each failure up to ``RETRY_MAX_S``.
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0

# asyncpg raises these itself, unwrapped, when it connects (SQLSTATE classes 08 and 57: the server is starting up,
# shutting down, or the connection died); named here so that the queue does not import a driver.
_DRIVER_CONNECTION_ERRORS = frozenset({"PostgresConnectionError", "OperatorInterventionError"})


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says SQL could not be reached (refused, reset, restarting) rather than that a statement is
    wrong: only then is trying the same transaction again worth it."""
    if isinstance(exc, OSError | TimeoutError):  # ConnectionRefusedError, a reset, a connect timeout
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return any(cls.__name__ in _DRIVER_CONNECTION_ERRORS for cls in type(exc).__mro__)


@dataclass(frozen=True)
class SqlWait:
    """What a worker holding a job lends a transaction so that it waits for SQL: the Redis on which it renews the
    job's arq lock, and for how long each renewal holds (``WorkerConfig.lease_s``)."""

    redis: Redis
    lease_s: float


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    attempt: Callable[[AsyncSession], Awaitable[T]],
    *,
    job_id: str,
    wait: SqlWait | None,
    doing: str,
) -> T:
    """Run ``attempt`` in one transaction: once, raising what it raises, without ``wait`` (the sweep); with it,
    through ``when_sql_answers`` (a worker holding ``job_id``)."""
    if wait is None:
        async with sessions() as session, session.begin():
            return await attempt(session)
    return await when_sql_answers(sessions, attempt, redis=wait.redis, job_id=job_id, lease_s=wait.lease_s, doing=doing)


async def when_sql_answers(
    sessions: async_sessionmaker[AsyncSession],
    attempt: Callable[[AsyncSession], Awaitable[T]],
    *,
    redis: Redis,
    job_id: str,
    lease_s: float,
    doing: str,
) -> T:
    """Run ``attempt`` in one transaction (``sessions().begin()``) and return what it returns; while SQL is
    unreachable, keep trying with a growing pause and keep the job's arq lock alive. ``doing`` says what for, in the
    log ("settling its result")."""
    pause = RETRY_FIRST_S
    down_since: float | None = None
    while True:
        try:
            async with sessions() as session, session.begin():
                outcome = await attempt(session)
        except Exception as exc:
            if not unreachable(exc):
                raise
            if down_since is None:
                down_since = time.monotonic()
                log.warning(
                    "job %s: SQL is unreachable while %s (%s); the worker keeps the job, takes no other, and tries "
                    "again until SQL answers",
                    job_id,
                    doing,
                    type(exc).__name__,
                )
            await _pause(redis, job_id, pause, lease_s)
            pause = min(pause * 2, RETRY_MAX_S)
            continue
        if down_since is not None:
            log.warning(
                "job %s: SQL answered again after %.1f s; done %s", job_id, time.monotonic() - down_since, doing
            )
        return outcome


async def _pause(redis: Redis, job_id: str, seconds: float, lease_s: float) -> None:
    """Sleep ``seconds``, renewing the job's arq lock at least every third of the lease."""
    end = time.monotonic() + seconds
    while True:
        try:
            await redis.pexpire(in_progress_key_prefix + job_id, int(lease_s * 1000))
        except RedisError as exc:  # Redis away too: arq's own loop waits for it; the lock is renewed when it returns
            log.debug("job %s: could not renew its lock (%s)", job_id, exc)
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, lease_s / 3))
