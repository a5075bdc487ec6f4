"""The event stream: once-only terminal events, listening to given jobs, consumer groups that survive a restart."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis

from impasto.queue import events


async def test_a_terminal_event_is_published_at_most_once(pool: ArqRedis) -> None:
    done = events.Done(job_id="j1", image_keys=["k1"])
    assert await events.publish_final(pool, done)
    assert not await events.publish_final(pool, done)
    assert not await events.publish_final(pool, events.Failed(job_id="j1", message="late"))
    assert [e.kind for e in await events.history(pool, "j1")] == ["done"]


async def test_listen_yields_only_the_jobs_asked_for_and_ends_at_their_final_events(pool: ArqRedis) -> None:
    since = await events.last_id(pool)
    await events.publish(pool, events.Queued(job_id="a", position=1))
    await events.publish(pool, events.Progress(job_id="b", step=1, total=2))
    await events.publish_final(pool, events.Cancelled(job_id="b"))
    await events.publish(pool, events.Progress(job_id="a", step=1, total=2, preview_png_b64="iVBORw0KGgo="))
    await events.publish_final(pool, events.Done(job_id="a", image_keys=[]))
    seen = [e async for e in events.listen(pool, job_ids=["a"], since=since, block_ms=50)]
    assert [(e.job_id, e.kind) for e in seen] == [("a", "queued"), ("a", "progress"), ("a", "done")]
    progress = seen[1]
    assert isinstance(progress, events.Progress)
    assert progress.preview_png == b"\x89PNG\r\n\x1a\n"


async def test_a_consumer_group_redelivers_what_a_crashed_consumer_did_not_ack(pool: ArqRedis) -> None:
    await events.ensure_group(pool, "telegram")
    for i in range(3):
        await events.publish(pool, events.Queued(job_id=f"j{i}", position=i))

    async def take(n: int, *, acking: bool) -> list[str]:
        got: list[str] = []
        async for delivery in events.consume(pool, group="telegram", consumer="bot-1", block_ms=50):
            got.append(delivery.event.job_id)
            if acking:
                await events.ack(pool, "telegram", delivery.entry_id)
            if len(got) == n:
                break
        return got

    # The first run handles j0 and dies before acknowledging j1.
    assert await take(1, acking=True) == ["j0"]
    assert await take(1, acking=False) == ["j1"]
    # After the "restart" the unacknowledged j1 comes first, then what was never delivered.
    assert await asyncio.wait_for(take(2, acking=True), 10) == ["j1", "j2"]
    # Another platform's group gets every event independently.
    await events.ensure_group(pool, "discord", start="0")
    got = []
    async for delivery in events.consume(pool, group="discord", consumer="d-1", block_ms=50):
        got.append(delivery.event.job_id)
        if len(got) == 3:
            break
    assert got == ["j0", "j1", "j2"]
