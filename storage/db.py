"""Database connections: the operator's URL mapped to an async driver, the engine, sessions, the migration check.

Operators write plain URLs (``postgresql://user@host:5432/db``, ``postgres://…``, ``sqlite:///path.db``); impasto
picks asyncpg or aiosqlite itself. Built in ``main()`` and injected, never at import time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(Exception):
    """The database URL or the database itself is not usable; the message says what to do."""


class NotMigrated(DatabaseError):
    """The schema is missing or older than this code: run ``impasto db upgrade``."""


def database_url(operator_url: str) -> URL:
    """Map what an operator writes to the async driver impasto uses.

    ``postgresql://`` and ``postgres://`` → ``postgresql+asyncpg://``; ``sqlite:///path`` → ``sqlite+aiosqlite:///path``.
    An explicit async driver is kept; a sync one (``postgresql+psycopg2``) is refused with the allowed forms.
    """
    try:
        url = make_url(operator_url.strip())
    except Exception as exc:
        raise DatabaseError(
            f"database URL {operator_url!r} is not a URL; use postgresql://user@host:5432/db or sqlite:///path.db"
        ) from exc
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "asyncpg"):
            raise DatabaseError(f"database driver {url.drivername!r} is not async; write postgresql://… instead")
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise DatabaseError(f"database driver {url.drivername!r} is not async; write sqlite:///path.db instead")
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseError(f"database URL scheme {backend!r} is not supported; use postgresql:// or sqlite:///")


def url_from_environment() -> str:
    """``IMPASTO_DATABASE_URL``, else the SQLite file under ``IMPASTO_DATA_DIR`` (``./impasto-data``): the same
    default as the bots' settings, for tools that run below them (Alembic run by hand)."""
    url = os.environ.get("IMPASTO_DATABASE_URL")
    if url:
        return url
    data_dir = Path(os.environ.get("IMPASTO_DATA_DIR", "./impasto-data"))
    return f"sqlite:///{(data_dir / 'impasto.db').resolve()}"


def make_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for an operator URL. SQLite gets WAL, foreign keys, a busy timeout and writer transactions.

    SQLite transactions start with ``BEGIN IMMEDIATE``: every transaction takes the single write lock up front, so
    two concurrent quota checks queue behind each other instead of one failing with "database is locked" when it
    upgrades from reader to writer. That is what makes the quota check atomic on SQLite.
    """
    resolved = database_url(url) if isinstance(url, str) else url
    if resolved.get_backend_name() == "sqlite":
        database = resolved.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(resolved, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    engine = create_async_engine(resolved, **kwargs)
    _ping_after_idle(engine)
    return engine


#: A pooled PostgreSQL connection that sat unused this long is pinged before it is handed out.
PING_AFTER_IDLE_S = 1.0


def _ping_after_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections that were idle: a server restarted while nobody used it is
    noticed before a statement fails, and a fresh connection replaces the dead one.

    Written here because ``pool_pre_ping`` pings on every checkout: a round trip for each transaction, two per job on
    the worker's hot path (``impasto bench-service``), to guard connections used a few milliseconds earlier. A
    connection that dies while in use raises a disconnect error instead; SQLAlchemy then drops the whole pool, and the
    callers that matter retry (``queue.settle``) or answer "temporarily unavailable" (the job service).
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["impasto_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("impasto_idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (a new one when the server is back).
            raise DisconnectionError(f"a pooled connection is dead ({type(exc).__name__})") from exc


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that "begin" below decides how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def migration_head() -> str:
    """The newest revision in ``migrations/versions``."""
    from alembic.script import ScriptDirectory

    from impasto.migrations.config import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise DatabaseError("no migrations found in impasto.migrations")
    return head


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from impasto.migrations.config import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises ResolutionError/CommandError variants for unknown ids
        return False


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""

    def read(connection: Any) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def require_migrated(engine: AsyncEngine) -> None:
    """Refuse to start on a database whose schema is not at this code's head revision."""
    try:
        current = await current_revision(engine)
    except Exception as exc:
        raise DatabaseError(f"cannot open the database {engine.url.render_as_string()}: {exc}") from exc
    head = migration_head()
    if current is None:
        raise NotMigrated("the database has no impasto tables yet; run `impasto db upgrade` first")
    if current != head and not _known_revision(current):
        raise DatabaseError(
            f"the database is at revision {current}, which this impasto does not know (it knows up to {head}); "
            "run the impasto release that migrated it"
        )
    if current != head:
        raise NotMigrated(
            f"the database is at revision {current}, this impasto needs {head}; run `impasto db upgrade` first"
        )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
