"""What an operator graphs: Prometheus metrics for workers and bot processes, and the arq hooks that feed the worker's.

Every metric lives on prometheus-client's default registry, so the process and GC collectors come with them and one
``/metrics`` page (``impasto.bots.ops.health``) shows all of a process's figures. Names follow Prometheus' rules:
``_total`` counters, ``_seconds`` histograms, base units.

Who moves what:

* **The worker** (``instrument(worker)``, arq's ``on_job_start`` / ``after_job_end`` hooks, chained before any hook
  the worker already has): ``impasto_jobs_total{action,outcome}``, ``impasto_job_wait_seconds{model}``,
  ``impasto_render_seconds{model}``, ``impasto_gpu_seconds_total{model}``, ``impasto_credits_spent_total``. They are
  read from the job's SQL row once the job has ended, because the row is the truth under at-least-once delivery: a
  duplicate delivery, which finds its job already final when it starts, counts nothing.
* **Any process with Redis and SQL**, at scrape time (``refresh_queue_gauges``): ``impasto_queue_depth{lane}``,
  ``impasto_jobs_in_progress``, ``impasto_jobs_held``, ``impasto_oldest_wait_seconds``, ``impasto_workers{model}``
  (from the workers' announcements, ``queue.served``).
* **The bots** (called by the job service and the delivery core): ``job_admitted``, ``refused``, ``delivered``,
  ``rate_limited``, ``moderation_refused``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog.contextvars
from arq.connections import ArqRedis
from arq.typing import StartupShutdown
from arq.worker import Worker
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.queue import keys
from impasto.queue.contract import LANES
from impasto.queue.state import STATE_KEY, WorkerState
from impasto.storage.models import FINAL_STATUSES, Guild, Job, User

log = logging.getLogger("impasto.queue")

# Seconds buckets from a turbo draft (well under a second) to a relax job that waited an hour.
_WAIT_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_RENDER_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)

QUEUE_DEPTH = Gauge("impasto_queue_depth", "Jobs on the GPU queue that no worker holds yet, by lane", ["lane"])
JOBS_IN_PROGRESS = Gauge("impasto_jobs_in_progress", "Jobs a worker holds (arq's in-progress lock)")
JOBS_HELD = Gauge("impasto_jobs_held", "Jobs held in SQL behind their user's concurrency limit")
OLDEST_WAIT = Gauge("impasto_oldest_wait_seconds", "How long the longest-waiting released job has waited")
WORKERS = Gauge("impasto_workers", 'Live workers by the model they serve (model="*": every model)', ["model"])

JOBS_ADMITTED = Counter("impasto_jobs_admitted_total", "Jobs the job service admitted", ["action", "lane"])
JOBS = Counter("impasto_jobs_total", "Jobs that ended on a worker", ["action", "outcome"])
JOB_WAIT = Histogram(
    "impasto_job_wait_seconds", "From entering the GPU queue to a worker starting it", ["model"], buckets=_WAIT_BUCKETS
)
RENDER = Histogram(
    "impasto_render_seconds", "From a worker starting a job to its end", ["model"], buckets=_RENDER_BUCKETS
)
GPU_SECONDS = Counter("impasto_gpu_seconds_total", "GPU time measured by workers", ["model"])
CREDITS_SPENT = Counter("impasto_credits_spent_total", "GPU-seconds charged to users' plans (turbo ×2, relax 0)")
REFUSALS = Counter("impasto_refusals_total", "Requests refused before anything was charged", ["reason"])
DELIVERIES = Counter("impasto_deliveries_total", "Results posted to a platform", ["platform", "outcome"])
RATE_LIMITED = Counter("impasto_platform_rate_limited_total", "Platform answers that said slow down", ["platform"])
MODERATION_REFUSALS = Counter(
    "impasto_moderation_refusals_total", "Prompts or images refused by the moderation policy", ["category"]
)

# ------------------------------------------------------------------------------------------------- bot side


def job_admitted(action: str, lane: str) -> None:
    """The job service admitted a job (held or queued). ``lane``: turbo / fast / relax."""
    JOBS_ADMITTED.labels(action=action, lane=lane).inc()


def refused(reason: str) -> None:
    """A request was refused before any charge; ``reason`` is a short stable name (the refusal's class, snake_case)."""
    REFUSALS.labels(reason=reason).inc()


def refused_by(error: BaseException) -> None:
    """Count a refusal by its error class: ``CreditsExhausted`` → ``credits_exhausted``, ``PromptError`` →
    ``prompt_error`` (call it at the adapters' one error boundary)."""
    refused(re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower())


def delivered(platform: str, outcome: str) -> None:
    """A result reached (``ok``) or failed to reach (``failed``, ``retried``) a chat."""
    DELIVERIES.labels(platform=platform, outcome=outcome).inc()


def rate_limited(platform: str) -> None:
    """Discord's 429 or Telegram's RetryAfter."""
    RATE_LIMITED.labels(platform=platform).inc()


def moderation_refused(category: str) -> None:
    MODERATION_REFUSALS.labels(category=category).inc()


# ------------------------------------------------------------------------------------------------ scrape time


async def refresh_queue_gauges(
    pool: ArqRedis, sessions: async_sessionmaker[AsyncSession], *, ns: keys.Namespace = keys.DEFAULT
) -> None:
    """Set the queue gauges from Redis and SQL (the same reading as ``impasto status``); call it before a scrape."""
    from impasto.queue.served import serving
    from impasto.queue.status import queue_status  # the status module pulls in nothing the metrics need otherwise

    status = await queue_status(pool, sessions, ns=ns)
    per_model: dict[str, int] = {}
    for models in (await serving(pool, ns=ns)).values():
        for model in models or ("*",):
            per_model[model] = per_model.get(model, 0) + 1
    WORKERS.clear()  # a model whose last worker left must drop to absent, not stay at its old count
    for model, count in per_model.items():
        WORKERS.labels(model=model).set(count)
    for lane in (*LANES, *(lane for lane in status.waiting if lane not in LANES)):
        QUEUE_DEPTH.labels(lane=lane).set(status.waiting.get(lane, 0))
    JOBS_IN_PROGRESS.set(status.in_progress)
    JOBS_HELD.set(status.held)
    OLDEST_WAIT.set(status.oldest_wait_s or 0.0)


# ------------------------------------------------------------------------------------------------ worker side

Hook = Callable[[dict[str, Any]], Awaitable[None]]

_STARTED_KEY = "impasto_metrics_started"  # ctx key: unix time the delivery began, or None for a duplicate


async def on_job_start(ctx: dict[str, Any]) -> None:
    """Note when a delivery began and bind the job's ids to this task's log context (``impasto.bots.ops.logs``)."""
    ctx[_STARTED_KEY] = None
    state = ctx.get(STATE_KEY)
    job_id = str(ctx.get("job_id", ""))
    _bind_log_context(job_id=job_id)
    if not isinstance(state, WorkerState) or not job_id:
        return
    async with state.sessions() as session:
        row = (
            await session.execute(
                select(Job.status, User.platform, User.platform_user_id, Guild.platform_guild_id)
                .join(User, User.id == Job.user_id)
                .outerjoin(Guild, Guild.id == Job.guild_id)
                .where(Job.id == job_id)
            )
        ).one_or_none()
    if row is None or row[0] in FINAL_STATUSES:
        return  # unknown or already ended: a duplicate delivery, which does nothing and must count nothing
    _bind_log_context(job_id=job_id, platform=row[1], user=row[2], guild=row[3])
    ctx[_STARTED_KEY] = time.time()


async def after_job_end(ctx: dict[str, Any]) -> None:
    """Count the job that ended during this delivery (if any) from its SQL row."""
    try:
        started = ctx.get(_STARTED_KEY)
        state = ctx.get(STATE_KEY)
        if started is None or not isinstance(state, WorkerState):
            return
        async with state.sessions() as session:
            job = await session.get(Job, str(ctx["job_id"]))
        if job is None or job.status not in FINAL_STATUSES or job.finished_at is None:
            return  # still active: arq will retry it, and that delivery counts it
        if _utc(job.finished_at).timestamp() < started - 1.0:
            return  # it ended before this delivery began (the 1 s spares clock skew between SQL and us)
        record_job_end(job)
    finally:
        _clear_log_context()


def record_job_end(job: Job) -> None:
    """Count one ended job (its final row): outcome, wait, render time, GPU time, credits."""
    model = job.model or "unknown"
    JOBS.labels(action=job.action, outcome=job.status).inc()
    if job.started_at is not None:
        queued_from = job.released_at or job.queued_at
        JOB_WAIT.labels(model=model).observe(max(0.0, (_utc(job.started_at) - _utc(queued_from)).total_seconds()))
        if job.finished_at is not None:
            RENDER.labels(model=model).observe(max(0.0, (_utc(job.finished_at) - _utc(job.started_at)).total_seconds()))
    if job.gpu_seconds > 0:
        GPU_SECONDS.labels(model=model).inc(job.gpu_seconds)
    if job.charged_gpu_seconds > 0:
        CREDITS_SPENT.inc(job.charged_gpu_seconds)


def instrument(worker: Worker) -> Worker:
    """Chain the metric hooks into an arq worker built by ``impasto.queue.worker.build_worker``; returns it.

    Ours run first, so a hook of the worker's own that exits the process (a wedged GPU) finds the job counted, and
    a failure of ours (SQL away) is logged, never failing the job nor skipping the worker's hook.
    """
    worker.on_job_start = _chain(on_job_start, worker.on_job_start)
    worker.after_job_end = _chain(after_job_end, worker.after_job_end)
    return worker


def _chain(ours: Hook, theirs: StartupShutdown | None) -> StartupShutdown:
    async def both(ctx: dict[str, Any]) -> None:
        try:
            await ours(ctx)
        except Exception:  # a metrics failure (SQL away) must never fail a job or skip the worker's own hook
            log.exception("metrics hook failed")
        if theirs is not None:
            await theirs(ctx)

    return both


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _bind_log_context(**fields: str | None) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v})


def _clear_log_context() -> None:
    structlog.contextvars.clear_contextvars()
