"""The queue on the real Redis (db 15, flushed before and after each test) and a fresh PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from arq.connections import ArqRedis
from queue_helpers import TEST_POSTGRES_URL, TEST_REDIS_URL, Stack
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.engine.registry import load_registry
from impasto.queue import keys
from impasto.queue.client import open_pool, service_enqueue
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.plans import load_plans
from impasto.storage.testing import migrated_engine, scratch_database


@pytest.fixture
def ns() -> keys.Namespace:
    """A queue of this test's own: other test sessions' workers on db 15 never take its jobs. Nothing is flushed."""
    return keys.Namespace(f"impasto-test-{secrets.token_hex(6)}:")


@pytest.fixture
async def pool(ns: keys.Namespace) -> AsyncIterator[ArqRedis]:
    pool = await open_pool(TEST_REDIS_URL, ns=ns)
    try:
        yield pool
    finally:
        async for key in pool.scan_iter(match=ns.prefix + "*"):
            await pool.delete(key)
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
    pool: ArqRedis,
    ns: keys.Namespace,
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    data_dir: Path,
    clean_env: None,
) -> Stack:
    images = data_dir / "images"
    service = JobService(
        sessions,
        ImageStore(images),
        load_registry(default="tiny-sd15"),
        load_plans(),
        service_enqueue(pool, ns=ns),
    )
    return Stack(service=service, pool=pool, ns=ns, sessions=sessions, db_url=db_url, image_root=images)
