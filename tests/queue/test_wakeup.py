"""No idle gaps: a worker whose poll delay is two minutes still starts a queued job, and each next job, at once.

The poll delay is set far beyond the tests' deadlines, so the only way these jobs finish in time is the wake-up list
(an idle worker) or the worker looking for the next job the moment one ends (a busy one). Nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from queue_helpers import TEST_REDIS_URL, Stack, close_worker

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.queue.client import WAKE_CAP
from impasto.queue.worker import ImpastoWorker, build_worker

EVE = Requester(platform="discord", user_id="7007", display_name="eve", guild_id="g7")
FRED = Requester(platform="discord", user_id="7008", display_name="fred", guild_id="g7")
SLOW_POLL_S = 120.0
DEADLINE_S = 60.0  # generous for a loaded machine, and still half the poll delay


@asynccontextmanager
async def running_worker(stack: Stack) -> AsyncIterator[tuple[ImpastoWorker, asyncio.Event]]:
    """A worker polling every two minutes, and an event set whenever it is about to wait for work."""
    worker = build_worker(stack.setup(poll_delay_s=SLOW_POLL_S), redis_url=TEST_REDIS_URL, handle_signals=False)
    assert isinstance(worker, ImpastoWorker)
    waiting = asyncio.Event()
    wait_for_work = worker._wait_for_work

    async def spied() -> None:
        waiting.set()
        await wait_for_work()

    worker._wait_for_work = spied  # type: ignore[method-assign]
    task = asyncio.create_task(worker.main())
    try:
        yield worker, waiting
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await close_worker(worker)


async def _all_done(stack: Stack, job_ids: list[str], since: str) -> list[str]:
    async with asyncio.timeout(DEADLINE_S):
        return [e.kind async for e in events.listen(stack.pool, job_ids=job_ids, since=since, ns=stack.ns) if e.final]


async def test_an_idle_worker_starts_a_queued_job_at_once(stack: Stack) -> None:
    async with running_worker(stack) as (_worker, waiting):
        async with asyncio.timeout(DEADLINE_S):
            await waiting.wait()  # its first poll found nothing: it now waits up to two minutes
        since = await events.last_id(stack.pool, ns=stack.ns)
        [ticket] = await stack.service.imagine(EVE, "a kite", idempotency_key="w-1")
        assert await _all_done(stack, [ticket.job_id], since) == ["done"]


async def test_two_idle_workers_each_wake_for_a_job(stack: Stack) -> None:
    async with running_worker(stack) as (_a, a_waiting), running_worker(stack) as (_b, b_waiting):
        async with asyncio.timeout(DEADLINE_S):
            await a_waiting.wait()
            await b_waiting.wait()
        since = await events.last_id(stack.pool, ns=stack.ns)
        [first] = await stack.service.imagine(EVE, "a kite", idempotency_key="w-5")
        [second] = await stack.service.imagine(FRED, "a sail", idempotency_key="w-6")
        assert await _all_done(stack, [first.job_id, second.job_id], since) == ["done", "done"]


async def test_a_busy_worker_takes_the_next_job_when_one_ends(stack: Stack) -> None:
    since = await events.last_id(stack.pool, ns=stack.ns)
    tickets = await stack.service.imagine(EVE, "a kite --repeat 3", idempotency_key="w-2")
    await stack.pool.delete(
        stack.ns.wake
    )  # no wake-ups: the first job is found by the first poll, the rest must not wait
    async with running_worker(stack):
        assert await _all_done(stack, [t.job_id for t in tickets], since) == ["done"] * 3


async def test_the_wake_up_list_is_capped_and_expires(stack: Stack) -> None:
    tickets = await stack.service.imagine(EVE, "a kite --repeat 3", idempotency_key="w-3")
    assert len(tickets) == 3
    assert await stack.pool.llen(stack.ns.wake) == 3
    assert 0 < await stack.pool.ttl(stack.ns.wake) <= 60
    for _ in range(WAKE_CAP + 10):
        await stack.pool.lpush(stack.ns.wake, b"1")
    await stack.service.imagine(FRED, "a kite", idempotency_key="w-4")  # another user: EVE's queue is full
    assert await stack.pool.llen(stack.ns.wake) == WAKE_CAP
