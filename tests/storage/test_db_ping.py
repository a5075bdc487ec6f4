"""A pooled PostgreSQL connection that died while idle is replaced before a statement fails on it
(``storage.db._ping_after_idle``); one used a moment ago is not pinged (no round trip on the worker's hot path)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from impasto.storage import db


async def _kill_backend(url: str, pid: int) -> None:
    admin = db.make_engine(url)
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()


@pytest.mark.parametrize("ping_after_s", [0.0, 3600.0])
async def test_a_dead_idle_connection_is_replaced_only_when_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, ping_after_s: float
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", ping_after_s)
    engine = db.make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # The server ends the pooled connection while nobody uses it (a restart, an idle timeout).
        await _kill_backend(postgres_url, int(pid))
        if ping_after_s == 0.0:
            async with engine.connect() as connection:
                again = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert again != pid  # a fresh connection, and the statement never saw the dead one
        else:
            # Used too recently to be pinged: the statement meets the dead connection and the caller sees it as a
            # disconnect (``queue.settle.unreachable``), which the retrying callers expect.
            with pytest.raises(DBAPIError) as raised:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            assert raised.value.connection_invalidated
            async with engine.connect() as connection:  # the pool was refilled with a live one
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
