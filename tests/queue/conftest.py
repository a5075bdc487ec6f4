"""The queue on the real Redis (db 15, flushed before and after each test) and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from queue_helpers import TEST_POSTGRES_URL, TEST_REDIS_URL, Stack
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.engine.registry import load_registry
from impasto.queue.client import open_pool, service_enqueue
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.plans import load_plans
from impasto.storage.testing import migrated_engine, scratch_database


@pytest.fixture
async def pool() -> AsyncIterator[ArqRedis]:
    pool = await open_pool(TEST_REDIS_URL)
    await pool.flushdb()  # db 15 only: the URL names it
    try:
        yield pool
    finally:
        await pool.flushdb()
        await pool.aclose()


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    async with scratch_database("postgresql", postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp_path) as url:
        async with migrated_engine(url):
            pass
        yield url


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_engine(db_url) as engine:
        yield session_factory(engine)


@pytest.fixture
def stack(
    pool: ArqRedis, sessions: async_sessionmaker[AsyncSession], db_url: str, data_dir: Path, clean_env: None
) -> Stack:
    images = data_dir / "images"
    service = JobService(
        sessions,
        ImageStore(images),
        load_registry(default="tiny-sd15"),
        load_plans(),
        service_enqueue(pool),
    )
    return Stack(service=service, pool=pool, sessions=sessions, db_url=db_url, image_root=images)
