"""A job's whole life through a real worker: service → queue → worker → SQL → image store → events."""

from __future__ import annotations

from queue_helpers import Stack

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.storage.images import ImageStore
from impasto.storage.models import Job

ALICE = Requester(platform="discord", user_id="1001", display_name="alice", guild_id="g1", channel_id="c1")


async def test_imagine_runs_to_done_with_one_charge_and_events(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(ALICE, "a lighthouse at dusk", idempotency_key="i-1")
    await stack.drain()

    async with stack.sessions() as session:
        job = await session.get(Job, ticket.job_id)
        assert job is not None
        assert job.status == "done"
        assert job.attempts == 1
        assert job.worker == "test-gpu0"
    view = await stack.service.job(ticket.job_id)
    assert sorted(image.index for image in view.images) == [0, 1, 2, 3, 4]

    history = await events.history(stack.pool, ticket.job_id, ns=stack.ns)
    kinds = [e.kind for e in history]
    assert kinds[0] == "queued"
    assert "started" in kinds
    assert "progress" in kinds
    assert kinds[-1] == "done"
    assert kinds.count("done") == 1
    done = history[-1]
    assert isinstance(done, events.Done)
    store = ImageStore(stack.image_root)
    assert len(done.image_keys) == 4
    assert all(store.get(key).startswith(b"\x89PNG") for key in done.image_keys)
    assert done.grid_key is not None
    assert done.paints_noise


async def test_listen_follows_one_job_to_its_end(stack: Stack) -> None:
    since = await events.last_id(stack.pool, ns=stack.ns)
    [ticket] = await stack.service.imagine(ALICE, "a red door", idempotency_key="i-2")
    await stack.drain()
    seen = [e async for e in events.listen(stack.pool, job_ids=[ticket.job_id], since=since, block_ms=100, ns=stack.ns)]
    assert seen[-1].kind == "done"
    assert {e.job_id for e in seen} == {ticket.job_id}


async def test_waiting_jobs_hear_their_position_move_and_never_after_they_start(stack: Stack) -> None:
    tickets = await stack.service.imagine(ALICE, "a harbour --repeat 3", idempotency_key="i-3")
    assert len(tickets) == 3
    await stack.drain(positions_interval_s=0)  # told at every start (by default at most once a second)
    last = tickets[-1].job_id
    kinds = [(e.kind, getattr(e, "position", None)) for e in await events.history(stack.pool, last, ns=stack.ns)]
    started = kinds.index(("started", None))
    positions = [p for kind, p in kinds[:started] if kind == "queued"]
    assert positions[0] == 2
    assert positions == sorted(positions, reverse=True)
    assert 1 in positions
    assert all(kind != "queued" for kind, _p in kinds[started:])
