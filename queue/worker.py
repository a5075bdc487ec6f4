"""``impasto worker``: one process per GPU, consuming the impasto queue with arq.

The renderer (engine + default model) is built once in ``on_startup`` on the GPU thread itself, so the CUDA context
and every later render live on the same thread. ``max_jobs=1``: the worker takes exactly the job with the lowest
score (see ``fairness``) whenever its GPU is free, and never holds a job it cannot start. Beside the jobs, each worker
runs the sweep (``queue.sweep``) when it is its turn.

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
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from impasto.queue import keys
from impasto.queue.contract import deserialize, serialize
from impasto.queue.functions import render_job
from impasto.queue.renderer import Renderer
from impasto.queue.settings import WorkerConfig
from impasto.queue.state import STATE_KEY, WorkerState
from impasto.queue.sweep import run_sweeper
from impasto.storage.db import make_engine, require_migrated, session_factory
from impasto.storage.images import ImageStore

log = logging.getLogger("impasto.queue")

RendererFactory = Callable[[], Renderer]

_SETUP_KEY = "impasto_setup"

#: The exit status of a worker whose GPU thread is wedged (EX_TEMPFAIL): its supervisor should start it again.
EXIT_GPU_STUCK = 75


@dataclass(frozen=True)
class WorkerSetup:
    """What ``on_startup`` needs to build the ``WorkerState``."""

    config: WorkerConfig
    database_url: str
    image_root: Path
    renderer_factory: RendererFactory  # called once, on the GPU thread


async def on_startup(ctx: dict[str, Any]) -> None:
    setup: WorkerSetup = ctx[_SETUP_KEY]
    db = make_engine(setup.database_url)
    await require_migrated(db)
    gpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="impasto-gpu")
    renderer = await asyncio.get_running_loop().run_in_executor(gpu, setup.renderer_factory)
    state = WorkerState(
        config=setup.config,
        renderer=renderer,
        gpu=gpu,
        db=db,
        sessions=session_factory(db),
        images=ImageStore(setup.image_root),
    )
    if setup.config.sweep_interval_s > 0:
        state.sweeper = asyncio.create_task(run_sweeper(state.sessions, ctx["redis"], setup.config))
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


def build_worker(setup: WorkerSetup, *, redis_url: str, burst: bool = False, handle_signals: bool = True) -> Worker:
    config = setup.config
    return Worker(
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
    )
