"""At-least-once delivery: the same job enqueued twice runs once; a re-delivery of a finished job does nothing."""

from __future__ import annotations

import time

from arq.constants import result_key_prefix
from queue_helpers import Stack
from sqlalchemy import func, select

from impasto.bots.service.requester import Requester
from impasto.queue import events, keys
from impasto.queue.client import enqueue
from impasto.queue.contract import RenderRequest
from impasto.storage.models import Job, LedgerEntry

BOB = Requester(platform="telegram", user_id="2002", display_name="bob")


async def _settles(stack: Stack, job_id: str) -> int:
    async with stack.sessions() as session:
        count = await session.scalar(
            select(func.count()).where(LedgerEntry.job_id == job_id, LedgerEntry.kind == "settle")
        )
    return int(count or 0)


async def test_same_job_enqueued_twice_runs_once(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(BOB, "a teapot", idempotency_key="d-1")
    again = RenderRequest(job_id=ticket.job_id, lane="fast", user_key="telegram:2002", enqueued_at=time.time())
    second = await enqueue(stack.pool, again, ns=stack.ns)
    assert not second.created
    assert await stack.pool.zcard(stack.ns.queue) == 1

    await stack.drain()
    async with stack.sessions() as session:
        job = await session.get(Job, ticket.job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("done", 1)
    assert await _settles(stack, ticket.job_id) == 1
    # Still remembered after it ran (arq keeps the result): a late duplicate is not queued again.
    assert not (await enqueue(stack.pool, again, ns=stack.ns)).created


async def test_redelivery_of_a_finished_job_renders_nothing_and_announces_nothing(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(BOB, "a kettle", idempotency_key="d-2")
    await stack.drain()
    # Forget arq's result so the queue accepts the id again: the SQL row is what must stop the second run.
    await stack.pool.delete(result_key_prefix + ticket.job_id)
    request = RenderRequest(job_id=ticket.job_id, lane="fast", user_key="telegram:2002", enqueued_at=time.time())
    assert (await enqueue(stack.pool, request, ns=stack.ns)).created
    await stack.drain()

    async with stack.sessions() as session:
        job = await session.get(Job, ticket.job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("done", 1)
    assert await _settles(stack, ticket.job_id) == 1
    kinds = [e.kind for e in await events.history(stack.pool, ticket.job_id, ns=stack.ns)]
    assert kinds.count("done") == 1
    assert kinds.count("started") == 1


async def test_a_message_from_another_contract_version_fails_the_job_clearly(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(BOB, "a desk", idempotency_key="d-3")
    # Replace the queued message by one from a future release.
    await stack.pool.delete(f"arq:job:{ticket.job_id}")
    await stack.pool.zrem(stack.ns.queue, ticket.job_id)
    await stack.pool.enqueue_job(
        keys.RENDER_FUNCTION,
        {"version": 99, "job_id": ticket.job_id},
        _job_id=ticket.job_id,
        _queue_name=stack.ns.queue,
    )
    await stack.drain()
    view = await stack.service.job(ticket.job_id)
    assert view.status == "failed"
    assert view.error is not None
    assert "contract version 99" in view.error
    [final] = [e for e in await events.history(stack.pool, ticket.job_id, ns=stack.ns) if e.final]
    assert isinstance(final, events.Failed)
