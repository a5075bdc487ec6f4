"""A worker that cannot write a job's images fails that job with a refund and a clear log line, and carries on.

Two ways to break the store: its folder is not a folder (what a read-only or vanished mount looks like to a
process running as root, which ignores permission bits), and a real full disk (a tiny tmpfs, where the test may
mount one).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_helpers import Stack
from sqlalchemy import select

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.storage.models import Usage

HAL = Requester(platform="discord", user_id="9009", display_name="hal", guild_id="g9")


async def _assert_failed_and_refunded(stack: Stack, job_ids: list[str]) -> None:
    for job_id in job_ids:
        view = await stack.service.job(job_id)
        assert view.status == "failed"
        assert view.error == "the server could not save the images; nothing was charged"
        assert view.charged_gpu_seconds == 0
        assert view.attempts == 1  # failed once, not retried into a loop
        [final] = [e for e in await events.history(stack.pool, job_id, ns=stack.ns) if e.final]
        assert isinstance(final, events.Failed)
    async with stack.sessions() as session:
        rows = (await session.execute(select(Usage.reserved_gpu_seconds, Usage.used_gpu_seconds))).all()
    assert rows
    assert all((reserved, used) == (0, 0) for reserved, used in rows)


async def test_an_unwritable_store_fails_each_job_with_a_refund(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    tickets = await stack.service.imagine(HAL, "a lantern --repeat 2", idempotency_key="d-1")
    stack.image_root.parent.mkdir(parents=True, exist_ok=True)
    stack.image_root.write_bytes(b"")  # where the store's folder should be
    with caplog.at_level(logging.ERROR, logger="impasto.queue"):
        await stack.drain()  # returns: both jobs ended, the worker did not die on the first
    await _assert_failed_and_refunded(stack, [t.job_id for t in tickets])
    lines = [r.getMessage() for r in caplog.records if "cannot write its images" in r.getMessage()]
    assert len(lines) == 2
    assert str(stack.image_root) in lines[0]
    assert "the job fails and is refunded" in lines[0]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs filled to the last byte; skipped where this process may not mount one."""
    mount = tmp_path / "full"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("this process may not mount a tmpfs (needs root with CAP_SYS_ADMIN)")
    try:
        with (mount / "ballast").open("wb", buffering=0) as ballast:
            try:
                while True:
                    ballast.write(b"\0" * 4096)
            except OSError:
                pass  # ENOSPC: full
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


async def test_a_full_disk_fails_the_job_with_a_refund(stack: Stack, full_disk: Path) -> None:
    [ticket] = await stack.service.imagine(HAL, "a lantern", idempotency_key="d-2")
    await dataclasses.replace(stack, image_root=full_disk / "images").drain()
    await _assert_failed_and_refunded(stack, [ticket.job_id])
