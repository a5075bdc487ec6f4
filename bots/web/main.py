"""Running the web front door: the job service, Redis and the Starlette app under uvicorn, opened and closed here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette

from impasto.bots.config import Settings
from impasto.bots.service.runtime import job_service
from impasto.bots.web.app import WebDeps, build_app
from impasto.bots.web.guards import Guards, ReplyTargets
from impasto.queue.client import open_pool, service_enqueue
from impasto.queue.keys import namespace_from_env


@asynccontextmanager
async def web_app(settings: Settings) -> AsyncIterator[Starlette]:
    """The app on ``settings``' database, Redis and queue; everything is closed on exit."""
    assert settings.redis_url is not None
    assert settings.web_secret_value is not None
    ns = namespace_from_env()  # IMPASTO_QUEUE_NAMESPACE: the workers of this deployment read the same one
    pool = await open_pool(settings.redis_url, ns=ns)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with job_service(settings, enqueue=service_enqueue(pool, ns=ns)) as service:
            token = settings.telegram_token.get_secret_value() if settings.telegram_token else None
            yield build_app(
                WebDeps(
                    service,
                    Guards(redis),
                    ReplyTargets(redis),
                    settings.web_secret_value,
                    telegram_token=token,
                    policy=settings.moderation_policy,
                )
            )
    finally:
        await redis.aclose()
        await pool.aclose()


async def _serve(settings: Settings, host: str, port: int) -> None:
    async with web_app(settings) as app:
        config = uvicorn.Config(app, host=host, port=port, proxy_headers=True, log_level="info")
        await uvicorn.Server(config).serve()


def serve(settings: Settings, *, host: str, port: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(settings, host, port))
    return 0
