"""Fixtures of the web front door's tests: the app on the real core under uvicorn, and headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web_helpers import Recorder, Site, serving

from impasto.bots.service.jobs import JobService
from impasto.engine.registry import load_registry
from impasto.storage.images import ImageStore
from impasto.storage.plans import parse_plans


@pytest.fixture
async def site(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Site]:
    store = ImageStore(tmp_path / "images")
    plans = parse_plans({"default": "member", "plans": {"member": {"fast_gpu_hours": 10, "relax": True}}})
    recorder = Recorder()
    service = JobService(sessions, store, load_registry(), plans, recorder)
    async with serving(service, recorder) as running:
        yield running


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    )
    return (browser, driver) if browser and driver else None


def _launch(accept_language: str | None = None) -> Iterator[object]:
    found = _chromium()
    if found is None:
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1000"):
        options.add_argument(arg)
    if accept_language is not None:
        # What the browser asks pages for (its Accept-Language header); --lang alone is ignored when headless.
        options.add_argument(f"--lang={accept_language.split(',')[0]}")
        options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session (chromium and chromium-driver from the distribution)."""
    yield from _launch()


@pytest.fixture(scope="session")
def browser_zh() -> Iterator[object]:
    """A headless Chromium whose user reads Simplified Chinese (``Accept-Language: zh-CN,zh``)."""
    yield from _launch("zh-CN,zh")
