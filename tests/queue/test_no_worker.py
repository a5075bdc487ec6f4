"""`impasto imagine` through a queue no worker serves says so, instead of waiting at "queued" forever."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from arq.constants import in_progress_key_prefix
from queue_helpers import TEST_REDIS_URL, Stack

from impasto.bots.console.queued import no_worker_line
from impasto.bots.service.requester import Requester
from impasto.queue.stalled import nothing_taken_since, waiting_jobs

GUS = Requester(platform="discord", user_id="8008", display_name="gus", guild_id="g8")


async def test_a_stalled_queue_is_told_from_a_busy_one(stack: Stack) -> None:
    assert not await nothing_taken_since(stack.pool, stack.ns, frozenset())  # nothing waited: nothing to say
    tickets = await stack.service.imagine(GUS, "a bell --repeat 2", idempotency_key="n-1")
    before = await waiting_jobs(stack.pool, stack.ns)
    assert before == {t.job_id for t in tickets}
    assert await nothing_taken_since(stack.pool, stack.ns, before)
    # A worker holding one of them: the queue is busy, not stalled.
    held = in_progress_key_prefix + tickets[0].job_id
    await stack.pool.set(held, b"1", px=60_000)
    try:
        assert not await nothing_taken_since(stack.pool, stack.ns, before)
    finally:
        await stack.pool.delete(held)
    # A job left the queue (a worker finished it): not stalled either.
    await stack.pool.zrem(stack.ns.queue, tickets[0].job_id)
    assert not await nothing_taken_since(stack.pool, stack.ns, before)


async def test_imagine_with_no_worker_says_so(stack: Stack, data_dir: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
        "IMPASTO_REDIS_URL": TEST_REDIS_URL,
        "IMPASTO_QUEUE_NAMESPACE": stack.ns.prefix,
        "IMPASTO_DATABASE_URL": stack.db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
        "IMPASTO_DEFAULT_MODEL": "tiny-sd15",
        "IMPASTO_NO_WORKER_WARN_S": "1",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread's stack: a hang after ^C says where it is
    }
    # A suite started in the background by a non-interactive shell (`… &`, as CI may) runs with SIGINT ignored, and
    # a child inherits that: Python then installs no KeyboardInterrupt handler and ^C does nothing. A user's
    # terminal delivers ^C to a process with the default disposition, so the child gets it back.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "impasto.bots", "imagine", "a bell", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(120):
            while no_worker_line(1).encode() not in seen:
                chunk = await proc.stdout.read(4096)
                assert chunk, seen.decode(errors="replace")  # it exited before saying it
                seen += chunk
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(60):
                rest, _ = await proc.communicate()
        except TimeoutError:
            proc.send_signal(signal.SIGABRT)
            rest, _ = await proc.communicate()
            raise AssertionError(
                "^C did not end `impasto imagine`:\n" + (seen + rest).decode(errors="replace")
            ) from None
    assert proc.returncode == 130, (seen + rest).decode(errors="replace")
    assert b"cancelled; nothing is charged" in seen + rest
