"""What the operations layer costs: prints numbers (run: .venv/bin/python tests/ops/bench_ops.py).

* a JSON log line (structlog's formatter with the redactor), per line;
* rendering an English refusal in Chinese (the reverse-template match), per message;
* the worker's metrics hook after a job (one SQL read + the counters), per job, on SQLite and PostgreSQL;
* a /metrics scrape with the queue gauges read from Redis and SQL, per scrape;
* the served-models claim filter over arq's 100-id read, the first time (SQL) and after (memo).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from impasto.bots.i18n.refusals import localize
from impasto.bots.ops.health import serve_process_ops
from impasto.bots.ops.logs import configure_logging
from impasto.queue import keys, metrics
from impasto.queue.served import ModelFilter
from impasto.storage import admin
from impasto.storage.db import session_factory
from impasto.storage.models import Job, utcnow
from impasto.storage.testing import migrated_engine, scratch_database

REDIS = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

REFUSALS = [
    "--chaos 200 is out of range; allowed 0–100",
    "unknown parameter --chaso; did you mean --chaos?",
    "in your /settings: --chaos 500 is out of range; allowed 0–100",
    "LoRA weight '99' in <lora:style:99> is not allowed; use a number from -10 to 10",
    "the prompt has no text; write what to paint (image links and --parameters alone are not enough)",
    "something no template knows",
]


def bench_logs(n: int = 20_000) -> None:
    out = io.StringIO()
    configure_logging("json", secrets=["a-database-password", "123456:TEST-token-abcdefghij"], stream=out)
    log = logging.getLogger("impasto.bench")
    start = time.perf_counter()
    for i in range(n):
        log.info("job %s: step %d of %d", "Ab3dE5fG7hJ9", i % 30, 30)
    elapsed = time.perf_counter() - start
    logging.getLogger().handlers.clear()
    print(f"json log line: {elapsed / n * 1e6:.1f} µs per line ({n} lines, {len(out.getvalue()) / n:.0f} bytes each)")


def bench_refusals(rounds: int = 2_000) -> None:
    localize(REFUSALS[0], "zh_Hans")  # compile the patterns once
    start = time.perf_counter()
    for _ in range(rounds):
        for message in REFUSALS:
            localize(message, "zh_Hans")
    elapsed = time.perf_counter() - start
    print(f"refusal in Chinese: {elapsed / (rounds * len(REFUSALS)) * 1e6:.1f} µs per message (mixed corpus)")


async def bench_hook_and_filter(backend: str, tmp: Path) -> None:
    async with (
        scratch_database(backend, postgres_admin_url=POSTGRES, tmp_dir=tmp) as url,  # type: ignore[arg-type]
        migrated_engine(url) as engine,
    ):
        sessions = session_factory(engine)
        ids: list[str] = []
        async with sessions() as session, session.begin():
            user = await admin.ensure_user(session, "discord", "1")
            for n in range(100):
                job = Job(
                    user_id=user.id, action="imagine", model="v6" if n % 2 else "v5", status="done",
                    idempotency_key=f"b/{n}", request_key="b", queued_at=utcnow(), released_at=utcnow(),
                    started_at=utcnow(), finished_at=utcnow(), gpu_seconds=3.0, charged_gpu_seconds=3.0,
                )  # fmt: skip
                session.add(job)
                await session.flush()
                ids.append(job.id)
        times = []
        for job_id in ids:
            start = time.perf_counter()
            async with sessions() as session:
                job = await session.get(Job, job_id)
            assert job is not None
            metrics.record_job_end(job)
            times.append(time.perf_counter() - start)
        print(f"metrics hook after a job ({backend}): median {statistics.median(times) * 1e3:.2f} ms")
        chosen = ModelFilter({"v6"}, lambda: sessions)
        raw = [i.encode() for i in ids]
        start = time.perf_counter()
        kept = await chosen.served(raw)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(100):
            await chosen.served(raw)
        again = (time.perf_counter() - start) / 100
        print(
            f"served-models filter over 100 ids ({backend}): first {first * 1e3:.2f} ms (SQL), "
            f"then {again * 1e6:.0f} µs (memo); kept {len(kept)}"
        )


async def bench_scrape(tmp: Path) -> None:
    async with scratch_database("postgresql", postgres_admin_url=POSTGRES, tmp_dir=tmp) as url:
        async with migrated_engine(url):
            pass
        ns = keys.Namespace(f"impasto-bench-{secrets.token_hex(4)}:")
        async with serve_process_ops(0, redis_url=REDIS, database_url=url, ns=ns) as server:
            assert server is not None
            async with httpx.AsyncClient() as client:
                for path in ("/metrics", "/readyz"):
                    times = []
                    for _ in range(50):
                        start = time.perf_counter()
                        response = await client.get(f"http://127.0.0.1:{server.port}{path}")
                        times.append(time.perf_counter() - start)
                        assert response.status_code == 200
                    print(
                        f"GET {path}: median {statistics.median(times) * 1e3:.1f} ms, "
                        f"max {max(times) * 1e3:.1f} ms ({len(response.content)} bytes)"
                    )


async def main() -> None:
    bench_logs()
    bench_refusals()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            await bench_hook_and_filter(backend, Path(tmp))
        await bench_scrape(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
