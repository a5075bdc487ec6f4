"""Fixtures of the web front door's tests: the app on the real core under uvicorn, and headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web_helpers import SECRET, TELEGRAM_TOKEN, TEST_REDIS_URL, Recorder, Site

from impasto.bots.service.jobs import JobService
from impasto.bots.web.app import WebDeps, build_app
from impasto.bots.web.guards import Guards, ReplyTargets
from impasto.engine.registry import load_registry
from impasto.storage.images import ImageStore
from impasto.storage.plans import parse_plans


class Server(uvicorn.Server):
    """uvicorn with an event set once it listens (it exposes only a flag)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@pytest.fixture
async def site(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Site]:
    store = ImageStore(tmp_path / "images")
    plans = parse_plans({"default": "member", "plans": {"member": {"fast_gpu_hours": 10, "relax": True}}})
    recorder = Recorder()
    service = JobService(sessions, store, load_registry(), plans, recorder)
    redis = Redis.from_url(TEST_REDIS_URL)
    prefix = f"impasto:test-web-{uuid.uuid4().hex[:10]}:"
    app = build_app(
        WebDeps(
            service,
            Guards(redis, prefix=prefix),
            ReplyTargets(redis, prefix=prefix),
            SECRET,
            telegram_token=TELEGRAM_TOKEN,
        )
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait_for(server.listening.wait(), 60)
    try:
        yield Site(service, store, sessions, recorder, redis, prefix, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
        sock.close()
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    )
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session (chromium and chromium-driver from the distribution)."""
    found = _chromium()
    if found is None:
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
