"""The Telegram bot process: everything opened in one ``async with`` stack and injected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass

from redis.asyncio import Redis

from impasto.bots.config import Settings
from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.fetch import http_fetcher
from impasto.bots.service.result_forms import TELEGRAM_DOCUMENT_BYTES
from impasto.bots.service.runtime import job_service
from impasto.bots.telegram.app import build_application, register_commands, run_polling, run_webhook
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.handlers import REVIEW_KEY, install
from impasto.bots.telegram.review_queue import TelegramReview
from impasto.bots.telegram.surface import TelegramSurface, limits_for
from impasto.bots.telegram.uploads import store_fetcher
from impasto.queue.client import open_pool, service_enqueue
from impasto.queue.keys import namespace_from_env

log = logging.getLogger("impasto.telegram")
EDIT_INTERVAL_S = 3.0  # progress edits per chat, at most one per this across bot processes (Telegram's edit limits)


@dataclass(frozen=True)
class RunOptions:
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    set_commands: bool = True


async def serve(settings: Settings, token: str, redis_url: str, options: RunOptions, stop: asyncio.Event) -> None:
    ns = namespace_from_env()  # IMPASTO_QUEUE_NAMESPACE: the workers of this deployment read the same one
    pool = await open_pool(redis_url, ns=ns)
    redis = Redis.from_url(redis_url)
    try:
        images = settings.image_store()
        fetch = store_fetcher(
            images, http_fetcher(max_bytes=settings.max_upload_bytes, allow_hosts=settings.fetch_allow_hosts)
        )
        async with job_service(
            settings, enqueue=service_enqueue(pool, ns=ns), fetch_image=fetch, redis=pool
        ) as service:
            application = build_application(token, settings.telegram_api_url)
            surface = TelegramSurface(
                application.bot,
                service.images,
                limits=limits_for(settings.telegram_api_url),
                mask_editor=settings.mask_editor,
                web=settings if settings.mask_editor else None,
                download_s=settings.web_download_seconds,
            )
            delivery = Delivery(service, redis, surface, ns=ns, edit_interval_s=EDIT_INTERVAL_S)
            deps = Deps(
                service=service,
                images=service.images,
                delivery=delivery,
                redis=redis,
                ns=ns,
                models=settings.registry.names(),
                max_upload_bytes=settings.max_upload_bytes,
                web=settings if settings.mask_editor else None,
                moderation=settings.moderation_policy,
                document_bytes=surface.limits.document_bytes or TELEGRAM_DOCUMENT_BYTES,
                download_s=settings.web_download_seconds,
            )
            install(application, deps)
            async with application:
                if options.set_commands:
                    await register_commands(application)
                delivering = asyncio.create_task(delivery.run(consumer=consumer_name()))
                review = application.bot_data.get(REVIEW_KEY)
                feeding = asyncio.create_task(review.feed.run()) if isinstance(review, TelegramReview) else None
                try:
                    if settings.telegram_webhook_url:
                        secret = settings.telegram_webhook_secret
                        await run_webhook(
                            application,
                            stop,
                            url=settings.telegram_webhook_url,
                            secret=secret.get_secret_value() if secret else "",
                            listen=options.webhook_listen,
                            port=options.webhook_port,
                        )
                    else:
                        await application.bot.delete_webhook()
                        await run_polling(application, stop)
                finally:
                    if feeding is not None:
                        feeding.cancel()
                    delivering.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await delivering
    finally:
        await redis.aclose()
        await pool.aclose()


def consumer_name() -> str:
    """Stable across restarts of one host/container, so its unacknowledged events come back to it."""
    return os.environ.get("IMPASTO_TELEGRAM_CONSUMER") or socket.gethostname()


async def main(settings: Settings, token: str, redis_url: str, options: RunOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("telegram bot starting (api %s)", settings.telegram_api_url)
    await serve(settings, token, redis_url, options, stop)
