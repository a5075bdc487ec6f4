"""Opening the job service in a bot's ``main()``: the database (checked to be migrated), the image store, the plans.

    async with job_service(settings, enqueue=service_enqueue(pool)) as service:
        ...  # hand `service` to the Discord/Telegram application

Everything is opened here and closed on exit; nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from impasto.bots.config import Settings
from impasto.bots.moderation.admission_check import ModerationCheck
from impasto.bots.service.checks import POLICY_CHECKS
from impasto.bots.service.fetch import FetchImage, http_fetcher
from impasto.bots.service.flood import RateCheck
from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import Enqueue
from impasto.queue import keys
from impasto.storage.db import make_engine, require_migrated, session_factory
from impasto.storage.plans import Plans, load_plans, plans_path_from_env


@asynccontextmanager
async def job_service(
    settings: Settings,
    *,
    enqueue: Enqueue,
    plans: Plans | None = None,
    fetch_image: FetchImage | None = None,
    redis: Redis | None = None,
) -> AsyncIterator[JobService]:
    """A ready JobService on ``settings``' database; raises ``NotMigrated`` (message: run `impasto db upgrade`).

    Plans come from ``IMPASTO_PLANS`` (or the shipped file); image prompt links are downloaded with a cap of
    ``settings.max_upload_bytes`` unless another ``fetch_image`` is given. The admission pipeline's policy checks:
    the server's channels, the flood limits (with ``redis``: the bots pass theirs), the moderation policy.
    """
    plans = plans or load_plans(plans_path_from_env())
    engine = make_engine(settings.database_url_or_default)
    try:
        await require_migrated(engine)
        sessions = session_factory(engine)
        yield JobService(
            sessions,
            settings.image_store(),
            settings.registry,
            plans,
            enqueue,
            fetch_image=fetch_image
            or http_fetcher(max_bytes=settings.max_upload_bytes, allow_hosts=settings.fetch_allow_hosts),
            checks=[
                *POLICY_CHECKS,
                *([RateCheck(redis, plans.rate_limits, ns=keys.namespace_from_env())] if redis is not None else []),
                ModerationCheck(sessions, settings.moderation_policy),
            ],
        )
    finally:
        await engine.dispose()
