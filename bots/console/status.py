"""``impasto status``: the operator's view of the queue: waiting per lane, held jobs, the longest wait, who paints."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

from impasto.bots.config import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status",
        help="the queue now: jobs waiting per lane, held by users' concurrency limits, being painted, last 24 h",
        description="Read IMPASTO_REDIS_URL, IMPASTO_QUEUE_NAMESPACE and the database; change nothing.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> int:
    from impasto.storage.db import DatabaseError

    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    if not settings.redis_url:
        print("IMPASTO_REDIS_URL is not set: the queue lives in Redis (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_status(settings, settings.redis_url, as_json=args.json))
    except DatabaseError as exc:
        print(exc, file=sys.stderr)
        return 2


async def _status(settings: Settings, redis_url: str, *, as_json: bool) -> int:
    from impasto.queue.client import open_pool
    from impasto.queue.keys import namespace_from_env
    from impasto.queue.served import serving
    from impasto.queue.status import queue_status
    from impasto.storage.db import make_engine, require_migrated, session_factory

    ns = namespace_from_env()
    db = make_engine(settings.database_url_or_default)
    pool = await open_pool(redis_url, ns=ns)
    try:
        await require_migrated(db)
        status = await queue_status(pool, session_factory(db), ns=ns)
        workers = await serving(pool, ns=ns)
    finally:
        await pool.aclose()
        await db.dispose()
    if as_json:
        print(json.dumps({**dataclasses.asdict(status), "serving": workers}, sort_keys=True))
    else:
        print("\n".join(status.lines()))
        shown = ", ".join(f"{name} ({', '.join(m) or 'all models'})" for name, m in sorted(workers.items()))
        print(f"workers serving: {shown or 'none running'}")
    return 0
