"""Cancellation between steps, engine out-of-memory, and the "running too long" watchdog — each with its refund."""

from __future__ import annotations

import asyncio

from queue_helpers import Stack
from sqlalchemy import select

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.queue.renderer import NoopRenderer
from impasto.storage.models import Job, Usage

CARA = Requester(platform="discord", user_id="4004", display_name="cara", guild_id="g9")


async def _reserved(stack: Stack) -> float:
    async with stack.sessions() as session:
        rows = (await session.execute(select(Usage.reserved_gpu_seconds, Usage.used_gpu_seconds))).all()
    assert all(used == 0 for _reserved, used in rows)
    return sum(reserved for reserved, _used in rows)


async def test_owner_cancels_a_running_job_between_steps_and_is_refunded(stack: Stack) -> None:
    since = await events.last_id(stack.pool, ns=stack.ns)
    [ticket] = await stack.service.imagine(CARA, "a slow painting", idempotency_key="c-1")
    assert await _reserved(stack) > 0
    worker = asyncio.create_task(stack.drain(NoopRenderer(steps=400, step_s=0.02), cancel_poll_s=0.1))
    async for event in events.listen(stack.pool, job_ids=[ticket.job_id], since=since, block_ms=200, ns=stack.ns):
        if isinstance(event, events.Progress):
            assert await stack.service.cancel(CARA, ticket.job_id) == "running"
            break
    await asyncio.wait_for(worker, 60)

    view = await stack.service.job(ticket.job_id)
    assert view.status == "cancelled"
    assert view.charged_gpu_seconds == 0
    assert view.images == ()
    assert await _reserved(stack) == 0
    history = await events.history(stack.pool, ticket.job_id, ns=stack.ns)
    assert [e.kind for e in history if e.final] == ["cancelled"]
    steps = [e.step for e in history if isinstance(e, events.Progress)]
    assert max(steps) < 400  # stopped between steps, long before the end


async def test_out_of_memory_is_retried_once_as_two_half_batches(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(CARA, "a big mural", idempotency_key="c-2")
    await stack.drain(NoopRenderer(max_batch=2))
    view = await stack.service.job(ticket.job_id)
    assert view.status == "done"
    assert sorted(i.index for i in view.images) == [0, 1, 2, 3, 4]
    assert view.attempts == 1


async def test_out_of_memory_twice_fails_clearly_and_refunds(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(CARA, "a bigger mural", idempotency_key="c-3")
    await stack.drain(NoopRenderer(max_batch=1))
    view = await stack.service.job(ticket.job_id)
    assert view.status == "failed"
    assert view.error is not None
    assert "out of memory" in view.error
    assert "nothing was charged" in view.error
    assert view.charged_gpu_seconds == 0
    assert await _reserved(stack) == 0
    [final] = [e for e in await events.history(stack.pool, ticket.job_id, ns=stack.ns) if e.final]
    assert isinstance(final, events.Failed)


async def test_a_render_that_stops_reporting_steps_is_stopped_and_refunded(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(CARA, "a stuck render", idempotency_key="c-4")
    # Each step takes longer than the step timeout: "running too long" without progress.
    await stack.drain(NoopRenderer(steps=3, step_s=0.6), step_timeout_s=0.3)
    view = await stack.service.job(ticket.job_id)
    assert view.status == "failed"
    assert view.error is not None
    assert "no progress" in view.error
    assert await _reserved(stack) == 0


async def test_a_job_that_waited_too_long_is_failed_and_refunded(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(CARA, "an old request", idempotency_key="c-5")
    await asyncio.sleep(0.3)
    await stack.drain(max_wait_s=0.1)
    view = await stack.service.job(ticket.job_id)
    assert view.status == "failed"
    assert view.error is not None
    assert "waited" in view.error
    assert view.attempts == 0  # never claimed, never painted
    async with stack.sessions() as session:
        assert (await session.get(Job, ticket.job_id)) is not None
    assert await _reserved(stack) == 0
