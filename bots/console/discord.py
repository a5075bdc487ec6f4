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

    import discord.utils

    from impasto.bots.config import Settings
    from impasto.bots.discord.main import ConfigError, run
    from impasto.bots.startup import explain_common, explain_discord, guarded_start

    discord.utils.setup_logging(level=getattr(logging, str(args.log_level).upper(), logging.INFO))
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""

    def config_error(exc: BaseException) -> str | None:
        return str(exc) if isinstance(exc, ConfigError) else None

    return guarded_start(
        "discord",
        lambda: asyncio.run(run(settings, sync_commands=not args.no_sync)),
        secrets=(token,),
        explain=(
            config_error,
            partial(explain_common, redis_url=settings.redis_url),
            partial(explain_discord, api_url=settings.discord_api_url, gateway_url=settings.discord_gateway_url),
        ),
    )
