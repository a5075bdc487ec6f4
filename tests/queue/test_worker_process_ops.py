"""`impasto worker` as operators run it: IMPASTO_METRICS_PORT, IMPASTO_LOG_FORMAT=json and IMPASTO_WORKER_MODELS
on a real worker process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from queue_helpers import TEST_REDIS_URL, Stack

from impasto.bots.service.requester import Requester
from impasto.queue import events
from impasto.queue.served import serving

ALICE = Requester(platform="discord", user_id="1001", display_name="alice", guild_id="g1", channel_id="c1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until_ready(client: httpx.AsyncClient, url: str, worker: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert worker.returncode is None, await asyncio.to_thread(log.read_text)
        try:
            if (await client.get(url, timeout=2)).status_code == 200:
                return
        except httpx.TransportError:
            pass  # the port is not open yet
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker was not ready in 90 s:\n{await asyncio.to_thread(log.read_text)}")


async def test_the_worker_process_serves_its_port_counts_its_job_and_logs_json(
    stack: Stack, data_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
        "IMPASTO_REDIS_URL": TEST_REDIS_URL,
        "IMPASTO_QUEUE_NAMESPACE": stack.ns.prefix,
        "IMPASTO_DATABASE_URL": stack.db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
        "IMPASTO_DEFAULT_MODEL": "tiny-sd15",
        "IMPASTO_WORKER_POLL_DELAY_S": "0.05",
        "IMPASTO_WORKER_MODELS": "tiny-sd15",
        "IMPASTO_WORKER_NAME": "ops-test-gpu",
        "IMPASTO_METRICS_PORT": str(port),
        "IMPASTO_METRICS_HOST": "127.0.0.1",
        "IMPASTO_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "impasto.bots", "worker", "--renderer", "noop", env=env, stderr=sink
        )
    try:
        async with httpx.AsyncClient() as client:
            await _until_ready(client, f"http://127.0.0.1:{port}/readyz", worker, log)
            # on_startup announced what it serves before the worker became ready.
            assert await serving(stack.pool, ns=stack.ns) == {"ops-test-gpu": ("tiny-sd15",)}
            status = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "impasto.bots", "status"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "workers serving: ops-test-gpu (tiny-sd15)" in status.stdout, status.stderr
            since = await events.last_id(stack.pool, ns=stack.ns)
            [ticket] = await stack.service.imagine(ALICE, "a lighthouse", idempotency_key="p-1")
            seen = [
                e
                async for e in events.listen(
                    stack.pool, job_ids=[ticket.job_id], since=since, block_ms=500, ns=stack.ns
                )
            ]
            assert seen[-1].kind == "done"
            # The counters move in arq's after-job hook, just after the job's terminal event: wait for it.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                if 'impasto_jobs_total{action="imagine",outcome="done"}' in scraped:
                    break
                await asyncio.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(worker.wait(), 60)
    text = await asyncio.to_thread(log.read_text)
    assert rc == 0, text
    assert await serving(stack.pool, ns=stack.ns) == {}  # it said goodbye

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
    }
    assert samples[("impasto_jobs_total", (("action", "imagine"), ("outcome", "done")))] == 1
    assert samples[("impasto_render_seconds_count", (("model", "tiny-sd15"),))] == 1
    assert samples[("impasto_workers", (("model", "tiny-sd15"),))] == 1  # the worker sees its own announcement

    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any("serves tiny-sd15" in line["event"] for line in lines)
    about_job = [line for line in lines if ticket.job_id in line["event"]]
    assert about_job
    assert all(line["job_id"] == ticket.job_id for line in about_job)
