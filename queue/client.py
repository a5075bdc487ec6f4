"""The one way to put a render on the queue: ``enqueue(pool, request)``.

The arq job id *is* our job id, so enqueueing the same job twice is a no-op (``arq:job:<id>`` and ``arq:result:<id>``
are checked in the script that queues it, as arq's ``enqueue_job`` checks them in a transaction), and the fair score
memo makes the second call neither move the job nor count against its user again. Pools come from ``open_pool`` so
that they always speak JSON, never pickle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

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
    """Queue one render in its lane at its fair place (in ``ns``, the deployment's queue) and announce its position.

    One Redis command (``_ENQUEUE``): the fair score, arq's own enqueue (the message under ``arq:job:<id>`` unless
    that or ``arq:result:<id>`` exists, and the queue entry), the wake-up token, the position and the ``Queued``
    event, atomically. EVAL, not a registered script: see ``fairness.add_job_started``.
    """
    if pool.job_serializer is not serialize:
        raise RuntimeError("enqueue needs a pool from impasto.queue.client.open_pool (JSON, not pickle)")
    message = serialize_job(keys.RENDER_FUNCTION, (request.to_wire(),), {}, None, timestamp_ms(), serializer=serialize)
    script_keys, args = fairness.assign_keys(request, ns=ns)
    score_raw, ahead, created = await cast(Any, pool).eval(
        _ENQUEUE,
        len(script_keys) + 5,
        *script_keys,
        job_key_prefix + request.job_id,
        result_key_prefix + request.job_id,
        ns.queue,
        ns.wake,
        ns.events,
        *args,
        request.job_id,
        message,
        str(MESSAGE_TTL_S * 1000),
        str(WAKE_CAP - 1),
        str(WAKE_TTL_S),
        str(events.STREAM_MAXLEN),
    )
    # The score is arq's run-after time; ours lies in the past (see fairness), so the job is runnable at once.
    score = int(float(score_raw))
    return Enqueued(job_id=request.job_id, created=bool(created), position=int(ahead), score=score)


# KEYS 1–4 and ARGV 1–3: ``fairness.ASSIGN_FRAGMENT``'s. KEYS 5–9: arq's job and result keys, the queue, the wake-up
# list, the event stream. ARGV 4–9: the job id, arq's message, its TTL (ms), the wake-up list's last index and TTL,
# the stream's MAXLEN. The ``Queued`` event is written as ``events.add_positions`` writes them.
_ENQUEUE = (
    fairness.ASSIGN_FRAGMENT
    + """
local ahead = 0
if redis.call('EXISTS', KEYS[5], KEYS[6]) > 0 then
  ahead = redis.call('ZCOUNT', KEYS[7], '-inf', '(' .. score)
  return {score, ahead, 0}
end
redis.call('PSETEX', KEYS[5], ARGV[6], ARGV[5])
redis.call('ZADD', KEYS[7], score, ARGV[4])
redis.call('LPUSH', KEYS[8], '1')
redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[7]))
redis.call('EXPIRE', KEYS[8], tonumber(ARGV[8]))
ahead = redis.call('ZCOUNT', KEYS[7], '-inf', '(' .. score)
local data = cjson.encode({job_id = ARGV[4], kind = 'queued', position = ahead})
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[9], '*', 'job', ARGV[4], 'kind', 'queued', 'data', data)
return {score, ahead, 1}
"""
)


def service_enqueue(pool: ArqRedis, *, ns: keys.Namespace = keys.DEFAULT) -> Callable[[Any], Awaitable[Enqueued]]:
    """The job service's ``Enqueue`` seam: takes its ``QueuedRender`` dataclass (same fields as ``RenderRequest``)."""

    async def _enqueue(queued: Any) -> Enqueued:
        return await enqueue(pool, RenderRequest.model_validate(dataclasses.asdict(queued)), ns=ns)

    return _enqueue
