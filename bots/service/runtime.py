"""Opening the job service in a bot's ``main()``: the database (checked to be migrated), the image store, the plans.

    async with job_service(settings, enqueue=service_enqueue(pool)) as service:
        ...  # hand `service` to the Discord/Telegram application

Everything is opened here and closed on exit (STYLE.md 5); nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from impasto.bots.config import Settings
from impasto.bots.service.fetch import FetchImage, http_fetcher
from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import Enqueue
from impasto.storage.db import make_engine, require_migrated, session_factory
from impasto.storage.images import ImageStore
from impasto.storage.plans import Plans, load_plans, plans_path_from_env


@asynccontextmanager
async def job_service(
    settings: Settings, *, enqueue: Enqueue, plans: Plans | None = None, fetch_image: FetchImage | None = None
) -> AsyncIterator[JobService]:
    """A ready JobService on ``settings``' database; raises ``NotMigrated`` (message: run `impasto db upgrade`).

    Plans come from ``IMPASTO_PLANS`` (or the shipped file); image prompt links are downloaded with a cap of
    ``settings.max_upload_bytes`` unless another ``fetch_image`` is given.
    """
    engine = make_engine(settings.database_url_or_default)
    try:
        await require_migrated(engine)
        yield JobService(
            session_factory(engine),
            ImageStore.in_data_dir(settings.data_dir),
            settings.registry,
            plans or load_plans(plans_path_from_env()),
            enqueue,
            fetch_image=fetch_image
            or http_fetcher(max_bytes=settings.max_upload_bytes, allow_hosts=settings.fetch_allow_hosts),
        )
    finally:
        await engine.dispose()
