"""What an operator wants to know about the queue right now (``impasto status``), read from Redis and SQL.

Redis says what waits for a GPU (per lane) and what a worker holds; SQL says what is held behind its user's
concurrency limit, how long the oldest waiting job has waited, which workers are painting, and how the last 24 hours
went. Read-only: nothing here changes a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.queue import keys
from impasto.queue.contract import LANES
from impasto.queue.fairness import LANE_BASE_SCORE
from impasto.storage.models import DONE, FAILED, QUEUED, RUNNING, Job


@dataclass
class QueueStatus:
    namespace: str
    waiting: dict[str, int] = field(default_factory=dict)  # lane -> jobs on the arq queue no worker holds
    in_progress: int = 0  # jobs a worker holds (arq's in-progress lock)
    held: int = 0  # jobs waiting for their user's own jobs (over the plan's concurrency limit), not on the queue
    held_users: int = 0
    oldest_wait_s: float | None = None  # the longest a released, still queued job has waited
    painting: dict[str, int] = field(default_factory=dict)  # worker name -> running jobs (SQL)
    last_day: dict[str, int] = field(default_factory=dict)  # done / failed in the last 24 hours

    def lines(self) -> list[str]:
        """The status as a few plain lines for a terminal."""
        lanes = ", ".join(f"{lane} {self.waiting.get(lane, 0)}" for lane in LANES)
        out = [
            f"queue {self.namespace}queue: {sum(self.waiting.values())} waiting for a GPU ({lanes}), "
            f"{self.in_progress} held by a worker",
            f"held behind their user's concurrency limit: {self.held} job(s) of {self.held_users} user(s)",
        ]
        if self.oldest_wait_s is not None:
            out.append(f"longest wait so far: {self.oldest_wait_s:.0f} s")
        if self.painting:
            out.append("painting: " + ", ".join(f"{name} ({n})" for name, n in sorted(self.painting.items())))
        else:
            out.append("painting: nothing")
        out.append(f"last 24 h: {self.last_day.get(DONE, 0)} done, {self.last_day.get(FAILED, 0)} failed")
        return out


def lane_of_score(score: float) -> str | None:
    """The lane whose score band holds ``score`` (see ``fairness``); None for a score outside every band."""
    for lane in reversed(LANES):
        base = LANE_BASE_SCORE[lane]
        if base <= score < base + 100_000_000_000:
            return lane
    return None


async def queue_status(
    pool: ArqRedis, sessions: async_sessionmaker[AsyncSession], *, ns: keys.Namespace = keys.DEFAULT
) -> QueueStatus:
    status = QueueStatus(namespace=ns.prefix, waiting=dict.fromkeys(LANES, 0))
    entries = await pool.zrange(ns.queue, 0, -1, withscores=True)
    async with pool.pipeline(transaction=False) as pipe:
        for raw, _score in entries:
            pipe.exists(in_progress_key_prefix + (raw.decode() if isinstance(raw, bytes) else str(raw)))
        held_by_worker = await pipe.execute()
    for (_raw, score), taken in zip(entries, held_by_worker, strict=True):
        if taken:
            status.in_progress += 1
            continue
        lane = lane_of_score(score) or "other"
        status.waiting[lane] = status.waiting.get(lane, 0) + 1

    now = datetime.now(UTC)
    async with sessions() as session:
        held = (
            await session.execute(
                select(func.count(), func.count(func.distinct(Job.user_id))).where(
                    Job.status == QUEUED, Job.released_at.is_(None)
                )
            )
        ).one()
        status.held, status.held_users = int(held[0]), int(held[1])
        oldest = await session.scalar(
            select(func.min(Job.released_at)).where(Job.status == QUEUED, Job.released_at.is_not(None))
        )
        if oldest is not None:
            oldest = oldest if oldest.tzinfo is not None else oldest.replace(tzinfo=UTC)  # SQLite: naive UTC
            status.oldest_wait_s = max(0.0, (now - oldest).total_seconds())
        rows = await session.execute(select(Job.worker, func.count()).where(Job.status == RUNNING).group_by(Job.worker))
        status.painting = {str(name or "?"): int(n) for name, n in rows}
        rows = await session.execute(
            select(Job.status, func.count())
            .where(Job.status.in_((DONE, FAILED)), Job.finished_at >= now - timedelta(days=1))
            .group_by(Job.status)
        )
        status.last_day = {str(name): int(n) for name, n in rows}
    return status
