"""Scratch databases for tests and benchmarks: a fresh PostgreSQL database or SQLite file, migrated, then dropped.

Used by impasto's own tests (storage, service, queue) so that each test gets its own database on the real server.
Nothing here runs in production.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from impasto.storage.db import database_url, make_engine

Backend = Literal["sqlite", "postgresql"]


@asynccontextmanager
async def scratch_database(backend: Backend, *, postgres_admin_url: str, tmp_dir: Path) -> AsyncIterator[str]:
    """Yield the operator URL of an empty database that is removed afterwards.

    PostgreSQL: ``CREATE DATABASE impasto_test_<random>`` through ``postgres_admin_url``, ``DROP … WITH (FORCE)``
    after. SQLite: a new file under ``tmp_dir``.
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / f'impasto-{secrets.token_hex(4)}.db'}"
        return
    name = f"impasto_test_{secrets.token_hex(6)}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = database_url(postgres_admin_url).set(database=name)
        try:
            yield url.render_as_string(hide_password=False).replace("+asyncpg", "")
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with the schema at head; disposed afterwards."""
    from impasto.migrations.config import upgrade

    engine = make_engine(url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
