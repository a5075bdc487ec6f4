"""``impasto status``: what waits per lane, what is held, what a worker holds — read from the real Redis and SQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from arq.constants import in_progress_key_prefix
from queue_helpers import TEST_REDIS_URL, Stack

from impasto.bots.service.requester import Requester
from impasto.queue.status import lane_of_score, queue_status
from impasto.storage.lifecycle import claim_job

IDA = Requester(platform="discord", user_id="9001", display_name="ida", guild_id="g9")
JO = Requester(platform="telegram", user_id="9002", display_name="jo")


def _impasto(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impasto.bots", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_waiting_held_and_painting(stack: Stack) -> None:
    tickets = await stack.service.imagine(IDA, "a shell --repeat 4", idempotency_key="st-1")  # 3 queued, 1 held
    await stack.service.imagine(JO, "a dune --turbo", idempotency_key="st-2")
    # A worker took Ida's first job: it holds arq's lock and the row says which worker paints it.
    await stack.pool.set(in_progress_key_prefix + tickets[0].job_id, b"1", px=30_000)
    async with stack.sessions() as session, session.begin():
        assert await claim_job(session, tickets[0].job_id, worker="gpu7") is not None

    status = await queue_status(stack.pool, stack.sessions, ns=stack.ns)

    assert status.waiting == {"turbo": 1, "fast": 2, "relax": 0}
    assert status.in_progress == 1
    assert (status.held, status.held_users) == (1, 1)
    assert status.painting == {"gpu7": 1}
    assert status.oldest_wait_s is not None
    assert status.oldest_wait_s >= 0
    lines = status.lines()
    assert lines[0].endswith("3 waiting for a GPU (turbo 1, fast 2, relax 0), 1 held by a worker")
    assert lines[1] == "held behind their user's concurrency limit: 1 job(s) of 1 user(s)"


def test_scores_map_back_to_their_lanes() -> None:
    assert lane_of_score(100_000_000_123) == "turbo"
    assert lane_of_score(200_000_000_000) == "fast"
    assert lane_of_score(399_999_999_999) == "relax"
    assert lane_of_score(1_795_000_000_000) is None  # a plain arq time (a retry): no lane


async def test_the_cli_prints_json(stack: Stack, data_dir: Path) -> None:
    await stack.service.imagine(JO, "a reef", idempotency_key="st-3")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
        "IMPASTO_REDIS_URL": TEST_REDIS_URL,
        "IMPASTO_QUEUE_NAMESPACE": stack.ns.prefix,
        "IMPASTO_DATABASE_URL": stack.db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
    }
    run = await asyncio.to_thread(_impasto, env, "status", "--json")
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert status["waiting"]["fast"] == 1
    assert status["namespace"] == stack.ns.prefix
    missing = await asyncio.to_thread(_impasto, {k: v for k, v in env.items() if k != "IMPASTO_REDIS_URL"}, "status")
    assert missing.returncode == 2
    assert "IMPASTO_REDIS_URL is not set" in missing.stderr
    unreachable = await asyncio.to_thread(_impasto, {**env, "IMPASTO_REDIS_URL": "redis://127.0.0.1:1/0"}, "status")
    assert unreachable.returncode == 2
    assert unreachable.stderr.splitlines()[-1].startswith("cannot reach Redis: ")
    assert "Traceback" not in unreachable.stderr
