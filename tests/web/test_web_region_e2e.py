"""End to end: a mask drawn in headless Chromium goes through the real queue to a real worker painting with the
built-in tiny SD 1.5 model; the region job's four images keep every pixel outside the mask."""

from __future__ import annotations

import asyncio
import secrets
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from PIL import Image, ImageChops
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web_helpers import TEST_REDIS_URL, serving, wait_until_steady

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.web.links import editor_link
from impasto.engine.registry import load_registry
from impasto.queue import keys
from impasto.queue.actions import Action
from impasto.queue.client import open_pool, service_enqueue
from impasto.queue.renderer import EngineRenderer
from impasto.queue.settings import WorkerConfig
from impasto.queue.worker import WorkerSetup, build_worker
from impasto.storage.images import ImageStore
from impasto.storage.models import Job
from impasto.storage.plans import load_plans

ERIN = Requester("telegram", "6006", "erin", guild_id="-100500", channel_id="-100500")


@pytest.fixture
async def queue() -> AsyncIterator[tuple[ArqRedis, keys.Namespace]]:
    ns = keys.Namespace(f"impasto-test-{secrets.token_hex(6)}:")
    pool = await open_pool(TEST_REDIS_URL, ns=ns)
    try:
        yield pool, ns
    finally:
        async for key in pool.scan_iter(match=ns.prefix + "*"):
            await pool.delete(key)
        await pool.aclose()


async def drain(db_url: str, images: Path, ns: keys.Namespace, renderer: EngineRenderer) -> None:
    """One worker in burst mode until the queue is empty."""
    config = WorkerConfig.model_validate(
        {"name": "test-gpu0", "poll_delay_s": 0.05, "lease_s": 3.0, "namespace": ns.prefix, "exit_when_wedged": False}
    )
    setup = WorkerSetup(config=config, database_url=db_url, image_root=images, renderer_factory=lambda: renderer)
    worker = build_worker(setup, redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
    try:
        await worker.main()
    finally:
        with warnings.catch_warnings():  # arq calls redis-py's deprecated close() in Worker.close
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_drawn_region_is_repainted_and_the_rest_kept(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    queue: tuple[ArqRedis, keys.Namespace],
    browser: Any,
    tmp_path: Path,
) -> None:
    pool, ns = queue
    images = tmp_path / "images"
    registry = load_registry(default="tiny-sd15")
    service = JobService(sessions, ImageStore(images), registry, load_plans(), service_enqueue(pool, ns=ns))
    renderer = EngineRenderer.load(registry, cache_dir=tmp_path / "models", lora_dir=None, model="tiny-sd15")
    [ticket] = await service.imagine(ERIN, "a lighthouse --seed 7", idempotency_key="e2e-1")
    await drain(db_url, images, ns, renderer)
    single = (await service.press(ERIN, ticket.job_id, Action.UPSCALE, 3, idempotency_key="e2e-u3")).view
    source = single.image(1)
    assert source is not None

    async with serving(service) as site:
        url = editor_link(site.cfg, ERIN, single.job_id, None, "4242")

        def draw() -> str:
            browser.get(url)
            canvas = browser.find_element(By.ID, "mask")
            wait_until_steady(browser)
            width = browser.execute_script("return arguments[0].getBoundingClientRect().width", canvas)
            browser.find_element(By.CSS_SELECTOR, "[data-tool=rect]").click()
            # A rectangle over the image's upper-left quarter-ish (offsets are from the centre).
            step = width / 8
            chain = ActionChains(browser).move_to_element_with_offset(canvas, -3 * step, -3 * step).click_and_hold()
            chain.move_by_offset(step, step).move_by_offset(step, step).release().perform()
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(browser, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#submitted, #refused")))
            return str(browser.find_element(By.TAG_NAME, "main").text)

        text = await asyncio.to_thread(draw)
        assert "Submitted" in text, text
        async with sessions() as session:
            row = (await session.scalars(select(Job).where(Job.parent_id == single.job_id, Job.action == "vr"))).one()
        reply = await site.service_reply_target(row.id)
        assert (reply.platform, reply.chat_id, reply.message_id) == ("telegram", "-100500", "4242")

    assert row.input_image_keys[0] == source.key
    region = await service.job(row.id)
    await drain(db_url, images, ns, renderer)
    region = await service.job(region.job_id)
    assert region.status == "done", region.error
    assert sorted(i.index for i in region.images) == [0, 1, 2, 3, 4]  # a 2×2 grid of four variations
    store = ImageStore(images)
    with Image.open(store.path(source.key)) as before_file:
        before = before_file.convert("RGB")
    with Image.open(store.path(row.input_image_keys[1])) as mask_file:
        mask = mask_file.convert("L")
    keep = Image.eval(mask, lambda v: 255 - v)
    painted_somewhere = False
    for index in (1, 2, 3, 4):
        image = region.image(index)
        assert image is not None
        with Image.open(store.path(image.key)) as after_file:
            after = after_file.convert("RGB")
        assert after.size == before.size
        diff = ImageChops.difference(before, after).convert("L")
        outside = ImageChops.multiply(diff, keep)
        assert outside.getbbox() is None, f"image {index} changed outside the mask"
        painted_somewhere = painted_somewhere or ImageChops.multiply(diff, mask).getbbox() is not None
    assert painted_somewhere
