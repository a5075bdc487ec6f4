"""Benchmark (not a test): how fast the job service admits /imagine requests and the worker side settles them.

    .venv/bin/python tests/storage/bench_admission.py [N]

Per backend (a scratch PostgreSQL database on IMPASTO_TEST_POSTGRES_URL, and a SQLite file): N sequential imagines
(parse + quota + job row + a recording enqueue), N concurrent imagines from 10 users, and N claim + complete cycles.
Prints p50/p99 latencies and rates; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import QueuedRender
from impasto.engine.registry import load_registry
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import NewImage, claim_job, complete_job
from impasto.storage.plans import parse_plans
from impasto.storage.testing import Backend, migrated_engine, scratch_database

POSTGRES = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PLANS = parse_plans(
    {"plans": {"big": {"fast_gpu_hours": 1e6, "relax": True, "max_concurrent_jobs": 1000, "max_queued_jobs": 100000}}}
)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def bench(backend: Backend, n: int, tmp: Path) -> None:
    async with scratch_database(backend, postgres_admin_url=POSTGRES, tmp_dir=tmp) as url, migrated_engine(url) as eng:
        sessions = session_factory(eng)
        store = ImageStore(tmp / "images")
        queued: list[str] = []

        async def enqueue(render: QueuedRender) -> None:
            queued.append(render.job_id)

        service = JobService(sessions, store, load_registry(), PLANS, enqueue)
        latencies: list[float] = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            await service.imagine(Requester("discord", "1"), f"a lighthouse {i}", idempotency_key=f"s{i}")
            latencies.append(time.perf_counter() - t0)
        took = time.perf_counter() - start
        print(f"{backend:10} sequential imagine ×{n}: {n / took:.0f}/s, {_ms(latencies)}")

        latencies = []

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            await service.imagine(Requester("discord", str(i % 10)), f"a cat {i}", idempotency_key=f"c{i}")
            latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        took = time.perf_counter() - start
        print(f"{backend:10} concurrent imagine ×{n} (10 users): {n / took:.0f}/s, {_ms(latencies)}")

        key = store.put(b"bench")
        images = [NewImage(i, key, 64, 64) for i in range(5)]
        latencies = []
        start = time.perf_counter()
        for job_id in queued[:n]:
            t0 = time.perf_counter()
            async with sessions() as session, session.begin():
                await claim_job(session, job_id, worker="bench")
            async with sessions() as session, session.begin():
                await complete_job(session, job_id, images=images, gpu_seconds=1.0)
            latencies.append(time.perf_counter() - t0)
        took = time.perf_counter() - start
        print(f"{backend:10} claim + complete ×{n}: {n / took:.0f}/s, {_ms(latencies)}")


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("postgresql", "sqlite"):
            await bench(backend, n, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
