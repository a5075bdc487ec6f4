"""``impasto web``: refuses to start without its settings; the app it serves runs on a migrated database."""

from __future__ import annotations

import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from web_helpers import TEST_REDIS_URL

from impasto.bots.cli import main
from impasto.bots.config import Settings
from impasto.bots.web.guards import Guards
from impasto.bots.web.main import web_app


@pytest.mark.usefixtures("clean_env")
def test_impasto_web_names_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "--port", "8601"]) == 2
    err = capsys.readouterr().err
    assert "IMPASTO_WEB_URL" in err
    assert "IMPASTO_WEB_SECRET" in err
    assert "IMPASTO_REDIS_URL" in err


@pytest.mark.usefixtures("clean_env")
def test_vary_region_is_offered_only_with_the_front_door() -> None:
    assert not Settings().mask_editor  # type: ignore[call-arg]
    assert not Settings(web_url="https://x.example").mask_editor  # type: ignore[call-arg]
    assert Settings(web_url="https://x.example", web_secret="s").mask_editor  # type: ignore[call-arg]


@pytest.mark.usefixtures("clean_env")
async def test_the_served_app_answers(engine: AsyncEngine, db_url: str, tmp_path: object) -> None:
    settings = Settings(  # type: ignore[call-arg]
        database_url=db_url, redis_url=TEST_REDIS_URL, web_url="http://test", web_secret="s", data_dir=tmp_path
    )
    async with web_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            home = await client.get("/")
            refused = await client.get("/gallery?t=forged")
            huge = await client.post("/edit", content=b"t=x&mask=" + b"A" * (4 * 1024 * 1024))
    assert home.status_code == 200
    assert "content-security-policy" in home.headers
    assert refused.status_code == 403
    assert "not valid" in refused.text
    assert huge.status_code == 413


async def test_guards_spend_once_and_rate_limit() -> None:
    redis = Redis.from_url(TEST_REDIS_URL)
    prefix = f"impasto:test-web-{uuid.uuid4().hex[:10]}:"
    guards = Guards(redis, prefix=prefix, per_minute=3)
    try:
        assert await guards.spend("n1")
        assert not await guards.spend("n1")
        assert await guards.is_spent("n1")
        await guards.unspend("n1")
        assert await guards.spend("n1")
        assert [await guards.allow("discord:1") for _ in range(4)] == [True, True, True, False]
        assert await guards.allow("discord:2")  # per user
        assert 0 < await redis.ttl(f"{prefix}rate:discord:1") <= 60
    finally:
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        await redis.delete(*keys)
        await redis.aclose()
