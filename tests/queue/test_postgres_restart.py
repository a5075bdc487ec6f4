"""PostgreSQL stopped under load and started again, while a worker process keeps running.

The test runs a PostgreSQL of its own (``initdb`` + ``pg_ctl`` in a temporary folder, its own port), so the shared
server is never touched. Jobs for two users are queued, the database is stopped (``-m immediate``: as a crash) once a
job is painting, and started again a moment later. The worker is never restarted; every admitted job must reach
exactly one end with exactly one settlement or release of its hold.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from queue_helpers import TEST_REDIS_URL
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.engine.registry import load_registry
from impasto.queue import events, keys
from impasto.queue.client import service_enqueue
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.models import Job, LedgerEntry
from impasto.storage.plans import load_plans
from impasto.storage.testing import migrated_engine

FINAL = ("done", "failed", "cancelled")
USERS = [Requester(platform="discord", user_id=f"p{i}", display_name=f"p{i}", guild_id="gp") for i in range(2)]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and pg_ctl refuse to run as root; a root test runs them as the postgres user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class OwnPostgres:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(["pg_ctl", "-D", str(self.folder / "data"), *args]), check=True, capture_output=True
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "immediate", "-w", "stop")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("initdb/pg_ctl are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb would refuse")
    folder = Path(tempfile.mkdtemp(prefix="impasto-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        subprocess.run(
            _as_postgres(["initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True,
            capture_output=True,
        )
        server = OwnPostgres(folder, port)
        server.start()
        try:
            yield server
        finally:
            subprocess.run(
                _as_postgres(["pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "stop"]), capture_output=True
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def own_sessions(own_postgres: OwnPostgres) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_engine(own_postgres.url) as engine:
        yield session_factory(engine)


def _worker(ns: keys.Namespace, db_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
        "IMPASTO_REDIS_URL": TEST_REDIS_URL,
        "IMPASTO_QUEUE_NAMESPACE": ns.prefix,
        "IMPASTO_DATABASE_URL": db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
        "IMPASTO_WORKER_NAME": "patient",
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
async def test_a_stopped_database_comes_back_and_every_job_ends_once(
    own_postgres: OwnPostgres,
    own_sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    ns: keys.Namespace,
    data_dir: Path,
) -> None:
    service = JobService(
        own_sessions, ImageStore(data_dir / "images"), load_registry(default="tiny-sd15"), load_plans(),
        service_enqueue(pool, ns=ns),
    )  # fmt: skip
    since = await events.last_id(pool, ns=ns)
    job_ids: list[str] = []
    for n, who in enumerate(USERS):
        job_ids += [t.job_id for t in await service.imagine(who, "a flood --repeat 4", idempotency_key=f"pg-{n}")]
    worker = _worker(ns, own_postgres.url, data_dir)
    try:
        async with asyncio.timeout(120):
            async for event in events.listen(pool, job_ids=job_ids, since=since, block_ms=200, ns=ns):
                if isinstance(event, events.Progress):
                    break  # a job is painting: now the database goes away
        own_postgres.stop()
        await asyncio.sleep(2)  # down for a while: the worker meets it down (this is the outage, not a wait)
        assert worker.poll() is None, "the worker died with the database"
        own_postgres.start()

        deadline = time.monotonic() + 180
        while True:  # SQL is the record: wait for every job to reach its end (or the deadline)
            try:
                statuses = await _statuses(own_sessions, job_ids)
            except Exception:  # the pool's connections died with the server; the next try opens fresh ones
                statuses = {}
            if len(statuses) == len(job_ids) and all(s in FINAL for s in statuses.values()):
                break
            assert time.monotonic() < deadline, statuses
            assert worker.poll() is None, "the worker died after the database came back"
            await asyncio.sleep(0.2)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)

    assert "done" in statuses.values()
    async with own_sessions() as session:
        for job_id in job_ids:
            kinds = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id))).all()
            assert len([k for k in kinds if k in ("settle", "release")]) == 1, (job_id, statuses[job_id], kinds)
