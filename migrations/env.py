"""Alembic's async environment (from ``alembic/templates/async``), with the driver picked from the operator's URL.

A connection handed in through ``config.attributes["connection"]`` is used as is (tests and ``impasto.migrations
.config.upgrade``); otherwise the URL from the Config (or IMPASTO_DATABASE_URL) is opened with an async engine.
SQLite gets ``render_as_batch`` so that ALTERs become table copies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from impasto.migrations.config import sqlite_foreign_keys_off
from impasto.storage.db import make_engine, url_from_environment
from impasto.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    # Migrations sit below the bots: they read the environment themselves rather than import ``bots.config``.
    return url_from_environment()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def do_run_migrations(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(_url())
    try:
        async with engine.connect() as connection, sqlite_foreign_keys_off(connection):
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    from impasto.storage.db import database_url

    context.configure(
        url=database_url(_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
