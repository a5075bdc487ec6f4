"""Telling "the queue is stalled" from "the queue is busy": has any worker of a namespace taken a job lately?

A waiting job on a busy deployment and one on a deployment with no worker look the same from its own events. The
queue itself tells them apart: over a window, a live worker either holds a job (arq's in-progress key) or takes one
(it leaves the queue when done). ``impasto imagine`` uses this to say "is `impasto worker` running?" instead of
waiting at "queued" forever.
"""

from __future__ import annotations

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from impasto.queue import keys

#: How many of the next jobs are looked at: enough to see a worker take one, bounded for a very long queue.
SAMPLE = 1000


async def waiting_jobs(pool: ArqRedis, ns: keys.Namespace) -> frozenset[str]:
    """The next jobs in the namespace's queue (the ones a worker would take first)."""
    return frozenset(j.decode() if isinstance(j, bytes) else str(j) for j in await pool.zrange(ns.queue, 0, SAMPLE - 1))


async def nothing_taken_since(pool: ArqRedis, ns: keys.Namespace, before: frozenset[str]) -> bool:
    """True when ``before`` (``waiting_jobs`` then) was not empty, all of it still waits, and no job is held."""
    if not before:
        return False
    now = await waiting_jobs(pool, ns)
    if not before <= now:
        return False  # a job left the queue: a worker finished it
    held = await pool.exists(*(in_progress_key_prefix + job_id for job_id in now))
    return int(held) == 0
