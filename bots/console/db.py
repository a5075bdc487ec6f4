"""``impasto db upgrade [REV]``, ``impasto db downgrade REV``, ``impasto db current``: the schema, via Alembic.

The database is ``IMPASTO_DATABASE_URL`` (or ``--database-url``); unset, the SQLite file under ``IMPASTO_DATA_DIR``.
Bots and workers refuse to start until ``impasto db upgrade`` has run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "db",
        help="create or migrate the database schema",
        description="Migrate impasto's SQL schema (IMPASTO_DATABASE_URL, default: SQLite under IMPASTO_DATA_DIR).",
    )
    parser.add_argument("--database-url", help="override IMPASTO_DATABASE_URL for this command")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate up to REV (default: head, the newest)")
    upgrade.add_argument("revision", nargs="?", default="head", metavar="REV")
    downgrade = actions.add_parser("downgrade", help="migrate down to REV ('base' drops every impasto table)")
    downgrade.add_argument("revision", metavar="REV")
    actions.add_parser("current", help="show the database's revision and the newest one")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from alembic import command
    from sqlalchemy.engine import make_url

    from impasto.migrations.config import alembic_config
    from impasto.storage.db import DatabaseError, current_revision, database_url, make_engine, migration_head

    url = args.database_url or _default_url()
    try:
        database_url(url)  # refuse an unsupported URL before Alembic sees it
        shown = make_url(url).render_as_string(hide_password=True)
    except DatabaseError as exc:
        print(f"impasto db: {exc}", file=sys.stderr)
        return 2
    config = alembic_config(url)
    try:
        if args.db_command == "upgrade":
            command.upgrade(config, args.revision)
        elif args.db_command == "downgrade":
            command.downgrade(config, args.revision)

        async def revision() -> str | None:
            engine = make_engine(url)
            try:
                return await current_revision(engine)
            finally:
                await engine.dispose()

        current = asyncio.run(revision())
    except Exception as exc:  # one line for the operator, whatever the driver raised
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"impasto db {args.db_command}: {shown}: {first_line}", file=sys.stderr)
        return 1
    head = migration_head()
    state = "up to date" if current == head else "run `impasto db upgrade`"
    print(f"{shown}: at revision {current or 'none (empty)'}; newest is {head} ({state})")
    return 0


def _default_url() -> str:
    from impasto.bots.config import Settings

    return Settings().database_url_or_default  # type: ignore[call-arg]  # pydantic-settings reads the environment
