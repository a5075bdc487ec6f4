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
            await pool.xgroup_destroy(keys.EVENTS_STREAM, name)
