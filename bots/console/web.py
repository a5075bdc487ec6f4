"""``impasto web``: the web front door (region editor, galleries) on ``--host``/``--port``."""

from __future__ import annotations

import argparse
import sys

from impasto.bots.config import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "web",
        help="serve the web front door (Vary (Region) editor, galleries)",
        description=(
            "Serve the pages the bots link to: the Vary (Region) editor and the galleries. Needs IMPASTO_WEB_URL "
            "(the public base URL put in links), IMPASTO_WEB_SECRET (signs links; the same value for the bots), "
            "IMPASTO_REDIS_URL (the queue; spent links and rate limits) and a migrated database. Listens on "
            "IMPASTO_WEB_HOST:IMPASTO_WEB_PORT (default 127.0.0.1:8600); put it behind a TLS proxy."
        ),
    )
    p.add_argument("--host", default=None, help="address to listen on (default IMPASTO_WEB_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port to listen on (default IMPASTO_WEB_PORT or 8600)")
    p.set_defaults(handler=run_web)


def run_web(args: argparse.Namespace) -> int:
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    missing = [
        name
        for name, value in (
            ("IMPASTO_WEB_URL", settings.web_url),
            ("IMPASTO_WEB_SECRET", settings.web_secret_value),
            ("IMPASTO_REDIS_URL", settings.redis_url),
        )
        if not value
    ]
    if missing:
        print(
            f"{', '.join(missing)} not set: the web front door needs them (see README, 'The web front door')",
            file=sys.stderr,
        )
        return 2
    from impasto.bots.web.main import serve
    from impasto.storage.db import DatabaseError

    try:
        return serve(settings, host=args.host or settings.web_host, port=args.port or settings.web_port)
    except DatabaseError as exc:
        print(exc, file=sys.stderr)
        return 2
