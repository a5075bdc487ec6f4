"""``impasto bench-service``: the service's own overhead, with the engine replaced by a no-op renderer.

Every job takes the whole real path — job service admission in SQL, ``enqueue`` on arq/Redis, a worker claiming it,
the no-op render on the GPU thread, images into the store, ``complete_job`` in SQL, the completion event — through
one in-process worker. Two runs:

* ``idle``: one job at a time, the next submitted when the previous is done. Enqueue → start latency of an idle
  worker (the worker blocks on a wake-up list that ``enqueue`` pushes to).
* ``burst``: N jobs queued while the worker holds off, then drained: jobs/s through one worker, the time from one
  job's start to the next (the per-job service overhead), and the worker's pause between arq ending one job and
  taking the next (the queue's own gap: a poll delay before the wake-up list, about a Redis round trip now), and
  the CPU time this process spent per job while draining (the worker and the reader that waits for the jobs'
  ends, which reads the event stream in batches as a bot process would; the database server's and Redis's own CPU
  are not counted).

Latency is measured in this process (``time.perf_counter``): from the call to ``enqueue`` to the renderer starting.
It needs a Redis whose impasto queue is empty (it never flushes anything; ``IMPASTO_QUEUE_NAMESPACE`` gives it its own
keys beside a deployment) and uses a fresh SQLite database in a temporary folder unless ``--database-url`` names an
empty one.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impasto.bots.config import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bench-service",
        help="measure queue/service overhead with a no-op renderer (latency p50/p99, jobs/s)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--jobs", type=int, default=200, help="jobs in the burst run (default 200)")
    p.add_argument("--idle-jobs", type=int, default=100, help="jobs in the one-at-a-time run (default 100)")
    p.add_argument("--redis-url", default=None, help="default: IMPASTO_REDIS_URL, else redis://127.0.0.1:6379/14")
    p.add_argument("--database-url", default=None, help="an EMPTY database to migrate and use (default: temp SQLite)")
    p.add_argument("--poll-delay-s", type=float, default=0.05, help="the worker's queue poll delay (default 0.05)")
    p.set_defaults(handler=run_bench)


@dataclass
class _Clock:
    enqueued: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    # The queue's own gap: arq's job end (after_job_end) → arq starting the next job (run_job), burst run only.
    taken: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    statements: int = 0  # SQL statements sent while the burst drains (the worker's: the job service is done by then)
    counting: bool = False


def run_bench(args: argparse.Namespace) -> int:
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    redis_url = args.redis_url or settings.redis_url or "redis://127.0.0.1:6379/14"
    if args.jobs < 1 or args.idle_jobs < 0:
        print("--jobs must be at least 1 and --idle-jobs at least 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="impasto-bench-") as tmp:
        db_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        return asyncio.run(_bench(args, redis_url, db_url, Path(tmp)))


async def _bench(args: argparse.Namespace, redis_url: str, db_url: str, tmp: Path) -> int:
    import warnings

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from impasto.bots.service.jobs import JobService
    from impasto.bots.service.requester import Requester
    from impasto.engine.registry import load_registry
    from impasto.engine.spec import ProgressFn, RenderResult
    from impasto.migrations.config import upgrade
    from impasto.queue import events, keys
    from impasto.queue.client import open_pool, service_enqueue
    from impasto.queue.renderer import NoopRenderer
    from impasto.queue.settings import WorkerConfig
    from impasto.queue.specs import RenderWork
    from impasto.queue.worker import WorkerSetup, build_worker
    from impasto.storage.db import make_engine, session_factory
    from impasto.storage.images import ImageStore
    from impasto.storage.plans import load_plans

    clock = _Clock()

    class TimedRenderer(NoopRenderer):
        def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
            clock.started.setdefault(work.job_id, time.perf_counter())
            return super().render(work, progress)

    def count_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if clock.counting and not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE is sent as a statement
            clock.statements += 1

    # Every engine of this process (the worker builds its own in on_startup).
    event.listen(Engine, "before_cursor_execute", count_statement)
    db = make_engine(db_url)
    await upgrade(db)
    ns = keys.namespace_from_env()  # IMPASTO_QUEUE_NAMESPACE: a bench beside a deployment sharing its Redis
    pool = await open_pool(redis_url)
    if await pool.zcard(ns.queue):
        print(f"the impasto queue on {redis_url} is not empty; use an idle Redis (--redis-url)", file=sys.stderr)
        await pool.aclose()
        await db.dispose()
        return 2
    enqueue = service_enqueue(pool, ns=ns)

    async def timed_enqueue(queued: Any) -> object:
        clock.enqueued[queued.job_id] = time.perf_counter()
        return await enqueue(queued)

    images = ImageStore(tmp / "images")
    service = JobService(session_factory(db), images, load_registry(default="tiny-sd15"), load_plans(), timed_enqueue)
    setup = WorkerSetup(
        config=WorkerConfig(
            name="bench-gpu0",
            namespace=ns.prefix,
            poll_delay_s=args.poll_delay_s,
            positions_announced=25,
            exit_when_wedged=False,
        ),
        database_url=db_url,
        image_root=images.root,
        renderer_factory=lambda: TimedRenderer(steps=1),
    )
    worker = build_worker(setup, redis_url=redis_url, handle_signals=False)
    _time_pickups(worker, clock)
    running = asyncio.create_task(worker.main())
    counter = 0

    def who() -> Requester:
        nonlocal counter
        counter += 1
        # Spread over users so that plan limits (concurrent + queued jobs per user) never refuse a bench job.
        return Requester(platform="discord", user_id=f"bench-{counter % 64}", display_name="bench", guild_id="bench")

    try:
        idle: list[str] = []
        for i in range(args.idle_jobs):
            since = await events.last_id(pool, ns=ns)
            [ticket] = await service.imagine(who(), f"idle {i}", idempotency_key=f"bench-idle-{i}-{time.time()}")
            async for _ in events.listen(pool, job_ids=[ticket.job_id], since=since, ns=ns):
                pass
            idle.append(ticket.job_id)

        # Burst: fill the queue while the worker holds off, then let it drain: jobs/s through one worker.
        worker.allow_pick_jobs = False
        since = await events.last_id(pool, ns=ns)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        burst: list[str] = []
        for i in range(args.jobs):
            [ticket] = await service.imagine(who(), f"burst {i}", idempotency_key=f"bench-burst-{i}-{time.time()}")
            burst.append(ticket.job_id)
        submitted_s = time.perf_counter() - t0
        submitted_cpu_s = time.process_time() - cpu0
        t1 = time.perf_counter()
        cpu1 = time.process_time()
        clock.taken.clear()
        clock.ended.clear()
        clock.counting = True
        worker.allow_pick_jobs = True
        await _until_ended(pool, ns.events, burst, since)
        drained_s = time.perf_counter() - t1
        drained_cpu_s = time.process_time() - cpu1
        clock.counting = False
        # The last job's "done" is published before arq takes it off its queue: let the worker finish that, so the
        # next run finds an empty queue. (arq has no event for it, hence the short poll.)
        deadline = time.monotonic() + 10
        while await pool.zcard(ns.queue) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    finally:
        event.remove(Engine, "before_cursor_execute", count_statement)
        running.cancel()
        with warnings.catch_warnings():  # arq 0.28 calls redis-py's deprecated close() in Worker.close
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()
        await pool.aclose()
        await db.dispose()

    print(f"impasto bench-service: no-op renderer (1 step), one worker, poll delay {args.poll_delay_s:g} s")
    print(f"redis {redis_url}, database {db.url.get_backend_name()}")
    if idle:
        _latency("idle  (one job at a time): enqueue→start", [clock.started[j] - clock.enqueued[j] for j in idle])
    starts = sorted(clock.started[j] for j in burst)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    if gaps:
        _latency(f"burst ({args.jobs} queued): start→next start", gaps)
    pickups = [b - a for a, b in zip(clock.ended, clock.taken[1:], strict=False) if b >= a]
    if pickups:
        _latency(f"burst ({args.jobs} queued): job end→next job taken (the queue's gap)", pickups)
    print(
        f"burst: submitted in {submitted_s:.2f} s ({args.jobs / submitted_s:.1f} jobs/s through the job service, "
        f"CPU {submitted_cpu_s / args.jobs * 1000:.1f} ms per job in this process, not the database)"
    )
    print(f"burst: drained in {drained_s:.2f} s = {args.jobs / drained_s:.1f} jobs/s through one worker")
    print(
        f"burst: CPU {drained_cpu_s / args.jobs * 1000:.1f} ms per job while draining "
        f"({drained_cpu_s / drained_s:.0%} of one core; this process: worker and event reader, not the database)"
    )
    print(f"burst: {clock.statements / args.jobs:.1f} SQL statements per job (the worker's, BEGIN and COMMIT aside)")
    return 0


#: The drain's reader takes the event stream in batches this far apart: in this process beside the worker, it must
#: not cost the worker more than a bot process would (the end of the drain is seen at most this much late).
DRAIN_READ_EVERY_S = 0.01

_FINAL_KINDS = frozenset({b"done", b"failed", b"cancelled", "done", "failed", "cancelled"})


async def _until_ended(pool: Any, stream: str, job_ids: list[str], since: str) -> None:
    """Return once every job had its terminal event: only the ``job`` and ``kind`` fields are read, not the events."""
    pending = set(job_ids)
    cursor = since
    while pending:
        batches = await pool.xread({stream: cursor}, count=1000, block=1000)
        for _stream, entries in batches or []:
            for entry_id, fields in entries:
                cursor = entry_id
                if fields.get(b"kind", fields.get("kind")) in _FINAL_KINDS:
                    job = fields.get(b"job", fields.get("job"))
                    pending.discard(job.decode() if isinstance(job, bytes) else str(job))
        if pending:
            await asyncio.sleep(DRAIN_READ_EVERY_S)


def _time_pickups(worker: Any, clock: _Clock) -> None:
    """Wrap arq's per-job entry and end hook to time the worker's pause between two jobs."""
    run_job, after_job_end = worker.run_job, worker.after_job_end

    async def timed_run_job(job_id: str, score: int) -> None:
        clock.taken.append(time.perf_counter())
        await run_job(job_id, score)

    async def timed_after_job_end(ctx: dict[str, Any]) -> None:
        await after_job_end(ctx)
        clock.ended.append(time.perf_counter())

    worker.run_job = timed_run_job
    worker.after_job_end = timed_after_job_end


def _latency(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"{label}: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
