"""The worker's operator port: the common endpoints, plus "ready only once the model is loaded".

arq builds its event loop when the ``Worker`` is constructed and runs it with ``worker.run()``; the port is started
on that same loop before ``run()`` and closed after it, so its checks use the loop the worker's clients live on.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from arq.worker import Worker

from impasto.bots.config import Settings
from impasto.bots.ops.health import Check, OpsServer, port_from_env, serve_process_ops
from impasto.queue.keys import namespace_from_env
from impasto.queue.state import STATE_KEY, WorkerState


class NotReady(Exception):
    pass


def model_check(worker: Worker) -> Check:
    """Ready once ``on_startup`` has loaded the model and connected SQL (it stores the ``WorkerState`` last)."""

    async def check() -> None:
        state = worker.ctx.get(STATE_KEY)
        if not isinstance(state, WorkerState):
            raise NotReady("the worker is still loading its model")
        if state.gpu_stuck:
            raise NotReady("the GPU thread is wedged")

    return check


@dataclass
class WorkerOps:
    """What ``start_worker_ops`` opened; ``close()`` after ``worker.run()`` returns."""

    worker: Worker
    context: AbstractAsyncContextManager[OpsServer | None] | None = None
    server: OpsServer | None = None

    def close(self) -> None:
        if self.context is not None and not self.worker.loop.is_closed():
            self.worker.loop.run_until_complete(self.context.__aexit__(None, None, None))
            self.context = None


def start_worker_ops(worker: Worker, settings: Settings, *, port: int | None = None, **kwargs: Any) -> WorkerOps:
    """Open the worker's port on ``worker.loop`` when ``IMPASTO_METRICS_PORT`` (or ``port``) is set."""
    port = port if port is not None else port_from_env()
    if port is None:
        return WorkerOps(worker)
    context = serve_process_ops(
        port,
        redis_url=settings.redis_url,
        database_url=settings.database_url_or_default,
        ns=namespace_from_env(),
        extra_checks={"model": model_check(worker)},
        **kwargs,
    )
    server = worker.loop.run_until_complete(context.__aenter__())
    return WorkerOps(worker, context, server)
