"""Shared test fixtures: the real Redis and PostgreSQL on this machine, and a scratch data directory.

Override the servers with IMPASTO_TEST_REDIS_URL / IMPASTO_TEST_POSTGRES_URL (an admin URL that may create databases).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import structlog.contextvars
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from impasto.bots.ops.logs import QUIET_ENV
from impasto.storage.db import session_factory
from impasto.storage.testing import Backend, migrated_engine, scratch_database

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "impasto-data"
    path.mkdir()
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not depend on the developer's IMPASTO_* environment."""
    for key in list(os.environ):
        if key.startswith("IMPASTO_") and not key.startswith("IMPASTO_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Where ``configure_logging(..., stream=log_stream)`` writes; after the test the handler it added to the root
    logger (named ``impasto``) is removed, warnings are no longer captured, structlog's bound context is cleared and
    the environment variables it set for the process (``QUIET_ENV``: progress bars off) are as they were."""
    out = io.StringIO()
    environ = {key: os.environ.get(key) for key in QUIET_ENV}
    yield out
    for key, value in environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "impasto":
            root.removeHandler(handler)
    logging.captureWarnings(False)
    structlog.contextvars.clear_contextvars()


@pytest.fixture
async def serve_http() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Serve aiohttp apps on 127.0.0.1, each on a free port: ``await serve_http(app)`` is its base URL. Stopped after
    the test."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()


# Databases: each test that asks for one gets its own, a fresh PostgreSQL database on the real server and a SQLite
# file (folders with other needs, such as tests/queue, override these fixtures in their own conftest).


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    backend: Backend = request.param
    async with scratch_database(backend, postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp_path) as url:
        yield url


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty scratch PostgreSQL database, for what only PostgreSQL does."""
    async with scratch_database("postgresql", postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp_path) as url:
        yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(db_url) as engine:
        yield engine


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)
