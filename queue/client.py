"""The one way to put a render on the queue: ``enqueue(pool, request)``.

The arq job id *is* our job id, so enqueueing the same job twice is a no-op (arq checks ``arq:job:<id>`` and
``arq:result:<id>`` in a transaction), and the fair score memo makes the second call neither move the job nor count
against its user again. Pools come from ``open_pool`` so that they always speak JSON, never pickle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

from impasto.queue import events, fairness, keys
from impasto.queue.contract import RenderRequest, deserialize, serialize

#: After this long unstarted, arq drops the message itself; the worker's own "waited too long" check (which fails the
#: SQL row and refunds) fires far earlier, so this is only the last resort for an abandoned queue.
MESSAGE_TTL_S = 3 * 24 * 3600

#: Wake-up tokens kept for idle workers (``keys.Namespace.wake``): one per idle worker is all that is ever useful.
WAKE_CAP = 64
#: A token nobody took within this long is dropped (every worker polls by itself anyway).
WAKE_TTL_S = 60


@dataclass(frozen=True)
class Enqueued:
    job_id: str
    created: bool  # False: this job id was already queued (or ran recently); nothing new was queued
    position: int  # jobs ahead of it when it was queued, the ones being painted included
    score: int


async def open_pool(redis_url: str, *, ns: keys.Namespace = keys.DEFAULT) -> ArqRedis:
    """An arq pool on ``redis_url`` that serialises jobs as JSON. Close it with ``await pool.aclose()``."""
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=ns.queue,
    )


async def enqueue(pool: ArqRedis, request: RenderRequest, *, ns: keys.Namespace = keys.DEFAULT) -> Enqueued:
    """Queue one render in its lane at its fair place (in ``ns``, the deployment's queue) and announce its position."""
    if pool.job_serializer is not serialize:
        raise RuntimeError("enqueue needs a pool from impasto.queue.client.open_pool (JSON, not pickle)")
    score = await fairness.assign_score(pool, request, ns=ns)
    job = await pool.enqueue_job(
        keys.RENDER_FUNCTION,
        request.to_wire(),
        _job_id=request.job_id,
        _queue_name=ns.queue,
        # arq's score is a run-after time; ours lies in the past (see fairness), so the job is runnable at once.
        _defer_until=datetime.fromtimestamp(score / 1000, tz=UTC),
        _expires=MESSAGE_TTL_S,
    )
    if job is not None:
        await wake_workers(pool, ns=ns)  # first: the worker starts while we count the position
    ahead = await fairness.position(pool, score, ns=ns)
    if job is not None:
        await events.publish(pool, events.Queued(job_id=request.job_id, position=ahead), ns=ns)
    return Enqueued(job_id=request.job_id, created=job is not None, position=ahead, score=score)


async def wake_workers(pool: ArqRedis, *, ns: keys.Namespace = keys.DEFAULT) -> None:
    """Tell one idle worker of ``ns`` that a job is waiting, so it starts it now instead of at its next poll."""
    async with pool.pipeline(transaction=False) as pipe:
        pipe.lpush(ns.wake, b"1")
        pipe.ltrim(ns.wake, 0, WAKE_CAP - 1)
        pipe.expire(ns.wake, WAKE_TTL_S)
        await pipe.execute()


def service_enqueue(pool: ArqRedis, *, ns: keys.Namespace = keys.DEFAULT) -> Callable[[Any], Awaitable[Enqueued]]:
    """The job service's ``Enqueue`` seam: takes its ``QueuedRender`` dataclass (same fields as ``RenderRequest``)."""

    async def _enqueue(queued: Any) -> Enqueued:
        return await enqueue(pool, RenderRequest.model_validate(dataclasses.asdict(queued)), ns=ns)

    return _enqueue
