"""Workers that serve what they hold: ``IMPASTO_WORKER_MODELS`` names the models a worker takes jobs for.

All workers consume the one queue, so lanes and fair shares (``fairness``) stay exactly as they are; the filter sits
at the claim. arq reads up to ``queue_read_limit`` (100) runnable job ids, lowest score first, and ``start_jobs``
takes the first one it can lock. ``serve_only`` drops from that list every job whose model (its SQL row's
``model``, the registry name) the worker does not serve, *before* arq takes the in-progress lock, so the worker
takes the best-placed job it can paint and never holds, nor loads the model of, a job it was not given. The job
stays on the queue at its place for a worker that serves it.

A model no running worker serves waits until the "waited too long" check fails and refunds its jobs
(``IMPASTO_WORKER_MAX_WAIT_S``); ``impasto status`` shows them waiting. Job rows' models never change, so each job's
model is read from SQL once per worker and remembered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

from arq.connections import ArqRedis
from arq.typing import StartupShutdown
from arq.worker import Worker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.queue import keys
from impasto.queue.state import STATE_KEY, WorkerState
from impasto.storage.models import Job

log = logging.getLogger("impasto.queue")

MODELS_ENV = "IMPASTO_WORKER_MODELS"
_REMEMBERED = 50_000  # job ids → models kept before the memo starts afresh (a few MB)

#: A worker's announcement lives this long unrefreshed; it is refreshed every third of it, and deleted at shutdown,
#: so a killed worker drops out of ``serving`` within this time.
ANNOUNCE_TTL_S = 30


def parse_models(value: str | None) -> tuple[str, ...]:
    """``"v6, niji6"`` or ``"v6 niji6"`` → ``("v6", "niji6")``; empty: every model (no filter)."""
    names: list[str] = []
    for name in re.split(r"[\s,]+", value or ""):
        if name and name not in names:
            names.append(name)
    return tuple(names)


def check_models(models: Iterable[str], known: Collection[str]) -> None:
    """Refuse names the model registry does not have, naming the ones it has."""
    unknown = [m for m in models if m not in known]
    if unknown:
        raise ValueError(
            f"{MODELS_ENV} names {', '.join(unknown)}, not in the model registry; models: {', '.join(sorted(known))}"
        )


class ModelFilter:
    """Keeps the job ids whose model is served, in their order; remembers each job's model."""

    def __init__(self, models: Collection[str], sessions: Callable[[], async_sessionmaker[AsyncSession]]) -> None:
        self.models = frozenset(models)
        self._sessions = sessions
        self._model_of: dict[str, str | None] = {}

    async def served(self, job_ids: list[bytes]) -> list[bytes]:
        unknown = [jid.decode() for jid in job_ids if jid.decode() not in self._model_of]
        if unknown:
            if len(self._model_of) > _REMEMBERED:
                self._model_of.clear()
            async with self._sessions()() as session:
                rows = dict((await session.execute(select(Job.id, Job.model).where(Job.id.in_(unknown)))).all())
            for job_id in unknown:
                self._model_of[job_id] = rows.get(job_id)
        # A job id with no row goes through: the render function already answers a job it cannot find.
        return [jid for jid in job_ids if (m := self._model_of[jid.decode()]) is None or m in self.models]


def serve_only(worker: Worker, models: Collection[str]) -> Worker:
    """Make ``worker`` (from ``impasto.queue.worker.build_worker``) take jobs of ``models`` only; returns it.

    Wraps the worker's ``start_jobs``, arq's one claim step (see the module docstring). Empty ``models``: no filter.
    """
    if not models:
        return worker

    def sessions() -> async_sessionmaker[AsyncSession]:
        return WorkerState.of(worker.ctx).sessions  # set by on_startup, which runs before the first poll

    chosen = ModelFilter(models, sessions)
    claim: Callable[[list[bytes]], Awaitable[None]] = worker.start_jobs

    async def start_jobs(job_ids: list[bytes]) -> None:
        if STATE_KEY not in worker.ctx:
            return  # not started yet: nothing may be claimed
        await claim(await chosen.served(job_ids))

    worker.start_jobs = start_jobs  # type: ignore[method-assign]
    log.info("this worker serves %s", ", ".join(sorted(chosen.models)))
    return worker


def announce(worker: Worker, *, name: str, models: Collection[str], ns: keys.Namespace) -> Worker:
    """While ``worker`` runs, keep ``ns.serving(name)`` in Redis naming its models (``[]``: every model), so that
    ``impasto status`` (and admission, see ``unserved``) can tell which models have a worker. Returns the worker."""
    payload = json.dumps(sorted(models))
    key = ns.serving(name)
    task: asyncio.Task[None] | None = None

    async def refresh(redis: ArqRedis) -> None:
        while True:
            try:
                await redis.set(key, payload, ex=ANNOUNCE_TTL_S)
            except Exception as exc:  # Redis away for a moment: the next round tries again
                log.warning("could not announce this worker's models: %s", exc)
            await asyncio.sleep(ANNOUNCE_TTL_S / 3)

    async def start(ctx: dict[Any, Any]) -> None:
        nonlocal task
        task = asyncio.create_task(refresh(ctx["redis"]))

    async def stop(ctx: dict[Any, Any]) -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await ctx["redis"].delete(key)

    worker.on_startup = _then(worker.on_startup, start)
    worker.on_shutdown = _then(stop, worker.on_shutdown)
    return worker


def _then(first: StartupShutdown | None, second: StartupShutdown | None) -> StartupShutdown:
    async def both(ctx: dict[Any, Any]) -> None:
        if first is not None:
            await first(ctx)
        if second is not None:
            await second(ctx)

    return both


async def serving(redis: ArqRedis, *, ns: keys.Namespace = keys.DEFAULT) -> dict[str, tuple[str, ...]]:
    """Live workers → the models each serves (``()``: every model)."""
    prefix = ns.serving("")
    found: dict[str, tuple[str, ...]] = {}
    async for raw in redis.scan_iter(match=prefix + "*"):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        value = await redis.get(key)
        if value is None:
            continue  # expired between the scan and the read
        try:
            found[key[len(prefix) :]] = tuple(json.loads(value))
        except (ValueError, TypeError):
            continue
    return found


def unserved(model: str, workers: dict[str, tuple[str, ...]]) -> bool:
    """True when no live worker would take a job of ``model`` (none at all, or none serves it)."""
    return not any(not models or model in models for models in workers.values())
