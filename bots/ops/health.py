"""The operator's port (``IMPASTO_METRICS_PORT``): ``/metrics``, ``/healthz`` and ``/readyz`` of one process.

* ``/metrics``: Prometheus' text exposition of the default registry (``impasto.queue.metrics`` and the process
  collectors), with the queue gauges read from Redis and SQL just before.
* ``/healthz``: liveness. 200 while the event loop answers; a supervisor restarts a process that stops answering.
* ``/readyz``: readiness. 200 when Redis answers PING and SQL answers ``SELECT 1`` (and, on a worker, its model is
  loaded); 503 with one line per failed check otherwise. Each check has ``CHECK_TIMEOUT_S``.

It runs on the process's own event loop (aiohttp, already a dependency of discord.py): the checks are the same async
Redis and SQL clients the process uses, and a loop too busy to answer ``/healthz`` is exactly what it must report.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from arq.connections import ArqRedis
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from impasto.bots.config import Settings
from impasto.queue import keys
from impasto.queue.metrics import refresh_queue_gauges
from impasto.storage.db import make_engine, session_factory

log = logging.getLogger("impasto.ops")

PORT_ENV = "IMPASTO_METRICS_PORT"
HOST_ENV = "IMPASTO_METRICS_HOST"
CHECK_TIMEOUT_S = 2.0

#: A readiness check: returns when fine, raises (any exception, its text is the reason) when not.
Check = Callable[[], Awaitable[None]]


def port_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """``IMPASTO_METRICS_PORT`` as a port number; None when unset or empty (no operator port)."""
    value = (environ if environ is not None else os.environ).get(PORT_ENV, "").strip()
    if not value:
        return None
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{PORT_ENV}={value!r}: use a TCP port number (0–65535)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{PORT_ENV}={value!r}: use a TCP port number (0–65535)")
    return port


def redis_check(pool: ArqRedis) -> Check:
    async def check() -> None:
        await pool.ping()

    return check


def sql_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


@dataclass
class OpsServer:
    """The running port. ``port`` is the bound one (ask for 0 to get a free one, as tests do)."""

    runner: web.AppRunner
    port: int
    checks: dict[str, Check] = field(default_factory=dict)

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_ops(
    port: int,
    *,
    checks: Mapping[str, Check],
    before_scrape: Callable[[], Awaitable[None]] | None = None,
    host: str | None = None,
) -> OpsServer:
    """Serve the three endpoints on ``host:port`` until ``close()``."""
    checks = dict(checks)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        failures = await run_checks(checks)
        body = {name: failures.get(name, "ok") for name in checks}
        return web.json_response(body, status=503 if failures else 200)

    async def metrics(_: web.Request) -> web.Response:
        if before_scrape is not None:
            try:
                await asyncio.wait_for(before_scrape(), CHECK_TIMEOUT_S)
            except Exception as exc:  # Redis or SQL away: serve the counters anyway; /readyz says what is wrong
                log.warning("queue gauges not refreshed: %s", _one_line(exc))
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    bind = host or os.environ.get(HOST_ENV) or "0.0.0.0"
    site = web.TCPSite(runner, bind, port)
    try:
        await site.start()
    except OSError as exc:  # the port is taken, or the address is not this host's: one line, not a traceback
        await runner.cleanup()
        raise ValueError(f"{PORT_ENV}={port}: cannot listen on {bind}:{port} ({exc.strerror or exc})") from None
    bound = port
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        bound = int(sockets[0].getsockname()[1])
    log.info("operator port: /metrics /healthz /readyz on %d", bound)
    return OpsServer(runner=runner, port=bound, checks=checks)


async def run_checks(checks: Mapping[str, Check]) -> dict[str, str]:
    """Run every check at once; the failed ones' names → a one-line reason."""

    async def one(check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"no answer in {CHECK_TIMEOUT_S:.0f} s"
        except Exception as exc:
            return _one_line(exc) or type(exc).__name__
        return None

    results = await asyncio.gather(*(one(check) for check in checks.values()))
    return {name: reason for name, reason in zip(checks, results, strict=True) if reason is not None}


@asynccontextmanager
async def serve_process_ops(
    port: int | None,
    *,
    redis_url: str | None,
    database_url: str,
    ns: keys.Namespace = keys.DEFAULT,
    extra_checks: Mapping[str, Check] | None = None,
) -> AsyncIterator[OpsServer | None]:
    """The operator port of a bot or worker process, with its own Redis pool and SQL engine for the checks.

    ``port`` None: nothing is served (yields None). Own clients, not the process's: a check must not queue behind
    (or exhaust) the pool the service uses, and a bot whose service pool is wedged must show as not ready.
    """
    if port is None:
        yield None
        return
    engine = make_engine(database_url)
    # Connects on first use (unlike arq's create_pool, which retries and then raises): a Redis that is down at
    # start-up shows on /readyz instead of keeping the port closed.
    pool = ArqRedis.from_url(redis_url) if redis_url else None
    checks: dict[str, Check] = {"sql": sql_check(engine)}
    if pool is not None:
        checks["redis"] = redis_check(pool)
    checks.update(extra_checks or {})
    before_scrape = None
    if pool is not None:
        sessions = session_factory(engine)
        live_pool = pool

        async def refresh() -> None:
            await refresh_queue_gauges(live_pool, sessions, ns=ns)

        before_scrape = refresh
    server = await start_ops(port, checks=checks, before_scrape=before_scrape)
    try:
        yield server
    finally:
        await server.close()
        if pool is not None:
            await pool.aclose()
        await engine.dispose()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


async def run_with_ops(settings: Settings, main: Awaitable[None]) -> None:
    """Run a bot's ``main`` with the process's operator port open (when ``IMPASTO_METRICS_PORT`` is set)."""
    async with serve_process_ops(
        port_from_env(),
        redis_url=settings.redis_url,
        database_url=settings.database_url_or_default,
        ns=keys.namespace_from_env(),
    ):
        await main
