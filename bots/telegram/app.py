"""Building the PTB ``Application`` for impasto and running it by long polling or behind a webhook.

The Bot API root is configurable (``IMPASTO_TELEGRAM_API_URL``): PTB appends the token to ``base_url``, so the root
``https://api.telegram.org`` becomes ``…/bot<token>/<method>`` and ``…/file/bot<token>/<path>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from aiohttp import web
from telegram import BotCommand, Update
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from impasto.bots.telegram.texts import MENU_LANGUAGES, command_menu

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# PTB's Application has six type parameters for its pluggable context types; we use the defaults.
TgApp: TypeAlias = Application[Any, Any, Any, Any, Any, Any]

# Updates handled at once. A handler holds its slot until it returns: through the job service's SQL (admission waits
# for the database) and through the work after its answer (the progress message, a button's job). With 32 slots, a
# burst of /imagine filled them all and every later update, a button press included, waited for a slot before the
# bot even looked at it: in the load test (200 users) that wait was ~90% of the p99 from update to first answer
# (10 s). Handlers are coroutines that wait on I/O, so many cost little; Discord's adapter dispatches every
# interaction at once. 256 is PTB's own ``concurrent_updates(True)``; the database's connection pool is what bounds
# the SQL done at once.
CONCURRENT_UPDATES = 256
# Connections for the bot's calls (answers, progress edits, result uploads). Every handler and the delivery share them,
# and a call waits at most PTB's pool timeout (1 s) for one before failing with TimedOut: with 256 handlers at once
# and uploads that take seconds on the real Bot API, 16 would be too few.
CONNECTION_POOL_SIZE = 64


def api_urls(api_root: str) -> tuple[str, str]:
    """``(base_url, base_file_url)`` for PTB from the Bot API root; the token is appended by PTB."""
    root = api_root.rstrip("/")
    return f"{root}/bot", f"{root}/file/bot"


def build_application(token: str, api_root: str, *, read_timeout_s: float = 10.0) -> TgApp:
    base_url, base_file_url = api_urls(api_root)
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .request(
            HTTPXRequest(connection_pool_size=CONNECTION_POOL_SIZE, read_timeout=read_timeout_s, media_write_timeout=60)
        )
        .get_updates_request(HTTPXRequest(connection_pool_size=1, read_timeout=read_timeout_s))
        # Updates are independent (a button press must not wait behind a slow upload); ordering per chat is not
        # needed because every state change goes through SQL.
        .concurrent_updates(CONCURRENT_UPDATES)
        .build()
    )


async def register_commands(application: TgApp) -> None:
    """The command menu in every supported language (``setMyCommands`` per ``language_code``)."""
    for language_code, language in MENU_LANGUAGES.items():
        commands = [BotCommand(name, description) for name, description in command_menu(language)]
        await application.bot.set_my_commands(commands, language_code=language_code)


async def run_polling(application: TgApp, stop: asyncio.Event, *, poll_timeout_s: int = 10) -> None:
    """Long polling until ``stop`` is set; the caller owns the ``async with application`` block."""
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(timeout=poll_timeout_s, poll_interval=0, allowed_updates=Update.ALL_TYPES)
    try:
        await stop.wait()
    finally:
        await application.updater.stop()
        await application.stop()


def bound_port(site: web.TCPSite, default: int) -> int:
    """The port a site listens on (the OS picks one when asked for port 0)."""
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else default


def webhook_app(application: TgApp, secret: str) -> web.Application:
    """An aiohttp app that takes Telegram's POSTs, checks the secret header, and queues the update."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403, text="wrong secret token")
        try:
            payload = await request.json()
            update = Update.de_json(payload, application.bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="not an Update")
        await application.update_queue.put(update)
        return web.Response(text="ok")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{path:.*}", receive)
    return app


async def run_webhook(
    application: TgApp,
    stop: asyncio.Event,
    *,
    url: str,
    secret: str,
    listen: str = "0.0.0.0",
    port: int = 8443,
    on_ready: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Serve a webhook on ``listen:port`` (TLS is the reverse proxy's job) and register ``url`` with Telegram.

    Several processes may serve the same URL behind a load balancer: none of them holds state.
    """
    runner = web.AppRunner(webhook_app(application, secret), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, listen, port)
    await site.start()
    await application.start()
    try:
        await application.bot.set_webhook(url=url, secret_token=secret, allowed_updates=Update.ALL_TYPES)
        if on_ready is not None:
            await on_ready(bound_port(site, port))
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await application.stop()
        await runner.cleanup()
