"""The event stream: once-only terminal events, listening to given jobs, consumer groups that survive a restart."""

from __future__ import annotations

import asyncio
import secrets

from arq.connections import ArqRedis

from impasto.queue import events, keys


def _ids(*names: str) -> list[str]:
    """Job ids of this test alone: the stream on db 15 is shared with other sessions and is not flushed."""
    tag = secrets.token_hex(4)
    return [f"{name}-{tag}" for name in names]


async def test_a_terminal_event_is_published_at_most_once(pool: ArqRedis) -> None:
    [j1] = _ids("j1")
    done = events.Done(job_id=j1, image_keys=["k1"])
    assert await events.publish_final(pool, done)
    assert not await events.publish_final(pool, done)
    assert not await events.publish_final(pool, events.Failed(job_id=j1, message="late"))
    assert [e.kind for e in await events.history(pool, j1)] == ["done"]


async def test_listen_yields_only_the_jobs_asked_for_and_ends_at_their_final_events(pool: ArqRedis) -> None:
    a, b = _ids("a", "b")
    since = await events.last_id(pool)
    await events.publish(pool, events.Queued(job_id=a, position=1))
    await events.publish(pool, events.Progress(job_id=b, step=1, total=2))
    await events.publish_final(pool, events.Cancelled(job_id=b))
    await events.publish(pool, events.Progress(job_id=a, step=1, total=2, preview_png_b64="iVBORw0KGgo="))
    await events.publish_final(pool, events.Done(job_id=a, image_keys=[]))
    seen = [e async for e in events.listen(pool, job_ids=[a], since=since, block_ms=50)]
    assert [(e.job_id, e.kind) for e in seen] == [(a, "queued"), (a, "progress"), (a, "done")]
    progress = seen[1]
    assert isinstance(progress, events.Progress)
    assert progress.preview_png == b"\x89PNG\r\n\x1a\n"


async def test_a_consumer_group_redelivers_what_a_crashed_consumer_did_not_ack(pool: ArqRedis) -> None:
    j0, j1, j2, group, other = _ids("j0", "j1", "j2", "telegram", "discord")
    start = await events.last_id(pool)
    await events.ensure_group(pool, group)
    for i, job_id in enumerate((j0, j1, j2)):
        await events.publish(pool, events.Queued(job_id=job_id, position=i))
    ours = {j0, j1, j2}

    async def take(group: str, n: int, *, acking: bool) -> list[str]:
        got: list[str] = []
        async for delivery in events.consume(pool, group=group, consumer="bot-1", block_ms=50):
            if delivery.event.job_id not in ours:  # another session's event on the shared stream
                await events.ack(pool, group, delivery.entry_id)
                continue
            got.append(delivery.event.job_id)
            if acking:
                await events.ack(pool, group, delivery.entry_id)
            if len(got) == n:
                break
        return got

    try:
        # The first run handles j0 and dies before acknowledging j1.
        assert await take(group, 1, acking=True) == [j0]
        assert await take(group, 1, acking=False) == [j1]
        # After the "restart" the unacknowledged j1 comes first, then what was never delivered.
        assert await asyncio.wait_for(take(group, 2, acking=True), 10) == [j1, j2]
        # Another platform's group gets every event independently.
        await events.ensure_group(pool, other, start=start)
        assert await asyncio.wait_for(take(other, 3, acking=True), 10) == [j0, j1, j2]
    finally:
        for name in (group, other):
            await pool.xgroup_destroy(keys.DEFAULT.events, name)


async def test_each_namespace_has_its_own_stream_and_final_markers(pool: ArqRedis, ns: keys.Namespace) -> None:
    """Two deployments on one Redis (or two test sessions on db 15) hear only their own jobs' events."""
    [job] = _ids("job")
    other = keys.Namespace(f"impasto-test-{secrets.token_hex(6)}:")
    try:
        assert ns.events.startswith(ns.prefix)
        assert ns.job_final(job).startswith(ns.prefix)
        since_ours, since_other = await events.last_id(pool, ns=ns), await events.last_id(pool, ns=other)
        assert await events.publish_final(pool, events.Done(job_id=job, image_keys=[]), ns=ns)
        # The once-only marker is per namespace too: the other deployment may end a job of the same id.
        assert await events.publish_final(pool, events.Cancelled(job_id=job), ns=other)
        ours = [e async for e in events.listen(pool, job_ids=[job], since=since_ours, block_ms=50, ns=ns)]
        theirs = [e async for e in events.listen(pool, job_ids=[job], since=since_other, block_ms=50, ns=other)]
        assert [e.kind for e in ours] == ["done"]
        assert [e.kind for e in theirs] == ["cancelled"]
        assert [e.kind for e in await events.history(pool, job, ns=keys.DEFAULT)] == []
    finally:
        async for key in pool.scan_iter(match=other.prefix + "*"):
            await pool.delete(key)


async def test_a_quiet_consumer_takes_over_what_a_vanished_one_left_pending(pool: ArqRedis, ns: keys.Namespace) -> None:
    """A process that died (and whose name never comes back) leaves its unacknowledged entries to the others."""
    [job] = _ids("job")
    group = f"test-{secrets.token_hex(4)}"
    await events.ensure_group(pool, group, ns=ns)
    await events.publish(pool, events.Queued(job_id=job, position=0), ns=ns)
    gone = events.consume(pool, group=group, consumer="gone", block_ms=50, ns=ns)
    taken = await asyncio.wait_for(anext(gone), 10)  # read, never acknowledged
    await gone.aclose()
    survivor = events.consume(pool, group=group, consumer="survivor", block_ms=50, reclaim_idle_ms=0, ns=ns)
    try:
        again = await asyncio.wait_for(anext(survivor), 10)
    finally:
        await survivor.aclose()
    assert (again.entry_id, again.event.job_id) == (taken.entry_id, job)


async def _tell_positions(pool: ArqRedis, ns: keys.Namespace, interval_s: float) -> list[tuple[str, int]]:
    since = await events.last_id(pool, ns=ns)
    pipe = pool.pipeline(transaction=False)
    events.add_positions(pipe, 25, starting="none", held_prefix="held:", interval_s=interval_s, ns=ns)
    await pipe.execute()
    told = await pool.xrange(ns.events, min=f"({since}", max="+")
    return [(fields[b"job"].decode(), events._parse(fields).position) for _id, fields in told]  # type: ignore[union-attr]


async def test_waiting_jobs_are_told_their_positions_at_most_once_per_interval(
    pool: ArqRedis, ns: keys.Namespace
) -> None:
    a, b, c = _ids("a", "b", "c")
    await pool.zadd(ns.queue, {a: 1, b: 2, c: 3})
    await pool.set(f"held:{a}", "1")  # a worker paints it: it is not told, but counts as ahead
    assert await _tell_positions(pool, ns, 60.0) == [(b, 1), (c, 2)]
    assert await _tell_positions(pool, ns, 60.0) == []  # a burst of starts: the next ones are told nothing
    assert await _tell_positions(pool, ns, 0.0) == [(b, 1), (c, 2)]  # no interval: every start tells
    await pool.delete(f"held:{a}", ns.positions_told)
