"""``impasto discord``: run the Discord bot (slash commands, buttons, reactions)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "discord",
        help="run the Discord bot",
        description="Run the Discord bot. Needs IMPASTO_DISCORD_TOKEN and IMPASTO_REDIS_URL, a migrated database "
        "(`impasto db upgrade`) and at least one `impasto worker`.",
    )
    parser.add_argument(
        "--no-sync",
        action="store_true",
        help="do not register slash commands at startup (they were synced before and have not changed)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # Imported here: `impasto --help` must stay quick and light on hosts that never run the Discord bot.
    from functools import partial

    from impasto.bots.config import Settings
    from impasto.bots.discord.main import ConfigError, run
    from impasto.bots.ops.health import run_with_ops
    from impasto.bots.ops.logs import configure_logging, secrets_of
    from impasto.bots.startup import explain_common, explain_discord, guarded_start

    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    level = getattr(logging, str(args.log_level).upper(), logging.INFO)
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""

    def config_error(exc: BaseException) -> str | None:
        # ValueError: a bad IMPASTO_METRICS_PORT or IMPASTO_LOG_FORMAT (the operator port and the log format).
        return str(exc) if isinstance(exc, ConfigError | ValueError) else None

    def start() -> None:
        configure_logging(level=level if isinstance(level, int) else logging.INFO, secrets=secrets_of(settings))
        asyncio.run(run_with_ops(settings, run(settings, sync_commands=not args.no_sync)))

    return guarded_start(
        "discord",
        start,
        secrets=(token,),
        explain=(
            config_error,
            partial(explain_common, redis_url=settings.redis_url),
            partial(explain_discord, api_url=settings.discord_api_url, gateway_url=settings.discord_gateway_url),
        ),
    )
