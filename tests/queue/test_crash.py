"""A worker process killed with SIGKILL mid-job: another worker finishes it; one result, one charge."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from queue_helpers import TEST_REDIS_URL, Stack
from sqlalchemy import func, select

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.storage.models import LedgerEntry, Usage

DAN = Requester(platform="discord", user_id="5005", display_name="dan", guild_id="g5")


def _worker(
    stack: Stack, name: str, data_dir: Path, *, step_s: float, extra: tuple[str, ...] = (), **env_extra: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IMPASTO_REDIS_URL": TEST_REDIS_URL,
        "IMPASTO_QUEUE_NAMESPACE": stack.ns.prefix,
        "IMPASTO_DATABASE_URL": stack.db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
        "IMPASTO_WORKER_NAME": name,
        "IMPASTO_WORKER_LEASE_S": "2",
        "IMPASTO_WORKER_POLL_DELAY_S": "0.1",
        **env_extra,
    }
    cmd = [sys.executable, "-m", "impasto.bots", "worker", "--renderer", "noop", "--noop-steps", "20"]
    return subprocess.Popen([*cmd, "--noop-step-s", str(step_s), *extra], env=env, stderr=subprocess.DEVNULL)


async def _finals(stack: Stack, job_id: str, since: str, *, timeout_s: float) -> list[events.Event]:
    """The job's terminal events published after ``since`` (waits for the first)."""
    async with asyncio.timeout(timeout_s):
        return [e async for e in events.listen(stack.pool, job_ids=[job_id], since=since, ns=stack.ns) if e.final]


def _stop(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


@pytest.mark.slow
async def test_a_job_of_a_killed_worker_is_finished_by_another_once(stack: Stack, data_dir: Path) -> None:
    since = await events.last_id(stack.pool, ns=stack.ns)
    [ticket] = await stack.service.imagine(DAN, "a survivor", idempotency_key="k-1")
    first = _worker(stack, "doomed", data_dir, step_s=0.5)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with asyncio.timeout(120):
            async for event in events.listen(
                stack.pool, job_ids=[ticket.job_id], since=since, block_ms=200, ns=stack.ns
            ):
                if isinstance(event, events.Progress) and event.step >= 2:
                    break
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert (await stack.service.job(ticket.job_id)).status == "running"  # as the dead worker left it

        second = _worker(stack, "survivor", data_dir, step_s=0.01)
        final = await _finals(stack, ticket.job_id, since, timeout_s=120)
    finally:
        _stop(first, second)

    assert [e.kind for e in final] == ["done"]
    history = await events.history(stack.pool, ticket.job_id, ns=stack.ns)
    assert [e.kind for e in history].count("done") == 1
    assert [e.worker for e in history if isinstance(e, events.Started)] == ["doomed", "survivor"]
    view = await stack.service.job(ticket.job_id)
    assert (view.status, view.attempts) == ("done", 2)
    async with stack.sessions() as session:
        settles = await session.scalar(
            select(func.count()).where(LedgerEntry.job_id == ticket.job_id, LedgerEntry.kind == "settle")
        )
        used = await session.scalar(select(func.sum(Usage.used_gpu_seconds)))
    assert settles == 1
    assert used == pytest.approx(view.charged_gpu_seconds)


@pytest.mark.slow
async def test_a_wedged_gpu_thread_fails_its_job_and_takes_its_worker_down(stack: Stack, data_dir: Path) -> None:
    [first, second] = await stack.service.imagine(DAN, "{a clock, a bell}", idempotency_key="k-2")
    wedged = _worker(
        stack, "wedged", data_dir, step_s=0.01, extra=("--noop-hang-s", "600"), IMPASTO_WORKER_STEP_TIMEOUT_S="1"
    )
    fresh: subprocess.Popen[bytes] | None = None
    try:
        # No progress for 1 s: told to stop; the thread does not stop within another second: the job fails with a
        # refund and the process exits for its supervisor to restart, without taking the next job.
        status = await asyncio.to_thread(wedged.wait, 60)
        assert status == 75
        view = await stack.service.job(first.job_id)
        assert (view.status, view.charged_gpu_seconds) == ("failed", 0)
        assert view.error == "the render made no progress for 1 s and was stopped"
        assert (await stack.service.job(second.job_id)).status == "queued"

        since = await events.last_id(stack.pool, ns=stack.ns)
        fresh = _worker(stack, "fresh", data_dir, step_s=0.01)
        final = await _finals(stack, second.job_id, since, timeout_s=60)
    finally:
        _stop(wedged, fresh)
    assert [e.kind for e in final] == ["done"]
    async with stack.sessions() as session:
        reserved = await session.scalar(select(func.sum(Usage.reserved_gpu_seconds)))
    assert reserved == 0


@pytest.mark.slow
async def test_sigterm_ends_a_worker_even_while_its_gpu_thread_is_wedged(stack: Stack, data_dir: Path) -> None:
    since = await events.last_id(stack.pool, ns=stack.ns)
    [ticket] = await stack.service.imagine(DAN, "a stopped clock", idempotency_key="k-3")
    wedged = _worker(
        stack,
        "wedged",
        data_dir,
        step_s=0.01,
        extra=("--noop-hang-s", "600"),
        IMPASTO_WORKER_STEP_TIMEOUT_S="3",
        IMPASTO_WORKER_SHUTDOWN_WAIT_S="0",
    )
    try:
        async with asyncio.timeout(60):
            async for event in events.listen(
                stack.pool, job_ids=[ticket.job_id], since=since, block_ms=200, ns=stack.ns
            ):
                if isinstance(event, events.Started):
                    break
        # "started" comes just before the render reaches the GPU thread (a wedged render reports nothing after it);
        # stop the worker well inside the render but before its own 3 s watchdog would.
        await asyncio.sleep(2)
        wedged.send_signal(signal.SIGTERM)
        # The job is cut off and left for another worker; the wedged thread cannot stop, so the process exits 75
        # about one step timeout later instead of hanging in interpreter shutdown.
        assert await asyncio.to_thread(wedged.wait, 30) == 75
    finally:
        if wedged.poll() is None:
            wedged.kill()
            wedged.wait()
    view = await stack.service.job(ticket.job_id)
    assert view.status in ("queued", "running")  # not failed: another worker takes it over (lease)
