"""The Alembic configuration, built in code: the repository's top level has no alembic.ini (its layout is fixed).

``alembic_config(url)`` is what ``impasto db`` and the tests hand to ``alembic.command``; ``upgrade``/``downgrade``
run the same migrations on an existing async engine (the connection-sharing recipe from Alembic's cookbook), which
is how async code migrates without starting a second event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at this folder; ``url`` is an operator URL (the driver is picked in env.py)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolates "%": escape it so passwords with % survive.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` up to ``revision``."""
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database behind ``engine`` down to ``revision`` ("base" drops every impasto table)."""
    await _run(engine, lambda config: command.downgrade(config, revision))


async def _run(engine: AsyncEngine, action: Any) -> None:
    def with_connection(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config)

    async with engine.connect() as connection, sqlite_foreign_keys_off(connection), connection.begin():
        await connection.run_sync(with_connection)


@asynccontextmanager
async def sqlite_foreign_keys_off(connection: AsyncConnection) -> AsyncIterator[None]:
    """Foreign keys off on SQLite while migrations run.

    Batch mode rebuilds a SQLite table by copy, drop and rename; with foreign keys on, dropping the old ``users`` or
    ``jobs`` is a DELETE that cascades (ON DELETE CASCADE) and empties jobs and images. SQLite ignores this PRAGMA
    inside a transaction, and impasto's engine begins every transaction itself (``BEGIN IMMEDIATE``), so it goes
    straight to the driver's connection, before the migration's transaction, and is turned back on after it.
    """
    if connection.dialect.name != "sqlite":
        yield
        return

    def pragma(sync: Connection, value: str) -> None:
        cursor = sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]  # a live connection
        try:
            cursor.execute(f"PRAGMA foreign_keys={value}")
        finally:
            cursor.close()

    await connection.run_sync(pragma, "OFF")
    try:
        yield
    finally:
        await connection.run_sync(pragma, "ON")
