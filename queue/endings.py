"""How a job ends on the queue's side: the SQL transition, its one terminal event, and the user's next held job.

Failing or cancelling a job is the same three moves wherever it happens (the render function, the sweep): a
conditional transition in SQL that refunds, the terminal event only if this call made the transition, then
``release_after``, which puts the user's next held jobs on the queue.

A plan allows each user some jobs *in flight* (``max_concurrent``, 3 by default); the job service admits the rest
as held in SQL (Midjourney's "Job queued") and only in-flight jobs ever reach the arq queue, so a user's fourth job
cannot start on a second GPU while their first three paint. ``storage.lifecycle.release_held`` decides, under the
per-user lock, which held jobs may go; this module puts them on the queue.

Failing and cancelling release in a transaction of their own after the one that ended the job has committed (those
transactions lock the job, then usage rows: taking the user's lock after them would invert admission's order). A
render that succeeds releases in its own settling transaction instead (``storage.lifecycle.finish_job``, called by
``queue.settle``'s caller), which takes the user's lock before any usage row; ``enqueue_released`` queues what it
released. A worker that dies between a commit and the release leaves jobs held with a free slot, and an enqueue that
fails leaves a job released in SQL but missing from Redis: the sweep (``queue.sweep``) finds and fixes both, so
neither loses a job.

**SQL away.** A worker ending the job it holds passes ``wait`` (``settle.SqlWait``): each transaction here is then
tried again until SQL answers, the job's arq lock renewed meanwhile (``settle.when_sql_answers``), so the user hears
of the end once SQL is back, not never. The sweep passes none: its transactions run once, and what fails is tried
again by the next sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.queue import events, keys
from impasto.queue.client import enqueue
from impasto.queue.contract import LANES, Lane, RenderRequest
from impasto.queue.settle import SqlWait as SqlWait  # re-exported: the worker builds one for the calls below
from impasto.queue.settle import in_transaction
from impasto.storage.lifecycle import Released, cancel_job, fail_job, release_held, user_of
from impasto.storage.models import ACTIVE_STATUSES

log = logging.getLogger("impasto.queue")

_LANE_OF_MODE: dict[str, Lane] = {lane: lane for lane in LANES}  # modes and lanes share names


async def fail(
    sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    job_id: str,
    message: str,
    *,
    ns: keys.Namespace,
    only_if: tuple[str, ...] = ACTIVE_STATUSES,
    audit: Callable[[AsyncSession], Awaitable[None]] | None = None,
    wait: SqlWait | None = None,
) -> bool:
    """Fail an active job (in one of ``only_if``) with a one-line reason for its user, refunding; False if it had
    already ended or moved on. ``audit`` writes its moderation row in the same transaction: once, with the end.
    ``wait``: the caller holds the job and waits for SQL (see the module's docstring)."""

    async def end(session: AsyncSession) -> bool:
        failed = await fail_job(session, job_id, error=message, only_if=only_if)
        if failed and audit is not None:
            await audit(session)
        return failed

    failed = await in_transaction(sessions, end, job_id=job_id, wait=wait, doing="failing it")
    if failed:
        await events.publish_final(pool, events.Failed(job_id=job_id, message=message, refunded=True), ns=ns)
        await release_after(sessions, pool, job_id, ns=ns, wait=wait)
    return failed


async def cancel(
    sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    job_id: str,
    *,
    ns: keys.Namespace,
    wait: SqlWait | None = None,
) -> bool:
    """Cancel an active job at its owner's request, refunding; False if it had already ended. ``wait``: as for
    ``fail``."""

    async def end(session: AsyncSession) -> bool:
        return await cancel_job(session, job_id)

    cancelled = await in_transaction(sessions, end, job_id=job_id, wait=wait, doing="cancelling it")
    if cancelled:
        await events.publish_final(pool, events.Cancelled(job_id=job_id, refunded=True), ns=ns)
        await release_after(sessions, pool, job_id, ns=ns, wait=wait)
    return cancelled


async def release_after(
    sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    job_id: str,
    *,
    ns: keys.Namespace,
    wait: SqlWait | None = None,
) -> list[str]:
    """A job just ended: release as many of its user's held jobs as their limit allows. Returns the ids queued.
    ``wait``: the caller holds ``job_id`` and waits for SQL (see the module's docstring)."""

    async def release(session: AsyncSession) -> list[Released]:
        # Whose job it was, then that user's lock and held jobs: one transaction (the job's owner never changes).
        user_id = await user_of(session, job_id)
        return await release_held(session, user_id) if user_id is not None else []

    released = await in_transaction(sessions, release, job_id=job_id, wait=wait, doing="releasing the user's next jobs")
    return await enqueue_released(pool, released, ns=ns)


async def release_user(
    sessions: async_sessionmaker[AsyncSession], pool: ArqRedis, user_id: int, *, ns: keys.Namespace
) -> list[str]:
    """Release as many of the user's held jobs as their limit allows and queue them. Returns the ids queued."""
    async with sessions() as session, session.begin():
        released = await release_held(session, user_id)
    return await enqueue_released(pool, released, ns=ns)


async def enqueue_released(pool: ArqRedis, released: list[Released], *, ns: keys.Namespace) -> list[str]:
    """Queue released jobs in their lanes; the "waited too long" clock starts now. Returns the ids queued.

    A failure is logged, not raised: the job stays released in SQL and the sweep queues it once Redis answers.
    """
    queued: list[str] = []
    for job in released:
        request = RenderRequest(
            job_id=job.job_id,
            lane=_LANE_OF_MODE.get(job.mode, "fast"),
            user_key=job.user_key,
            guild_key=job.guild_key,
            enqueued_at=time.time(),
        )
        try:
            await enqueue(pool, request, ns=ns)
        except Exception as exc:  # Redis down or slow: the sweep retries
            log.warning("could not queue released job %s (the sweep will retry): %s", job.job_id, exc)
            continue
        queued.append(job.job_id)
    return queued
