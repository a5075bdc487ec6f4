"""Each test gets its own database: a fresh PostgreSQL database on the real server, and a SQLite file."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from impasto.storage.db import session_factory
from impasto.storage.testing import Backend, migrated_engine, scratch_database

TEST_POSTGRES_URL = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    backend: Backend = request.param
    async with scratch_database(backend, postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp_path) as url:
        yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(db_url) as engine:
        yield engine


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)
