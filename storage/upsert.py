"""``INSERT … ON CONFLICT`` in the two dialects impasto runs on.

SQLAlchemy has no dialect-neutral upsert, and a select-then-insert races between bot processes (two first messages
from one new user): these two functions hide the PostgreSQL/SQLite spelling of the one atomic statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def insert_ignore(
    session: AsyncSession, model: type[Any], values: Mapping[str, Any], *, columns: Sequence[str]
) -> None:
    """Insert a row unless one with the same unique ``columns`` exists (both databases infer the unique index)."""
    insert = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    await session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=list(columns)))


async def insert_or_update(
    session: AsyncSession,
    model: type[Any],
    values: Mapping[str, Any],
    *,
    columns: Sequence[str],
    update: Mapping[str, Any],
) -> None:
    """Insert a row, or change ``update`` on the row with the same unique ``columns``."""
    insert = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    statement = insert(model).values(**values)
    await session.execute(statement.on_conflict_do_update(index_elements=list(columns), set_=dict(update)))
