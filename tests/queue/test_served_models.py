"""IMPASTO_WORKER_MODELS: a worker takes only the jobs of the models it serves, at their fair place in the queue."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from queue_helpers import TEST_REDIS_URL, Stack
from sqlalchemy import select

from impasto.bots.service.requester import Requester
from impasto.queue import metrics
from impasto.queue.client import open_pool
from impasto.queue.served import check_models, parse_models, serve_only, unserved
from impasto.queue.worker import build_worker
from impasto.storage.models import Job

ALICE = Requester(platform="discord", user_id="1001", display_name="alice", guild_id="g1", channel_id="c1")
BOB = Requester(platform="telegram", user_id="2002", display_name="bob", guild_id=None, channel_id="2002")


def _worker(stack: Stack, name: str, models: tuple[str, ...], **config: object) -> Worker:
    setup = stack.setup(name=name, **config)
    worker = build_worker(setup, redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
    return serve_only(metrics.instrument(worker), models)


async def _close(*workers: Worker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for worker in workers:
            await worker.close()


async def _workers_of(stack: Stack) -> dict[str, tuple[str, str | None, str]]:
    async with stack.sessions() as session:
        rows = await session.execute(select(Job.id, Job.model, Job.worker, Job.status))
        return {job_id: (model, worker, status) for job_id, model, worker, status in rows}


async def test_two_workers_each_paint_only_their_models_jobs(stack: Stack) -> None:
    # Interleaved in the queue: each worker must skip the other's jobs, whatever their place.
    tickets = [
        *await stack.service.imagine(ALICE, "a lighthouse --v 5", idempotency_key="s-1"),
        *await stack.service.imagine(BOB, "a harbour", idempotency_key="s-2"),
        *await stack.service.imagine(ALICE, "a red door --v 5", idempotency_key="s-3"),
        *await stack.service.imagine(BOB, "a fox", idempotency_key="s-4"),
    ]
    v5 = _worker(stack, "gpu-v5", ("v5",))
    tiny = _worker(stack, "gpu-tiny", ("tiny-sd15",))
    try:
        await asyncio.gather(v5.main(), tiny.main())  # burst: both end once the queue is empty
    finally:
        await _close(v5, tiny)
    jobs = await _workers_of(stack)
    assert {jobs[t.job_id][0] for t in tickets} == {"v5", "tiny-sd15"}
    for ticket in tickets:
        model, worker, status = jobs[ticket.job_id]
        assert status == "done"
        assert worker == ("gpu-v5" if model == "v5" else "gpu-tiny"), (model, worker)


async def test_a_worker_leaves_another_models_job_on_the_queue_unclaimed(stack: Stack) -> None:
    [theirs] = await stack.service.imagine(ALICE, "a lighthouse --v 5", idempotency_key="s-5")
    # Driven by hand, one claim at a time (no arq main loop): the pool and ctx that main() would set up.
    worker = _worker(stack, "gpu-tiny", ("tiny-sd15",), sweep_interval_s=0)
    worker._pool = await open_pool(TEST_REDIS_URL, ns=stack.ns)
    worker.ctx["redis"] = worker.pool
    try:
        await worker.on_startup(worker.ctx)  # type: ignore[misc]
        await worker.start_jobs([theirs.job_id.encode()])
        assert worker.job_counter == 0
        assert not await stack.pool.exists(in_progress_key_prefix + theirs.job_id)
        assert await stack.pool.zscore(stack.ns.queue, theirs.job_id) is not None  # still queued, same place

        [mine] = await stack.service.imagine(BOB, "a fox", idempotency_key="s-6")
        await worker.start_jobs([theirs.job_id.encode(), mine.job_id.encode()])
        assert set(worker.tasks) == {mine.job_id}  # the served job behind it is taken
        await asyncio.gather(*worker.tasks.values())
    finally:
        await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
        await _close(worker)
    jobs = await _workers_of(stack)
    assert jobs[theirs.job_id][1:] == (None, "queued")
    assert jobs[mine.job_id][1:] == ("gpu-tiny", "done")


def test_the_models_setting_is_read_and_checked() -> None:
    assert parse_models(" v6, niji6  v6 ") == ("v6", "niji6")
    assert parse_models("") == ()
    check_models(("v6",), ["v5", "v6"])
    with pytest.raises(ValueError, match="IMPASTO_WORKER_MODELS names v7, not in the model registry; models: v5, v6"):
        check_models(("v6", "v7"), ["v6", "v5"])


def test_a_model_is_unserved_when_no_live_worker_takes_it() -> None:
    assert unserved("v6", {})
    assert unserved("v6", {"gpu0": ("niji6",)})
    assert not unserved("v6", {"gpu0": ("niji6",), "gpu1": ("v6", "v5")})
    assert not unserved("v6", {"gpu0": ()})  # a worker without IMPASTO_WORKER_MODELS serves every model
