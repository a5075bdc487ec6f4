"""The Alembic configuration, built in code: the repository's top level has no alembic.ini (its layout is fixed).

``alembic_config(url)`` is what ``impasto db`` and the tests hand to ``alembic.command``; ``upgrade``/``downgrade``
run the same migrations on an existing async engine (the connection-sharing recipe from Alembic's cookbook), which
is how async code migrates without starting a second event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

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

    async with engine.begin() as connection:
        await connection.run_sync(with_connection)
