"""Redis SIGKILLed under load and started again — from its AOF, or empty — while a worker process keeps running.

The test starts a Redis of its own on a free port (the shared one is never touched), queues jobs for two users
through the job service, kills Redis once a job is painting, and starts it again on the same port. The worker is
never restarted. Every admitted job must end exactly once, with one settlement or one release of its hold: SQL is
the record, and the sweep re-enqueues what Redis lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.engine.registry import load_registry
from impasto.queue import events, keys
from impasto.queue.client import open_pool, service_enqueue
from impasto.storage.images import ImageStore
from impasto.storage.models import Job, LedgerEntry
from impasto.storage.plans import load_plans

FINAL = ("done", "failed", "cancelled")
USERS = [Requester(platform="discord", user_id=f"r{i}", display_name=f"r{i}", guild_id="gr") for i in range(2)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnRedis:
    """A redis-server of this test's own: ``kill()`` is SIGKILL, ``start()`` brings it back on the same port."""

    folder: Path
    port: int
    aof: bool
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--save", "", "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:  # ready when it answers (it loads the AOF first)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@pytest.fixture(params=[True, False], ids=["aof", "empty"])
def own_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder, _free_port(), aof=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def service(
    own_redis: OwnRedis, sessions: async_sessionmaker[AsyncSession], data_dir: Path
) -> AsyncIterator[JobService]:
    pool = await open_pool(own_redis.url)
    try:
        yield JobService(
            sessions,
            ImageStore(data_dir / "images"),
            load_registry(default="tiny-sd15"),
            load_plans(),
            service_enqueue(pool),
        )
    finally:
        await pool.aclose()


def _worker(own_redis: OwnRedis, db_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
        "IMPASTO_REDIS_URL": own_redis.url,
        "IMPASTO_DATABASE_URL": db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
        "IMPASTO_WORKER_NAME": "steadfast",
        "IMPASTO_WORKER_LEASE_S": "2",
        "IMPASTO_WORKER_SWEEP_INTERVAL_S": "1",
    }
    cmd = [sys.executable, "-m", "impasto.bots", "worker", "--renderer", "noop", "--noop-steps", "10"]
    return subprocess.Popen([*cmd, "--noop-step-s", "0.05"], env=env, stderr=subprocess.DEVNULL)


async def _statuses(sessions: async_sessionmaker[AsyncSession], job_ids: list[str]) -> dict[str, str]:
    async with sessions() as session:
        rows = (await session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))).all()
    return dict(rows)


@pytest.mark.slow
async def test_a_killed_redis_loses_no_job_and_settles_each_once(
    own_redis: OwnRedis,
    service: JobService,
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    data_dir: Path,
) -> None:
    listener = redis.asyncio.Redis.from_url(own_redis.url)
    since = await events.last_id(listener)
    job_ids: list[str] = []
    for n, who in enumerate(USERS):
        tickets = await service.imagine(who, "a storm --repeat 4", idempotency_key=f"rr-{n}")
        job_ids += [t.job_id for t in tickets]
    worker = _worker(own_redis, str(db_url), data_dir)
    try:
        async with asyncio.timeout(120):
            async for event in events.listen(listener, job_ids=job_ids, since=since, block_ms=200):
                if isinstance(event, events.Progress):
                    break  # a job is painting: now Redis dies
        await listener.aclose()
        own_redis.kill()
        own_redis.start()

        deadline = time.monotonic() + 180
        while True:  # SQL is the record: wait for every job to reach its end (or the deadline)
            statuses = await _statuses(sessions, job_ids)
            if all(s in FINAL for s in statuses.values()) or time.monotonic() > deadline:
                break
            assert worker.poll() is None, "the worker died with Redis"
            await asyncio.sleep(0.2)
        assert worker.poll() is None  # it reconnected by itself; nobody restarted it
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)

    assert sorted(statuses) == sorted(job_ids)
    assert set(statuses.values()) <= set(FINAL), statuses
    assert list(statuses.values()).count("done") >= 1
    async with sessions() as session:
        for job_id in job_ids:
            kinds = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id))).all()
            ended = [k for k in kinds if k in ("settle", "release")]
            assert len(ended) == 1, (job_id, statuses[job_id], kinds)
        undone = await session.scalar(select(func.count()).where(Job.id.in_(job_ids), Job.status.not_in(FINAL)))
    assert undone == 0


def test_the_compose_redis_keeps_an_aof() -> None:
    compose = (Path(__file__).parents[2] / "docker-compose.yml").read_text(encoding="utf-8")
    assert '"--appendonly", "yes"' in compose
    assert keys.DEFAULT.queue.startswith("impasto:")
