"""The plan's concurrency limit: a user's jobs past it wait in SQL ("Job queued") and start as their others end."""

from __future__ import annotations

import asyncio
from datetime import datetime

from queue_helpers import Stack
from sqlalchemy import select

from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobTicket
from impasto.queue.renderer import NoopRenderer
from impasto.storage.models import Job, Usage

# The default plan ("basic") allows 3 jobs in flight and 10 more queued.
HEAVY = Requester(platform="discord", user_id="7001", display_name="heavy", guild_id="g7")
LIGHT = Requester(platform="discord", user_id="7002", display_name="light", guild_id="g7")


async def _five_jobs(stack: Stack) -> list[JobTicket]:
    tickets = await stack.service.imagine(HEAVY, "a fox --repeat 4", idempotency_key="h-1")
    tickets += await stack.service.imagine(HEAVY, "a hare", idempotency_key="h-2")
    return tickets


async def _on_queue(stack: Stack) -> set[str]:
    return {raw.decode() for raw in await stack.pool.zrange(stack.ns.queue, 0, -1)}


async def _released(stack: Stack) -> dict[str, datetime | None]:
    async with stack.sessions() as session:
        rows = await session.execute(select(Job.id, Job.released_at))
        return {row.id: row.released_at for row in rows}


async def test_jobs_past_the_limit_are_held_in_sql_and_never_reach_the_queue(stack: Stack) -> None:
    tickets = await _five_jobs(stack)
    assert [t.waiting for t in tickets] == [False, False, False, True, True]
    assert tickets[3].notice is not None
    assert tickets[3].notice.startswith("Job queued: you have reached the maximum allowed number of concurrent jobs")
    assert tickets[0].notice is None
    assert await _on_queue(stack) == {t.job_id for t in tickets[:3]}
    released = await _released(stack)
    assert [released[t.job_id] is None for t in tickets] == [False, False, False, True, True]
    # Held jobs hold their reservation too: queue-full and out-of-credit checks count them.
    assert all(t.reserved_gpu_seconds > 0 for t in tickets)

    # The same request again (a double click) answers the same tickets and queues nothing more.
    again = await stack.service.imagine(HEAVY, "a fox --repeat 4", idempotency_key="h-1")
    assert [(t.job_id, t.waiting, t.duplicate) for t in again] == [(t.job_id, t.waiting, True) for t in tickets[:4]]
    assert await _on_queue(stack) == {t.job_id for t in tickets[:3]}

    # Another member's job is not held behind them.
    [light] = await stack.service.imagine(LIGHT, "a wren", idempotency_key="l-1")
    assert not light.waiting
    assert light.job_id in await _on_queue(stack)


def _peak(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one moment."""
    moments = sorted([(start, 1) for start, _end in intervals] + [(end, -1) for _start, end in intervals])
    now = peak = 0
    for _at, change in moments:
        now += change
        peak = max(peak, now)
    return peak


async def test_four_free_workers_never_paint_more_than_three_of_one_users_jobs_at_once(stack: Stack) -> None:
    tickets = await _five_jobs(stack)
    renderer = NoopRenderer(steps=4, step_s=0.15)
    await asyncio.gather(*(stack.drain(renderer, name=f"gpu{n}") for n in range(4)))

    async with stack.sessions() as session:
        rows = (
            await session.execute(select(Job.id, Job.status, Job.released_at, Job.started_at, Job.finished_at))
        ).all()
    assert {row.status for row in rows} == {"done"}
    # At every moment at most 3 of the user's jobs were in flight (released, not finished), and so painting,
    # although a fourth worker stood idle.
    assert _peak([(row.released_at, row.finished_at) for row in rows]) <= 3
    assert _peak([(row.started_at, row.finished_at) for row in rows]) <= 3
    by_id = {row.id: row for row in rows}
    first_end = min(by_id[t.job_id].finished_at for t in tickets[:3])
    for held in tickets[3:]:
        assert by_id[held.job_id].released_at >= first_end  # released only once one of the first three ended
        assert by_id[held.job_id].started_at >= by_id[held.job_id].released_at
    # Three workers did paint the first three side by side: the limit holds back, it does not serialise.
    assert max(by_id[t.job_id].started_at for t in tickets[:3]) < first_end


async def test_cancelling_a_queued_job_lets_the_oldest_held_one_go(stack: Stack) -> None:
    tickets = await _five_jobs(stack)
    assert await stack.service.cancel(HEAVY, tickets[1].job_id) == "cancelled"
    released = await _released(stack)
    assert released[tickets[3].job_id] is not None
    assert released[tickets[4].job_id] is None
    assert tickets[3].job_id in await _on_queue(stack)

    # Cancelling a held job frees nothing (it was never in flight) and refunds its hold.
    assert await stack.service.cancel(HEAVY, tickets[4].job_id) == "cancelled"
    async with stack.sessions() as session:
        job = await session.get(Job, tickets[4].job_id)
        assert job is not None
        assert (job.status, job.released_at, job.reserved_gpu_seconds) == ("cancelled", None, 0.0)
        reserved = await session.scalar(select(Usage.reserved_gpu_seconds))
    assert reserved == sum(t.reserved_gpu_seconds for t in (tickets[0], tickets[2], tickets[3]))
    # (The cancelled queued job's message stays in Redis until a worker reaches it, finds it final and drops it.)
    assert tickets[4].job_id not in await _on_queue(stack)
