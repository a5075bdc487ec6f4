"""Migrations, the migration check, the URL mapping and the `impasto db` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from impasto.migrations.config import downgrade, upgrade
from impasto.storage.db import (
    DatabaseError,
    NotMigrated,
    database_url,
    make_engine,
    migration_head,
    require_migrated,
)
from impasto.storage.models import Base

TABLES = {"users", "guilds", "jobs", "images", "messages", "preferences", "usage", "ledger", "admin_log"} | {
    "moderation_settings",
    "moderation_words",
    "moderation_log",
    "moderation_bans",
}


async def test_upgrade_from_empty_matches_the_models_and_downgrade_to_base_empties(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(NotMigrated, match="run `impasto db upgrade`"):
            await require_migrated(engine)
        await upgrade(engine)
        await require_migrated(engine)

        def diff(connection: Any) -> list[Any]:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

        def tables(connection: Any) -> set[str]:
            return set(inspect(connection).get_table_names())

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []  # the migration creates exactly what the models say
            assert await connection.run_sync(tables) == TABLES | {"alembic_version"}
        await downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(tables) <= {"alembic_version"}
        with pytest.raises(NotMigrated):
            await require_migrated(engine)
        await upgrade(engine)  # and back up again: downgrade left nothing behind that blocks it
        await require_migrated(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@db:5432/impasto", "postgresql+asyncpg://u@db:5432/impasto"),
        ("postgres://u:secret@db/impasto", "postgresql+asyncpg://u:***@db/impasto"),
        ("postgresql+asyncpg://u@db/impasto", "postgresql+asyncpg://u@db/impasto"),
        ("sqlite:///impasto-data/impasto.db", "sqlite+aiosqlite:///impasto-data/impasto.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
    ],
)
def test_operator_urls_get_async_drivers(given: str, expected: str) -> None:
    assert database_url(given).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize("bad", ["mysql://u@db/x", "postgresql+psycopg2://u@db/x", "not a url"])
def test_unsupported_urls_are_refused_with_the_allowed_forms(bad: str) -> None:
    with pytest.raises(DatabaseError, match="postgresql"):
        database_url(bad)


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 30_000
    finally:
        await engine.dispose()


def _impasto(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impasto.bots.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_impasto_db_cli_on_a_sqlite_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")}
    env["IMPASTO_DATA_DIR"] = str(tmp_path / "data")
    current = _impasto("db", "current", env=env, cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    assert "none (empty)" in current.stdout
    upgraded = _impasto("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"at revision {migration_head()}" in upgraded.stdout
    assert "up to date" in upgraded.stdout
    assert (tmp_path / "data" / "impasto.db").is_file()
    down = _impasto("db", "downgrade", "base", env=env, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "none (empty)" in down.stdout
    refused = _impasto("db", "--database-url", "mysql://x/y", "current", env=env, cwd=tmp_path)
    assert refused.returncode == 2
    assert "not supported" in refused.stderr


async def test_a_database_from_a_newer_release_is_refused_with_its_reason(db_url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
        with pytest.raises(DatabaseError, match="does not know") as caught:
            await require_migrated(engine)
        assert not isinstance(caught.value, NotMigrated)
    finally:
        await engine.dispose()


async def test_jobs_queued_before_held_jobs_existed_count_as_released(db_url: str) -> None:
    """0002 adds held jobs; a job that was queued under 0001 is already on the queue, so it counts as released."""
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (id, platform, platform_user_id, display_name, created_at, lifetime_images,"
                    " lifetime_gpu_seconds, relaxed_images, relaxed_gpu_seconds)"
                    " VALUES (1, 'discord', '42', 'old', '2026-11-01 10:00:00+00', 0, 0, 0, 0)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, user_id, action, prompt, display, params, input_image_keys, seed, model,"
                    " mode, visibility, status, idempotency_key, request_key, queued_at, gpu_seconds,"
                    " charged_gpu_seconds, reserved_gpu_seconds, cost_multiplier, month_period, attempts,"
                    " cancel_requested, favorite) VALUES ('old-job', 1, 'imagine', 'a cat', 'a cat', '{}', '[]', 1,"
                    " 'tiny-sd15', 'fast', 'public', 'queued', 'k/0', 'k', '2026-11-01 10:00:00+00', 0, 0, 5, 1,"
                    " '2026-11', 0, false, false)"
                )
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            row = (await connection.execute(text("SELECT released_at, queued_at, max_concurrent FROM jobs"))).one()
        assert row[0] is not None
        assert str(row[0]) == str(row[1])
        assert row[2] == 3
        await downgrade(engine, "0001")  # and the new columns go away again
        async with engine.connect() as connection:
            columns = await connection.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("jobs")})
        assert "released_at" not in columns
        assert "max_concurrent" not in columns
    finally:
        await engine.dispose()


def test_job_ids_never_start_like_an_option() -> None:
    from impasto.storage.models import new_job_id

    ids = [new_job_id() for _ in range(2000)]
    assert all(len(i) == 12 and i[0].isalnum() for i in ids)
    assert len(set(ids)) == len(ids)
