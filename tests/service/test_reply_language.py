"""The reply language in the core, on both databases: negotiated from the /settings choice, the client's language
and the server's default; recorded with each job at admission (``jobs.locale``) for delivery to write in."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import QueuedRender
from impasto.engine.registry import load_registry
from impasto.storage.images import ImageStore
from impasto.storage.plans import load_plans

ZH = "zh_Hans"


async def _enqueue(render: QueuedRender) -> None:
    return None


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> JobService:
    return JobService(sessions, ImageStore(tmp_path / "images"), load_registry(), load_plans(), _enqueue)


def who(client: str | None, user: str = "100") -> Requester:
    return Requester("telegram", user, "ada", guild_id="-900", channel_id="-900", client_locale=client)


async def test_the_language_is_negotiated_and_recorded_with_each_job(service: JobService) -> None:
    assert await service.reply_locale(who("zh-hans")) == ZH  # nothing stored yet: no rows are made to answer
    assert await service.reply_locale(who(None)) == "en"
    [ticket] = await service.imagine(who("zh-hans"), "a red fox", idempotency_key="k1")
    assert (await service.job(ticket.job_id)).locale == ZH

    # The group's default serves an app without a language; the app's language beats it.
    assert (await service.set_server_language("telegram", "-900", "中文")).locale == ZH
    assert await service.reply_locale(who(None, "200")) == ZH
    assert await service.reply_locale(who("en", "200")) == "en"

    # The user's own choice beats both; "auto" clears it.
    settings = await service.set_language(who("zh-hans"), "English")
    assert (settings.language, settings.locale) == ("en", "en")
    assert (await service.settings(who("zh-hans"))).language == "en"
    [ticket] = await service.imagine(who("zh-hans"), "a blue fox", idempotency_key="k2")
    assert (await service.job(ticket.job_id)).locale == "en"
    settings = await service.set_language(who("fr"), "auto")
    assert (settings.language, settings.locale) == (None, ZH)  # French is not served: the group's Chinese

    with pytest.raises(InvalidRequest, match=r"^impasto 不支持语言 klingon"):
        await service.set_language(who("zh-hans", "300"), "klingon")
    assert (await service.set_server_language("telegram", "-900", "auto")).locale is None
