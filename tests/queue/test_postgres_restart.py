"""PostgreSQL stopped under load and started again, while a worker process keeps running; and stopped while a
render paints, whose result the worker keeps and settles once the database is back (``queue.settle``).

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
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from queue_helpers import TEST_REDIS_URL, close_worker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobTicket
from impasto.engine.errors import EngineError
from impasto.engine.registry import load_registry
from impasto.engine.spec import ProgressFn, RenderResult
from impasto.queue import events, keys
from impasto.queue.client import service_enqueue
from impasto.queue.renderer import NoopRenderer, Renderer
from impasto.queue.settings import WorkerConfig
from impasto.queue.specs import RenderWork
from impasto.queue.worker import WorkerSetup, build_worker
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.models import Image as ImageRow
from impasto.storage.models import Job, LedgerEntry, Usage
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


@dataclass
class _TimedRender(NoopRenderer):
    """A slow no-op render that says when it begins and ends (it runs on the worker's GPU thread)."""

    began: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    painted: list[str] = field(default_factory=list)

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        self.painted.append(work.job_id)
        self.began.set()
        try:
            return super().render(work, progress)
        finally:
            self.ended.set()


async def _two_jobs(
    sessions: async_sessionmaker[AsyncSession], pool: ArqRedis, ns: keys.Namespace, images: Path, tag: str
) -> tuple[str, JobTicket, JobTicket]:
    """Two users' jobs on the queue, and the event stream's position before them."""
    service = JobService(
        sessions, ImageStore(images), load_registry(default="tiny-sd15"), load_plans(), service_enqueue(pool, ns=ns)
    )
    since = await events.last_id(pool, ns=ns)
    [first] = await service.imagine(USERS[0], "a lighthouse", idempotency_key=f"{tag}-1")
    [second] = await service.imagine(USERS[1], "a harbour", idempotency_key=f"{tag}-2")
    return since, first, second


def _outage_worker(
    name: str, ns: keys.Namespace, postgres: OwnPostgres, images: Path, renderer: Renderer, **config: float
) -> Worker:
    """A worker on the test's own PostgreSQL with a short lease, whose sweep runs (and fails) during the outage: it
    must not end the job the worker holds."""
    values = {"name": name, "namespace": ns.prefix, "poll_delay_s": 0.05, "lease_s": 2.0, "sweep_interval_s": 1.0}
    setup = WorkerSetup(
        config=WorkerConfig.model_validate({**values, **config, "exit_when_wedged": False}),
        database_url=postgres.url,
        image_root=images,
        renderer_factory=lambda: renderer,
    )
    return build_worker(setup, redis_url=TEST_REDIS_URL, handle_signals=False)


@pytest.mark.slow
async def test_a_result_painted_while_the_database_is_down_is_kept_and_settled_once_it_returns(
    own_postgres: OwnPostgres,
    own_sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    ns: keys.Namespace,
    data_dir: Path,
    clean_env: None,
) -> None:
    images = data_dir / "images"
    since, first, second = await _two_jobs(own_sessions, pool, ns, images, "down")
    renderer = _TimedRender(steps=8, step_s=0.15)  # 1.2 s: the database goes down while it paints
    # The cancel poll meets the database down mid-render.
    worker = _outage_worker("keeper", ns, own_postgres, images, renderer, cancel_poll_s=0.2)
    running = asyncio.create_task(worker.main())
    try:
        assert await asyncio.to_thread(renderer.began.wait, 60), "the worker never started a render"
        own_postgres.stop()
        assert await asyncio.to_thread(renderer.ended.wait, 30), "the render did not finish"
        [painting] = renderer.painted
        waiting = second.job_id if painting == first.job_id else first.job_id
        await asyncio.sleep(2.5)  # the outage goes on after the render: the worker tries to settle and cannot
        assert not running.done(), "the worker stopped with the database"
        assert not any(e.final for e in await events.history(pool, painting, ns=ns)), "ended while SQL was down"
        assert await pool.exists(in_progress_key_prefix + painting), "the worker let go of the finished job"
        assert not await pool.exists(in_progress_key_prefix + waiting), "a job was taken while SQL was down"
        assert renderer.painted == [painting]
        own_postgres.start()

        ends: dict[str, list[str]] = {first.job_id: [], second.job_id: []}
        async with asyncio.timeout(120):
            async for event in events.listen(pool, job_ids=list(ends), since=since, block_ms=200, ns=ns):
                if event.final:
                    ends[event.job_id].append(event.kind)
        assert ends == {first.job_id: ["done"], second.job_id: ["done"]}
        assert renderer.painted == [painting, waiting]  # the kept result was not painted again
    finally:
        running.cancel()
        await close_worker(worker)

    async with own_sessions() as session:
        for job_id in ends:
            job = await session.get(Job, job_id)
            assert job is not None
            assert (job.status, job.attempts) == ("done", 1)
            kinds = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id))).all()
            assert sorted(kinds) == ["reserve", "settle"], (job_id, kinds)
            stored = (await session.scalars(select(ImageRow.store_key).where(ImageRow.job_id == job_id))).all()
            assert stored
            assert all((images / key[:2] / key[2:4] / key).is_file() for key in stored)
    # A second look at the final events: exactly one each, now that everything has settled.
    for job_id in ends:
        assert [e.kind for e in await events.history(pool, job_id, ns=ns) if e.final] == ["done"]


BROKEN = "the engine broke on this one; nothing was charged"


@dataclass
class _BreakingRender(NoopRenderer):
    """The first job it paints waits for ``go`` and then fails (an ``EngineError``); later jobs paint as usual."""

    began: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)
    broke: threading.Event = field(default_factory=threading.Event)
    painted: list[str] = field(default_factory=list)

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        self.painted.append(work.job_id)
        if len(self.painted) > 1:
            return super().render(work, progress)
        self.began.set()
        try:
            if not self.go.wait(60):
                raise AssertionError("the test never said go")
            raise EngineError(BROKEN)
        finally:
            self.broke.set()


@pytest.mark.slow
async def test_a_job_failed_while_the_database_is_down_is_kept_and_failed_once_it_returns(
    own_postgres: OwnPostgres,
    own_sessions: async_sessionmaker[AsyncSession],
    pool: ArqRedis,
    ns: keys.Namespace,
    data_dir: Path,
    clean_env: None,
) -> None:
    images = data_dir / "images"
    since, first, second = await _two_jobs(own_sessions, pool, ns, images, "fail")
    renderer = _BreakingRender(steps=4, step_s=0.05)
    worker = _outage_worker("failer", ns, own_postgres, images, renderer)
    running = asyncio.create_task(worker.main())
    try:
        assert await asyncio.to_thread(renderer.began.wait, 60), "the worker never started a render"
        own_postgres.stop()
        renderer.go.set()  # the render fails while SQL is down: the worker has to fail the job and cannot yet
        assert await asyncio.to_thread(renderer.broke.wait, 30), "the render did not end"
        [failing] = renderer.painted
        waiting = second.job_id if failing == first.job_id else first.job_id
        await asyncio.sleep(2.5)  # longer than the lease: the worker keeps the job, renewing its lock
        assert not running.done(), "the worker stopped with the database"
        assert not any(e.final for e in await events.history(pool, failing, ns=ns)), "ended while SQL was down"
        assert await pool.exists(in_progress_key_prefix + failing), "the worker let go of the job it has to fail"
        assert not await pool.exists(in_progress_key_prefix + waiting), "a job was taken while SQL was down"
        assert renderer.painted == [failing]
        own_postgres.start()

        ends: dict[str, list[str]] = {first.job_id: [], second.job_id: []}
        messages: list[str] = []
        async with asyncio.timeout(120):
            async for event in events.listen(pool, job_ids=list(ends), since=since, block_ms=200, ns=ns):
                if event.final:
                    ends[event.job_id].append(event.kind)
                if isinstance(event, events.Failed):
                    messages.append(event.message)
                if all(ends.values()):
                    break
        assert ends == {failing: ["failed"], waiting: ["done"]}
        assert messages == [BROKEN]  # the engine's reason, not the sweep's "the worker stopped"
        assert renderer.painted == [failing, waiting]  # the failed job was not painted again
        assert not running.done(), "the worker stopped after the database came back"
    finally:
        running.cancel()
        await close_worker(worker)

    async with own_sessions() as session:
        job = await session.get(Job, failing)
        assert job is not None
        assert (job.status, job.error, job.attempts) == ("failed", BROKEN, 1)
        assert job.reserved_gpu_seconds == 0.0
        kinds = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == failing))).all()
        assert sorted(kinds) == ["release", "reserve"], kinds  # refunded, once
        usage = (await session.scalars(select(Usage).where(Usage.user_id == job.user_id))).all()
        assert usage
        assert all((u.reserved_gpu_seconds, u.used_gpu_seconds, u.images) == (0.0, 0.0, 0) for u in usage)
        kept = await session.get(Job, waiting)
        assert kept is not None
        assert kept.status == "done"
    for job_id, kind in ((failing, "failed"), (waiting, "done")):
        assert [e.kind for e in await events.history(pool, job_id, ns=ns) if e.final] == [kind]
