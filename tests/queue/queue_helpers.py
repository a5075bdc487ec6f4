"""Shared by the queue tests: the servers, and a job service wired to the real queue with workers to drain it."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arq.connections import ArqRedis
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.queue import keys
from impasto.queue.moderation.policy import Policy
from impasto.queue.renderer import NoopRenderer, Renderer
from impasto.queue.screening import Classifier
from impasto.queue.settings import WorkerConfig
from impasto.queue.worker import WorkerSetup, build_worker

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Stack:
    """A job service that enqueues on the real queue, and the means to run workers against it."""

    service: JobService
    pool: ArqRedis
    ns: keys.Namespace
    sessions: async_sessionmaker[AsyncSession]
    db_url: str
    image_root: Path
    # The worker's moderation (``queue/screening.py``): an image classifier and its threshold, the prompt policy.
    classifier_factory: Callable[[], Classifier | None] | None = None
    nsfw_threshold: float = 0.5
    policy: Policy | None = None

    def setup(self, renderer: Renderer | None = None, **config: object) -> WorkerSetup:
        values: dict[str, object] = {
            "name": "test-gpu0",
            "poll_delay_s": 0.05,
            "lease_s": 3.0,
            "namespace": self.ns.prefix,
            "exit_when_wedged": False,  # in-process: a slow step on a loaded machine must not end pytest
        }
        values.update(config)
        chosen = renderer or NoopRenderer()
        return WorkerSetup(
            config=WorkerConfig.model_validate(values),
            database_url=self.db_url,
            image_root=self.image_root,
            renderer_factory=lambda: chosen,
            classifier_factory=self.classifier_factory,
            nsfw_threshold=self.nsfw_threshold,
            policy=self.policy,
        )

    async def drain(self, renderer: Renderer | None = None, **config: object) -> None:
        """Run one worker in burst mode until the queue is empty."""
        setup = self.setup(renderer, **config)
        worker = build_worker(setup, redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
        try:
            await worker.main()
        finally:
            with warnings.catch_warnings():  # arq 0.28 calls redis-py's deprecated close() in Worker.close
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()


async def close_worker(worker: Worker) -> None:
    """Close a test's worker once the jobs it holds have ended: a job's final event is published before arq takes the
    job off its queue, and ``close`` cancels whatever still runs (and raises that CancelledError)."""
    if worker.tasks:
        await asyncio.wait(list(worker.tasks.values()), timeout=30)
    with warnings.catch_warnings():  # arq 0.28 calls redis-py's deprecated close() in Worker.close
        warnings.simplefilter("ignore", DeprecationWarning)
        await worker.close()
