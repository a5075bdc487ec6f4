"""A bot's main() opens the service through job_service(): it refuses an unmigrated database, then works."""

from __future__ import annotations

from pathlib import Path

import pytest

from impasto.bots.config import Settings
from impasto.bots.service.requester import Requester
from impasto.bots.service.runtime import job_service
from impasto.bots.service.views import QueuedRender
from impasto.migrations.config import upgrade
from impasto.storage.db import NotMigrated, make_engine


async def test_job_service_refuses_an_unmigrated_database_then_opens(
    db_url: str, data_dir: Path, clean_env: None
) -> None:
    settings = Settings(database_url=db_url, data_dir=data_dir, max_permutations=4)
    queued: list[QueuedRender] = []

    async def enqueue(render: QueuedRender) -> None:
        queued.append(render)

    with pytest.raises(NotMigrated, match="run `impasto db upgrade`"):
        async with job_service(settings, enqueue=enqueue):
            pass
    engine = make_engine(db_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    async with job_service(settings, enqueue=enqueue) as service:
        (ticket,) = await service.imagine(Requester("console", "op"), "a kettle", idempotency_key="k")
        assert (await service.info(Requester("console", "op"))).plan == "mega"  # the operator's plan
    assert [q.job_id for q in queued] == [ticket.job_id]
