"""``impasto telegram``: run the Telegram bot (long polling, or a webhook when IMPASTO_TELEGRAM_WEBHOOK_URL is set)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from impasto.bots.config import Settings
from impasto.storage.db import DatabaseError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "telegram",
        help="run the Telegram bot",
        description=(
            "Serve Telegram users with IMPASTO_TELEGRAM_TOKEN against the Bot API at IMPASTO_TELEGRAM_API_URL "
            "(default https://api.telegram.org). Long polling by default; with IMPASTO_TELEGRAM_WEBHOOK_URL and "
            "IMPASTO_TELEGRAM_WEBHOOK_SECRET it registers that webhook and listens on --listen/--port instead. "
            "Needs IMPASTO_REDIS_URL (queue and events) and a migrated database (impasto db upgrade)."
        ),
    )
    p.add_argument("--listen", default="0.0.0.0", help="webhook mode: address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=8443, help="webhook mode: port to listen on (default 8443)")
    p.add_argument("--no-commands", action="store_true", help="do not (re)register the command menu at start-up")
    p.set_defaults(handler=run_telegram)


def run_telegram(args: argparse.Namespace) -> int:
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    if settings.telegram_token is None:
        print("IMPASTO_TELEGRAM_TOKEN is not set: get a token from @BotFather", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print("IMPASTO_REDIS_URL is not set: the bot queues jobs and hears results on Redis", file=sys.stderr)
        return 2
    if settings.telegram_webhook_url and settings.telegram_webhook_secret is None:
        print("IMPASTO_TELEGRAM_WEBHOOK_SECRET is required with IMPASTO_TELEGRAM_WEBHOOK_URL", file=sys.stderr)
        return 2
    from functools import partial

    from impasto.bots.ops.health import run_with_ops
    from impasto.bots.ops.logs import configure_logging, secrets_of
    from impasto.bots.startup import explain_common, explain_telegram, guarded_start
    from impasto.bots.telegram.main import RunOptions, main

    options = RunOptions(webhook_listen=args.listen, webhook_port=args.port, set_commands=not args.no_commands)
    token = settings.telegram_token.get_secret_value()
    secret = settings.telegram_webhook_secret
    redis_url = settings.redis_url

    def config_error(exc: BaseException) -> str | None:
        # NotMigrated and friends; ValueError: a bad IMPASTO_LOG_FORMAT or IMPASTO_METRICS_PORT.
        return str(exc) if isinstance(exc, DatabaseError | ValueError) else None

    def start() -> None:
        # httpx logs every URL, and Bot API URLs hold the token: configure_logging keeps httpx at WARNING and redacts.
        configure_logging(secrets=secrets_of(settings))
        asyncio.run(run_with_ops(settings, main(settings, token, redis_url, options)))

    return guarded_start(
        "telegram",
        start,
        secrets=(token, secret.get_secret_value() if secret else ""),
        explain=(
            config_error,
            partial(explain_common, redis_url=redis_url),
            partial(explain_telegram, api_url=settings.telegram_api_url),
        ),
    )
