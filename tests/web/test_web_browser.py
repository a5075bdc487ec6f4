"""The web front door in headless Chromium on the real core: the region editor drawn with a mouse and with touch and
submitted (a region job in SQL, its mask stored white where drawn, its reply target kept); refused links; galleries.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from web_helpers import SIZE, TELEGRAM_TOKEN, Site, wait_until_steady

from impasto.bots.service.requester import Requester
from impasto.bots.web.links import editor_link, gallery_link, public_gallery_link
from impasto.bots.web.telegram_auth import sign_init_data
from impasto.queue.actions import Action
from impasto.storage.models import Job

ADA = Requester("discord", "100", "ada", guild_id="900", channel_id="55")
BOB = Requester("discord", "200", "bob", guild_id="900", channel_id="55")
WAIT_S = 60


def shot(browser: Any, tmp_path: Path, name: str) -> Path:
    """A screenshot under tmp_path, copied to $IMPASTO_WEB_SCREENSHOTS when set (the README's pictures)."""
    path = tmp_path / name
    browser.save_screenshot(str(path))
    if target := os.environ.get("IMPASTO_WEB_SCREENSHOTS"):
        shutil.copy(path, Path(target) / name)
    return path


def open_editor(browser: Any, url: str) -> Any:
    browser.get(url)
    canvas = browser.find_element(By.ID, "mask")
    wait_until_steady(browser)
    size = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", canvas)
    assert size == [SIZE, SIZE]  # shown at 1:1, so CSS offsets below are image pixels
    return canvas


def submit(browser: Any) -> str:
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#submitted, #refused")))
    return str(browser.find_element(By.TAG_NAME, "main").text)


async def region_job(site: Site, parent_id: str) -> Job:
    async with site.sessions() as session:
        jobs = list(await session.scalars(select(Job).where(Job.parent_id == parent_id, Job.action == "vr")))
    assert len(jobs) == 1
    return jobs[0]


def mask_of(site: Site, job: Job, source_key: str) -> Image.Image:
    assert job.input_image_keys[0] == source_key
    assert len(job.input_image_keys) == 2
    mask = Image.open(site.store.path(job.input_image_keys[1]))
    assert mask.size == (SIZE, SIZE)
    return mask.convert("L")


async def test_region_editor_with_a_mouse(site: Site, browser: Any, tmp_path: Path) -> None:
    single = await site.upscaled(ADA, "a lighthouse at dusk", "w-mouse")
    url = editor_link(site.cfg, ADA, single.job_id, None, "777")

    def draw() -> str:
        canvas = open_editor(browser, url)
        assert browser.find_element(By.NAME, "prompt").get_attribute("value").startswith("a lighthouse at dusk")
        # Brush (40 px): a stroke from (48, 48) to (108, 48) in image pixels (offsets are from the centre, 128).
        chain = ActionChains(browser).move_to_element_with_offset(canvas, -80, -80).click_and_hold()
        chain.move_by_offset(30, 0).move_by_offset(30, 0).release().perform()
        # Rectangle: (148, 148)–(208, 208).
        browser.find_element(By.CSS_SELECTOR, "[data-tool=rect]").click()
        chain = ActionChains(browser).move_to_element_with_offset(canvas, 20, 20).click_and_hold()
        chain.move_by_offset(30, 30).move_by_offset(30, 30).release().perform()
        # An eraser stroke, then undo it: the brush stroke stays whole.
        browser.find_element(By.CSS_SELECTOR, "[data-tool=eraser]").click()
        ActionChains(browser).move_to_element_with_offset(canvas, -50, -80).click_and_hold().release().perform()
        browser.find_element(By.ID, "undo").click()
        prompt = browser.find_element(By.NAME, "prompt")
        prompt.clear()
        prompt.send_keys("a lighthouse at dusk, a red lantern")
        shot(browser, tmp_path, "editor.png")
        return submit(browser)

    text = await asyncio.to_thread(draw)
    assert "Submitted" in text, text
    job = await region_job(site, single.job_id)
    assert job.prompt == "a lighthouse at dusk, a red lantern"
    assert job.status == "queued"
    assert job.channel_id == "55"
    assert [r.job_id for r in site.recorder.queued][-1] == job.id
    source = single.image(1)
    assert source is not None
    mask = mask_of(site, job, source.key)
    for x, y in [(50, 48), (78, 48), (106, 48), (78, 30), (150, 150), (178, 178), (206, 206)]:
        assert mask.getpixel((x, y)) == 255, (x, y)
    for x, y in [(10, 240), (200, 40), (130, 48), (78, 90), (140, 140), (220, 220)]:
        assert mask.getpixel((x, y)) == 0, (x, y)
    target = await site.service_reply_target(job.id)
    assert (target.platform, target.chat_id, target.message_id, target.guild_id) == ("discord", "55", "777", "900")

    # The link is spent: opening or posting it again is refused, and no second job appears.
    again = await asyncio.to_thread(lambda: (browser.get(url), browser.find_element(By.ID, "refused").text)[1])
    assert "already used" in again
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        token = url.split("t=", 1)[1]
        response = await client.post("/edit", data={"t": token, "prompt": "x", "mask": "data:image/png;base64,"})
    assert response.status_code == 410
    assert "already used" in response.text
    await region_job(site, single.job_id)


async def test_region_editor_with_touch(site: Site, browser: Any) -> None:
    single = await site.upscaled(BOB, "a harbour at noon", "w-touch")
    url = editor_link(site.cfg, BOB, single.job_id, None, "778")

    def draw() -> tuple[str, list[str]]:
        canvas = open_editor(browser, url)
        browser.execute_script(
            "window.__kinds = [];arguments[0].addEventListener('pointerdown', e => window.__kinds.push(e.pointerType))",
            canvas,
        )
        left, top = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top]", canvas
        )
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
        touch = browser.execute_cdp_cmd
        touch("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": left + 40, "y": top + 200}]})
        for step in range(1, 6):
            point = {"x": left + 40 + 20 * step, "y": top + 200}
            touch("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        touch("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        kinds = browser.execute_script("return window.__kinds")
        return submit(browser), kinds

    text, kinds = await asyncio.to_thread(draw)
    assert kinds == ["touch"]
    assert "Submitted" in text, text
    job = await region_job(site, single.job_id)
    source = single.image(1)
    assert source is not None
    mask = mask_of(site, job, source.key)
    for x in (40, 90, 140):
        assert mask.getpixel((x, 200)) == 255, x
    assert mask.getpixel((40, 100)) == 0
    assert mask.getpixel((200, 200)) == 0


async def test_refused_links_and_an_empty_mask(site: Site, browser: Any) -> None:
    single = await site.upscaled(ADA, "a quiet bay", "w-refused")
    expired = editor_link(site.cfg, ADA, single.job_id, None, "1", now=time.time() - 16 * 60)
    good = editor_link(site.cfg, ADA, single.job_id, None, "1")
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")

    def visit() -> tuple[str, str, str]:
        browser.get(expired)
        expired_text = browser.find_element(By.ID, "refused").text
        browser.get(tampered)
        tampered_text = browser.find_element(By.ID, "refused").text
        open_editor(browser, good)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # nothing drawn
        WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "error").text)
        return expired_text, tampered_text, browser.find_element(By.ID, "error").text

    expired_text, tampered_text, empty_text = await asyncio.to_thread(visit)
    assert "expired" in expired_text
    assert "not valid" in tampered_text
    assert "Paint the area" in empty_text
    async with site.sessions() as session:
        assert list(await session.scalars(select(Job.id).where(Job.parent_id == single.job_id))) == []


async def test_galleries(site: Site, browser: Any, tmp_path: Path) -> None:
    await site.service.update_settings(ADA, visibility="stealth")
    ada_stealth = await site.finished(ADA, "a secret castle", "g-1", colour=10)
    await site.service.update_settings(ADA, visibility="public")
    ada_html = await site.finished(ADA, "<script>alert('x')</script> <b>bold</b> harbour", "g-2", colour=60)
    whale = await site.finished(ADA, "a blue whale", "g-3", colour=110)
    await site.service.press(ADA, whale.job_id, Action.FAVORITE, idempotency_key="g-fav")
    whale_u2 = (await site.service.press(ADA, whale.job_id, Action.UPSCALE, 2, idempotency_key="g-u2")).view
    bob_public = await site.finished(BOB, "a forest path", "g-4", colour=160)
    await site.service.update_settings(BOB, visibility="stealth")
    bob_stealth = await site.finished(BOB, "a hidden cave", "g-5", colour=210)
    mine, bobs, public = gallery_link(site.cfg, ADA), gallery_link(site.cfg, BOB), public_gallery_link(site.cfg, BOB)

    def tiles() -> list[str]:
        return [e.get_attribute("data-job") for e in browser.find_elements(By.CSS_SELECTOR, "#jobs .tile")]

    def browse() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        browser.get(mine)
        seen["mine"] = tiles()
        seen["html_caption"] = browser.find_element(By.CSS_SELECTOR, f"[data-job='{ada_html.job_id}'] .caption").text
        seen["injected"] = browser.execute_script("return document.querySelectorAll('.caption b, main script').length")
        shot(browser, tmp_path, "gallery.png")
        box = browser.find_element(By.NAME, "q")
        box.send_keys("whale")
        box.submit()
        WebDriverWait(browser, WAIT_S).until(lambda d: "q=whale" in d.current_url)
        seen["search"] = tiles()
        browser.get(mine)
        browser.find_element(By.NAME, "fav").click()
        browser.find_element(By.CSS_SELECTOR, ".search button[type=submit]").click()
        WebDriverWait(browser, WAIT_S).until(lambda d: "fav=1" in d.current_url)
        seen["favourites"] = tiles()
        browser.find_element(By.CSS_SELECTOR, f"[data-job='{whale.job_id}'] a").click()
        WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.ID, "job")))
        seen["job_page"] = browser.find_element(By.ID, "job").text
        seen["downloads"] = len(browser.find_elements(By.CSS_SELECTOR, ".downloads a[download]"))
        seen["children"] = len(browser.find_elements(By.CSS_SELECTOR, ".lineage img"))
        seen["img_src"] = browser.find_element(By.CSS_SELECTOR, "img.full").get_attribute("src")
        button = browser.find_element(By.ID, "favorite")
        seen["favourite_before"] = button.get_attribute("aria-pressed")
        button.click()
        WebDriverWait(browser, WAIT_S).until(ec.staleness_of(button))
        seen["favourite_after"] = browser.find_element(By.ID, "favorite").get_attribute("aria-pressed")
        browser.get(public)
        seen["public"] = tiles()
        browser.get(bobs)
        seen["bobs"] = tiles()
        browser.get(f"{site.base_url}/job/{ada_stealth.job_id}?{bobs.split('?', 1)[1]}&from=gallery")
        seen["bob_on_ada_stealth"] = browser.find_element(By.ID, "refused").text
        browser.get(f"{site.base_url}/job/{ada_html.job_id}?{bobs.split('?', 1)[1]}&from=gallery")
        seen["bob_on_ada_public"] = browser.find_element(By.ID, "job").text
        seen["bob_favourite_buttons"] = len(browser.find_elements(By.ID, "favorite"))
        return seen

    seen = await asyncio.to_thread(browse)
    assert set(seen["mine"]) == {ada_stealth.job_id, ada_html.job_id, whale.job_id, whale_u2.job_id}
    assert seen["mine"][0] == whale_u2.job_id  # newest first
    assert seen["html_caption"] == "<script>alert('x')</script> <b>bold</b> harbour"
    assert seen["injected"] == 0
    assert set(seen["search"]) == {whale.job_id, whale_u2.job_id}
    assert seen["favourites"] == [whale.job_id]
    assert str(whale.seed) in seen["job_page"]
    assert seen["downloads"] == 5
    assert seen["children"] == 1
    assert set(seen["public"]) == {ada_html.job_id, whale.job_id, whale_u2.job_id, bob_public.job_id}
    assert set(seen["bobs"]) == {bob_public.job_id, bob_stealth.job_id}
    assert "not one you may see" in seen["bob_on_ada_stealth"]
    assert "bold" in seen["bob_on_ada_public"]
    assert seen["bob_favourite_buttons"] == 0  # ❤️ is the owner's
    assert (seen["favourite_before"], seen["favourite_after"]) == ("true", "false")
    assert not (await site.service.job(whale.job_id)).favorite

    async with httpx.AsyncClient() as client:
        good = await client.get(seen["img_src"])
        forged = await client.get(seen["img_src"].replace("&s=", "&s=x"))
        outside = await client.get(f"{site.base_url}/img/..%2f..%2fetc%2fpasswd?e=9999999999&s=x")
        bob_token = bobs.split("t=", 1)[1]
        not_his = await client.post(f"{site.base_url}/job/{whale.job_id}/favorite", data={"t": bob_token})
    assert not_his.status_code == 403
    assert "owner" in not_his.text
    assert not (await site.service.job(whale.job_id)).favorite
    assert good.status_code == 200
    assert good.headers["content-type"] == "image/png"
    assert "default-src 'none'" in good.headers["content-security-policy"]
    assert forged.status_code == 403
    assert outside.status_code in (403, 404)


@pytest.mark.parametrize("who", ["other", "none"])
async def test_a_mini_app_link_needs_the_same_telegram_user(site: Site, who: str) -> None:

    tg = Requester("telegram", "42", "ada")
    grid = await site.finished(tg, "a paper boat", "tg-1")
    single = (await site.service.press(tg, grid.job_id, Action.UPSCALE, 1, idempotency_key="tg-u1")).view
    url = editor_link(site.cfg, tg, single.job_id, None, "5", webapp=True)
    user = json.dumps({"id": 43, "first_name": "Eve"})
    init = sign_init_data({"user": user, "auth_date": str(int(time.time()))}, TELEGRAM_TOKEN) if who == "other" else ""
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        page = await client.get(url)
        assert "telegram-web-app.js" in page.text
        response = await client.post("/edit", data={"t": url.split("t=", 1)[1], "prompt": "x", "init_data": init})
    assert response.status_code == 403
    assert ("another Telegram user" if who == "other" else "not signed") in response.text
