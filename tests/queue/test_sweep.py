"""The sweep: jobs no worker will reach are failed with a refund, re-queued or released — on the real Redis."""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta

from arq.constants import in_progress_key_prefix, job_key_prefix
from queue_helpers import TEST_REDIS_URL, Stack
from sqlalchemy import select, update

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.queue.sweep import purge_moderation_evidence, sweep
from impasto.queue.worker import build_worker
from impasto.storage import moderation
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import claim_job, fail_job
from impasto.storage.models import FLAGGED, Image, Job, ModerationEvent, Usage, utcnow

GIL = Requester(platform="telegram", user_id="8008", display_name="gil")


async def _age(stack: Stack, job_id: str, **columns: timedelta) -> None:
    """Move a job's timestamps into the past, as if it had sat there that long."""
    async with stack.sessions() as session, session.begin():
        row = await session.get(Job, job_id)
        assert row is not None
        for name, delta in columns.items():
            setattr(row, name, getattr(row, name) - delta)


async def _lose(stack: Stack, job_id: str) -> None:
    """Take a job off Redis the way a crash between the SQL commit and the enqueue would leave it."""
    await stack.pool.zrem(stack.ns.queue, job_id)
    await stack.pool.delete(job_key_prefix + job_id)


async def _reserved(stack: Stack) -> float:
    async with stack.sessions() as session:
        return float(await session.scalar(select(Usage.reserved_gpu_seconds)) or 0.0)


async def test_a_job_nobody_started_in_time_is_failed_refunded_and_taken_off_the_queue(stack: Stack) -> None:
    tickets = await stack.service.imagine(GIL, "a moth --repeat 4", idempotency_key="s-1")
    await _age(stack, tickets[0].job_id, released_at=timedelta(hours=2), queued_at=timedelta(hours=2))
    config = stack.setup(max_wait_s=3600).config

    report = await sweep(stack.sessions, stack.pool, config)

    assert report.expired == [tickets[0].job_id]
    view = await stack.service.job(tickets[0].job_id)
    assert view.status == "failed"
    assert view.error == (
        "waited 120 min in the queue, longer than the 60 min limit; nothing was charged, please try again"
    )
    assert await stack.pool.zscore(stack.ns.queue, tickets[0].job_id) is None
    [final] = [e for e in await events.history(stack.pool, tickets[0].job_id, ns=stack.ns) if e.final]
    assert isinstance(final, events.Failed)
    assert final.refunded
    # Its slot went to the held fourth job, which is on the queue now; the others were not touched.
    assert report.released == []  # released by the failure itself, not by the held-jobs pass
    assert await stack.pool.zscore(stack.ns.queue, tickets[3].job_id) is not None
    assert await _reserved(stack) == sum(t.reserved_gpu_seconds for t in tickets[1:])
    # Held, it was told nothing; released, it hears its place in the queue.
    assert [e.kind for e in await events.history(stack.pool, tickets[3].job_id, ns=stack.ns)] == ["queued"]
    # A second sweep finds nothing more to do.
    assert not await sweep(stack.sessions, stack.pool, config)


async def test_a_running_job_no_worker_holds_and_arq_gave_up_on_is_failed(stack: Stack) -> None:
    [dead, alive] = await stack.service.imagine(GIL, "{a crane, a heron}", idempotency_key="s-2")
    async with stack.sessions() as session, session.begin():
        assert await claim_job(session, dead.job_id, worker="gone") is not None
        assert await claim_job(session, alive.job_id, worker="busy") is not None
    await _age(stack, dead.job_id, started_at=timedelta(minutes=5))
    await _age(stack, alive.job_id, started_at=timedelta(minutes=5))
    await _lose(stack, dead.job_id)  # arq dropped it after max_tries
    await stack.pool.set(in_progress_key_prefix + alive.job_id, b"1", px=30_000)  # a live worker's lock

    report = await sweep(stack.sessions, stack.pool, stack.setup().config)

    assert report.orphaned == [dead.job_id]
    view = await stack.service.job(dead.job_id)
    assert (view.status, view.charged_gpu_seconds) == ("failed", 0)
    assert view.error is not None
    assert "stopped 1 time and it was not retried" in view.error
    assert (await stack.service.job(alive.job_id)).status == "running"


async def test_a_released_job_missing_from_redis_is_queued_again_and_painted(stack: Stack) -> None:
    [lost, kept] = await stack.service.imagine(GIL, "{a lamp, a candle}", idempotency_key="s-3")
    await _lose(stack, lost.job_id)
    await _age(stack, lost.job_id, released_at=timedelta(minutes=2))
    await _age(stack, kept.job_id, released_at=timedelta(minutes=2))

    report = await sweep(stack.sessions, stack.pool, stack.setup().config)

    assert report.requeued == [lost.job_id]  # the one still in Redis is left alone
    await stack.drain()
    assert (await stack.service.job(lost.job_id)).status == "done"
    assert (await stack.service.job(kept.job_id)).status == "done"


async def test_held_jobs_with_room_are_released(stack: Stack) -> None:
    tickets = await stack.service.imagine(GIL, "a kite --repeat 4", idempotency_key="s-4")
    # A worker failed the first job and died before releasing the held one.
    async with stack.sessions() as session, session.begin():
        assert await fail_job(session, tickets[0].job_id, error="boom")
    assert await stack.pool.zscore(stack.ns.queue, tickets[3].job_id) is None

    report = await sweep(stack.sessions, stack.pool, stack.setup().config)

    assert report.released == [tickets[3].job_id]
    assert await stack.pool.zscore(stack.ns.queue, tickets[3].job_id) is not None


async def test_a_running_worker_sweeps_on_its_own(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(GIL, "a forgotten job", idempotency_key="s-5")
    since = await events.last_id(stack.pool, ns=stack.ns)
    await _lose(stack, ticket.job_id)
    async with stack.sessions() as session, session.begin():
        await session.execute(
            update(Job).where(Job.id == ticket.job_id).values(released_at=Job.released_at - timedelta(hours=2))
        )
    worker = build_worker(
        stack.setup(sweep_interval_s=0.2), redis_url=TEST_REDIS_URL, burst=False, handle_signals=False
    )
    running = asyncio.create_task(worker.main())
    try:
        async with asyncio.timeout(30):
            final = [
                e async for e in events.listen(stack.pool, job_ids=[ticket.job_id], since=since, ns=stack.ns) if e.final
            ]
    finally:
        running.cancel()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()
    assert [e.kind for e in final] == ["failed"]
    view = await stack.service.job(ticket.job_id)
    assert view.error is not None
    assert "waited 120 min" in view.error


async def test_the_sweep_purges_old_moderation_evidence_once_an_hour(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        user_id = await moderation.user_id_for(session, "discord", "gil")
        old = await moderation.record_refusal(
            session,
            user_id=user_id,
            guild_id=None,
            channel_id=None,
            category="gore",
            rule="word",
            matched=("gory",),
            prompt="a gory knight",
            now=utcnow() - timedelta(days=40),
        )
    config = stack.setup(moderation_retention_days=30).config
    await stack.pool.delete(config.ns.prefix + "purge-turn")
    assert await purge_moderation_evidence(stack.sessions, stack.pool, config) == 1
    assert await purge_moderation_evidence(stack.sessions, stack.pool, config) == 0  # not this hour again
    async with stack.sessions() as session:
        row = await session.get(ModerationEvent, old.refusal_id)
        assert row is not None
        assert (row.prompt, row.matched) == (None, None)  # the row stays; its evidence is gone


async def test_the_sweeps_purge_deletes_the_stored_images_of_old_flagged_jobs(stack: Stack) -> None:
    store = ImageStore(stack.image_root)
    key = store.put(b"a flagged result")
    async with stack.sessions() as session, session.begin():
        user_id = await moderation.user_id_for(session, "discord", "gil")
        job = Job(user_id=user_id, action="imagine", mode="fast", idempotency_key="purge/1", request_key="purge")
        session.add(job)
        await session.flush()
        session.add(Image(job_id=job.id, index=1, store_key=key, width_px=8, height_px=8))
        await moderation.record(
            session, FLAGGED, user_id=user_id, job_id=job.id, note="output 1: 0.99", now=utcnow() - timedelta(days=40)
        )
    config = stack.setup(moderation_retention_days=30).config
    await stack.pool.delete(config.ns.prefix + "purge-turn")
    assert await purge_moderation_evidence(stack.sessions, stack.pool, config, store) == 1
    assert not store.exists(key)
    async with stack.sessions() as session:
        assert await session.get(Job, job.id) is not None  # the job and its audit row stay
