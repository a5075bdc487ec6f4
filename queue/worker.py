"""``impasto worker``: one process per GPU, consuming the impasto queue with arq.

The renderer (engine + default model) is built once in ``on_startup`` on the GPU thread itself, so the CUDA context
and every later render live on the same thread. ``max_jobs=1``: the worker takes exactly the job with the lowest
score (see ``fairness``) whenever its GPU is free, and never holds a job it cannot start. Beside the jobs, each worker
runs the sweep (``queue.sweep``) when it is its turn.

Between jobs the worker does not sleep arq's poll delay: ``ImpastoWorker`` looks for the next job the moment one ends,
and an idle worker blocks on the namespace's wake-up list (``keys.Namespace.wake``, pushed by ``client.enqueue``)
with the poll delay as its timeout, so a queued job starts within a Redis round trip. The timed poll stays as the
fallback (deferred jobs, a wake-up lost with a Redis restart, heartbeats and aborts).

A worker whose GPU thread is wedged (``functions.GpuStuck``) exits with ``EXIT_GPU_STUCK`` right after arq has
recorded that job's end: it cannot take another job, and the process cannot end normally while the thread runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from arq.connections import RedisSettings, create_pool, log_redis_info
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker, func
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from impasto.queue import keys
from impasto.queue.contract import deserialize, serialize
from impasto.queue.functions import render_job
from impasto.queue.moderation.policy import Policy
from impasto.queue.renderer import Renderer
from impasto.queue.screening import Classifier, ImageCheck
from impasto.queue.settings import WorkerConfig
from impasto.queue.state import STATE_KEY, WorkerState
from impasto.queue.sweep import run_sweeper
from impasto.storage.db import make_engine, require_migrated, session_factory
from impasto.storage.images import ImageStore, RemoteStore

log = logging.getLogger("impasto.queue")

RendererFactory = Callable[[], Renderer]

_SETUP_KEY = "impasto_setup"

#: How often a worker that lost Redis tries it again.
REDIS_RETRY_S = 1.0

#: The exit status of a worker whose GPU thread is wedged (EX_TEMPFAIL): its supervisor should start it again.
EXIT_GPU_STUCK = 75


@dataclass(frozen=True)
class WorkerSetup:
    """What ``on_startup`` needs to build the ``WorkerState``."""

    config: WorkerConfig
    database_url: str
    image_root: Path
    renderer_factory: RendererFactory  # called once, on the GPU thread
    # IMPASTO_NSFW_MODEL, built on the GPU thread too (``engine.nsfw.load_classifier``); None or returning None: no
    # image is classified. An image is flagged when its score ≥ ``nsfw_threshold`` (IMPASTO_NSFW_THRESHOLD).
    classifier_factory: Callable[[], Classifier | None] | None = None
    nsfw_threshold: float = 0.5
    policy: Policy | None = None  # the prompt policy, for translated prompts (``screening.translation_screen``)
    image_remote: RemoteStore | None = None  # the shared bucket behind the image store (IMPASTO_S3_BUCKET)


async def on_startup(ctx: dict[str, Any]) -> None:
    setup: WorkerSetup = ctx[_SETUP_KEY]
    db = make_engine(setup.database_url)
    await require_migrated(db)
    gpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="impasto-gpu")
    renderer = await asyncio.get_running_loop().run_in_executor(gpu, setup.renderer_factory)
    classifier = None
    if setup.classifier_factory is not None:
        classifier = await asyncio.get_running_loop().run_in_executor(gpu, setup.classifier_factory)
    state = WorkerState(
        config=setup.config,
        renderer=renderer,
        gpu=gpu,
        db=db,
        sessions=session_factory(db),
        images=ImageStore(setup.image_root, remote=setup.image_remote),
        image_check=ImageCheck(classifier, setup.nsfw_threshold) if classifier is not None else None,
        policy=setup.policy,
    )
    if setup.config.sweep_interval_s > 0:
        state.sweeper = asyncio.create_task(run_sweeper(state.sessions, ctx["redis"], setup.config, state.images))
    ctx[STATE_KEY] = state
    log.info("worker %s ready", setup.config.name)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    state = ctx.get(STATE_KEY)
    if isinstance(state, WorkerState):
        if state.sweeper is not None:
            state.sweeper.cancel()
        if state.render is not None and not state.render.done():
            # A job cut off by shutdown told its render to stop at the next step; give it a step's time.
            await asyncio.wait({state.render}, timeout=state.config.step_timeout_s)
            if not state.render.done():
                state.gpu_stuck = True
        state.gpu.shutdown(wait=False, cancel_futures=True)
        await state.db.dispose()
        if state.gpu_stuck:
            _exit_wedged(state)


def _exit_wedged(state: WorkerState) -> None:
    if not state.config.exit_when_wedged:
        log.critical("worker %s: the GPU thread is wedged; later jobs wait behind it", state.config.name)
        return
    log.critical(
        "worker %s: the GPU thread is wedged. Exiting with status %d so that the supervisor starts a fresh worker",
        state.config.name,
        EXIT_GPU_STUCK,
    )
    logging.shutdown()
    # Not sys.exit: interpreter shutdown joins the executor's threads, and the wedged one never returns.
    os._exit(EXIT_GPU_STUCK)


async def after_job_end(ctx: dict[str, Any]) -> None:
    state = ctx.get(STATE_KEY)
    if isinstance(state, WorkerState) and state.gpu_stuck:
        _exit_wedged(state)  # its job was failed and refunded; no later job may queue behind the thread


# arq's job lock (``Worker.start_jobs``) as one script: skip a job another worker holds, one no longer queued, or
# one deferred to later; else take it for the in-progress timeout and return its score.
# KEYS: the job's in-progress key, the queue. ARGV: the job id, now in ms, the in-progress timeout in ms.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return score
"""


class ImpastoWorker(Worker):
    """arq's worker with its fixed-period poll replaced by "poll, then wait for a reason to poll again", and its job
    lock taken in one round trip.

    arq's ``main`` runs ``_poll_iteration`` on a timer (``arq.utils.poll``), so a finished job's successor and a newly
    queued job both wait for the next tick. arq has no hook for that loop, so ``main`` is rewritten here with arq's
    own set-up lines and ``_wait_for_work`` in place of the timer. ``start_jobs`` is arq's with its optimistic lock
    (WATCH, EXISTS, ZSCORE, MULTI/EXEC: four round trips per job) replaced by the same checks in one script, which
    Redis runs atomically. Running jobs, retries and results stay arq's.
    """

    def __init__(self, *args: Any, wake_key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wake_key = wake_key
        self._take: AsyncScript | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if self._take is None:
            self._take = self.pool.register_script(_TAKE)
        for job_id_b in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            job_id = job_id_b.decode()
            timeout_ms = int(self.in_progress_timeout_s * 1000)
            keys_ = [in_progress_key_prefix + job_id, self.queue_name]
            score = await self._take(keys=keys_, args=[job_id, timestamp_ms(), timeout_ms])
            if score is None:  # held by another worker, already done, or deferred: as arq, go on to the next
                self.job_counter -= 1
                self.sem.release()
                log.debug("job %s already running elsewhere", job_id)
                continue
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        log.info("starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions))
        await log_redis_info(self.pool, log.info)
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        redis_down = False
        while True:
            try:
                await self._poll_iteration()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # Redis restarting: stay up and keep asking (redis-py reconnects on the next command); what Redis
                # lost, the sweep re-enqueues from SQL.
                if not redis_down:
                    log.warning("Redis is unreachable (%s); retrying every %.1f s", type(exc).__name__, REDIS_RETRY_S)
                redis_down = True
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            if redis_down:
                log.warning("Redis is back; taking jobs again")
                redis_down = False
            if self.burst:
                if 0 <= self.max_burst_jobs <= self._jobs_started():
                    await asyncio.gather(*self.tasks.values())
                    return
                if await self.pool.zcard(self.queue_name) == 0:
                    await asyncio.gather(*self.tasks.values())
                    return
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Return when there may be something to do, at the latest after the poll delay."""
        running = [t for t in self.tasks.values() if not t.done()]
        if self.job_counter >= self.max_jobs and running:
            # Busy: the next thing to do is to take a job when this one ends; nothing else could start meanwhile.
            await asyncio.wait(running, timeout=self.poll_delay_s, return_when=asyncio.FIRST_COMPLETED)
            # arq frees the slot in a done-callback registered before ours; let it run before the next poll.
            await asyncio.sleep(0)
            return
        if not self.allow_pick_jobs:  # shutting down: no job will be taken, only tasks finishing
            await asyncio.sleep(self.poll_delay_s)
            return
        try:
            # redis-py types the timeout as int; Redis >= 6 takes fractional seconds, which is what we pass.
            await self.pool.blpop([self.wake_key], timeout=cast(int, self.poll_delay_s))  # type: ignore[misc]
        except RedisError:
            # Redis is away: the poll itself will fail and log; don't spin meanwhile.
            await asyncio.sleep(self.poll_delay_s)


def build_worker(setup: WorkerSetup, *, redis_url: str, burst: bool = False, handle_signals: bool = True) -> Worker:
    config = setup.config
    return ImpastoWorker(
        functions=[
            func(
                render_job,
                name=keys.RENDER_FUNCTION,
                # Our own watchdog stops a job first (step timeout, max_run_s); this is arq's backstop.
                timeout=config.max_run_s + 2 * config.step_timeout_s,
                max_tries=config.max_tries,
            )
        ],
        queue_name=config.ns.queue,
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        after_job_end=after_job_end,
        ctx={_SETUP_KEY: setup},
        max_jobs=1,
        poll_delay=config.poll_delay_s,
        burst=burst,
        handle_signals=handle_signals,
        job_completion_wait=config.shutdown_wait_s,
        job_serializer=serialize,
        job_deserializer=deserialize,
        keep_result=24 * 3600,
        wake_key=config.ns.wake,
    )
