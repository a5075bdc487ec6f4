"""The sweep: what no single job delivery can notice, checked every ``sweep_interval_s`` by one worker at a time.

A render function only runs when a worker reaches a job. Four things can go wrong where no worker will:

* **Waited too long.** A job released to the queue more than ``max_wait_s`` ago that no worker has started (every
  GPU busy, or none running) is failed with a refund and taken off the queue, so its user hears about it within a
  sweep instead of whenever a worker gets there.
* **Orphaned.** A job left *running* in SQL that no worker holds (no arq in-progress lock) and that arq will not
  retry (not in its queue: it gave up after ``max_tries`` crashes) is failed with a refund.
* **Lost.** A job released in SQL that is not in Redis at all (the process died between its SQL commit and its
  enqueue, or Redis was down then) is queued again.
* **Held with room.** A held job whose user has a free slot (a process died between ending a job and releasing the
  next) is released.

Every fix is a conditional SQL transition or an idempotent enqueue, so two sweeps, or a sweep racing a worker, do
no harm; the Redis turn (``Namespace.sweep_turn``) only saves work.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.queue import endings, keys
from impasto.queue.settings import WorkerConfig
from impasto.storage import moderation
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import Released
from impasto.storage.models import QUEUED, RUNNING, Guild, Job, User

log = logging.getLogger("impasto.queue")

#: A released job missing from Redis for this long is queued again (its enqueue may simply be a moment behind).
REQUEUE_AFTER_S = 60.0

#: At most this many jobs of each kind are handled per sweep, so one sweep stays short; the next takes the rest.
BATCH = 200
PURGE_EVERY_S = 3600  # the moderation evidence purge: once an hour is plenty


@dataclass
class SweepReport:
    expired: list[str] = field(default_factory=list)  # waited too long: failed, refunded
    orphaned: list[str] = field(default_factory=list)  # running with no worker and no retry: failed, refunded
    requeued: list[str] = field(default_factory=list)  # released but missing from Redis: queued again
    released: list[str] = field(default_factory=list)  # held jobs whose user had room: queued

    def __bool__(self) -> bool:
        return bool(self.expired or self.orphaned or self.requeued or self.released)


def waited_too_long(waited_s: float, max_wait_s: float) -> str:
    """The one-line reason a user reads when their job waited past the limit."""
    return (
        f"waited {waited_s / 60:.0f} min in the queue, longer than the {max_wait_s / 60:.0f} min limit; "
        "nothing was charged, please try again"
    )


async def sweep(
    sessions: async_sessionmaker[AsyncSession], pool: ArqRedis, config: WorkerConfig, *, now: float | None = None
) -> SweepReport:
    """One pass over the four cases above, in this order (expiring first frees slots that releasing then fills)."""
    ns = config.ns
    at = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    report = SweepReport()

    async with sessions() as session:
        stale = (
            await session.execute(
                select(Job.id, Job.released_at)
                .where(Job.status == QUEUED, Job.released_at < at - timedelta(seconds=config.max_wait_s))
                .limit(BATCH)
            )
        ).all()
    for job_id, released_at in stale:
        waited_s = (at - _aware(released_at)).total_seconds() if released_at is not None else config.max_wait_s
        message = waited_too_long(waited_s, config.max_wait_s)
        # Only while still queued: a worker that claimed it a moment ago paints it.
        if await endings.fail(sessions, pool, job_id, message, ns=ns, only_if=(QUEUED,)):
            report.expired.append(job_id)
            await _drop_from_queue(pool, job_id, ns)

    async with sessions() as session:
        running = (
            await session.execute(
                select(Job.id, Job.attempts)
                .where(Job.status == RUNNING, Job.started_at < at - timedelta(seconds=config.lease_s))
                .limit(BATCH)
            )
        ).all()
    for job_id, attempts in running:
        if await _held_by_arq(pool, job_id, ns):
            continue
        message = (
            f"the worker painting this job stopped {attempts} time{'s' if attempts != 1 else ''} and it was not "
            "retried; nothing was charged, please try again"
        )
        if await endings.fail(sessions, pool, job_id, message, ns=ns, only_if=(RUNNING,)):
            report.orphaned.append(job_id)

    async with sessions() as session:
        released = (
            await session.execute(
                select(Job.id, Job.mode, User.platform, User.platform_user_id, Guild.platform, Guild.platform_guild_id)
                .join(User, User.id == Job.user_id)
                .outerjoin(Guild, Guild.id == Job.guild_id)
                .where(Job.status == QUEUED, Job.released_at < at - timedelta(seconds=REQUEUE_AFTER_S))
                .limit(BATCH)
            )
        ).all()
    lost: list[Released] = []
    for job_id, mode, platform, user_id, guild_platform, guild_id in released:
        if await _held_by_arq(pool, job_id, ns) or await pool.exists(job_key_prefix + job_id):
            continue
        # arq refuses a job id whose result it still keeps; a job that never reached our code left one behind.
        await pool.delete(result_key_prefix + job_id)
        guild_key = f"{guild_platform}:{guild_id}" if guild_platform is not None else None
        lost.append(Released(job_id=job_id, mode=mode, user_key=f"{platform}:{user_id}", guild_key=guild_key))
    report.requeued = await endings.enqueue_released(pool, lost, ns=ns)

    async with sessions() as session:
        users = (
            await session.scalars(
                select(Job.user_id).where(Job.status == QUEUED, Job.released_at.is_(None)).distinct().limit(BATCH)
            )
        ).all()
    for owner in users:
        report.released += await endings.release_user(sessions, pool, owner, ns=ns)
    return report


async def run_sweeper(
    sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    config: WorkerConfig,
    images: ImageStore | None = None,
) -> None:
    """Sweep every ``sweep_interval_s`` (with jitter) when this worker wins the turn; runs until cancelled."""
    interval = config.sweep_interval_s
    while True:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        try:
            # One sweep per interval across all workers: the turn expires before the next one is due.
            if not await pool.set(config.ns.sweep_turn, config.name, nx=True, px=int(interval * 900)):
                continue
            report = await sweep(sessions, pool, config)
            await purge_moderation_evidence(sessions, pool, config, images)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the sweep failed; trying again in %.0f s", interval)
            continue
        if report:
            log.warning(
                "sweep: %d waited too long, %d orphaned, %d re-queued, %d held released",
                len(report.expired),
                len(report.orphaned),
                len(report.requeued),
                len(report.released),
            )


async def purge_moderation_evidence(
    sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    config: WorkerConfig,
    images: ImageStore | None = None,
) -> int:
    """Once an hour across all workers: empty the evidence of moderation audit rows past the retention (the rows
    stay) and delete the stored images of those refused or flagged jobs (``images``; approved results and pictures
    another job still shows stay). Returns how many rows were purged (0 when it was not this worker's hour)."""
    if not await pool.set(config.ns.prefix + "purge-turn", config.name, nx=True, ex=PURGE_EVERY_S):
        return 0
    async with sessions() as session, session.begin():
        purged = await moderation.purge_evidence(session, retention_days=config.moderation_retention_days)
        doomed = await moderation.evidence_image_keys(session, purged.job_ids) if images is not None else []
    deleted = 0
    for key in doomed:
        assert images is not None
        # After the commit: a file deleted for a purge that rolled back could not be brought back.
        deleted += await asyncio.to_thread(images.delete, key)
    if deleted:
        log.info("moderation: %d stored images of purged jobs deleted", deleted)
    if purged.rows:
        log.info(
            "moderation: evidence of %d audit rows past %d days purged", purged.rows, config.moderation_retention_days
        )
    return purged.rows


async def _held_by_arq(pool: ArqRedis, job_id: str, ns: keys.Namespace) -> bool:
    """A worker is on it (arq's in-progress lock) or arq will run it (it is in the queue's sorted set)."""
    if await pool.exists(in_progress_key_prefix + job_id):
        return True
    return await pool.zscore(ns.queue, job_id) is not None


async def _drop_from_queue(pool: ArqRedis, job_id: str, ns: keys.Namespace) -> None:
    # A worker that has just picked it finds the row final and does nothing; otherwise nobody needs the message.
    await pool.zrem(ns.queue, job_id)
    await pool.delete(job_key_prefix + job_id)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite hands back naive UTC
