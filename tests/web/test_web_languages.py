"""The web front door in the reader's language (issue 15): the language a signed link records, else the user's
/settings choice, else the browser's Accept-Language, else English — for the region editor (its JavaScript's words
included), a gallery, the moderators' desk and the refusal pages; in headless Chromium reading Chinese or English."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web_helpers import SECRET, SIZE, Recorder, Site, serving, wait_until_steady

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.locale import accept_language
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.web.links import Pass, desk_link, editor_link, gallery_link, sign, verify
from impasto.engine.registry import load_registry
from impasto.queue.moderation.policy import load_policy
from impasto.storage.images import ImageStore
from impasto.storage.plans import parse_plans

ZH = "zh_Hans"
ADA = Requester("discord", "100", "ada", guild_id="900", channel_id="55")
MOD = Requester("telegram", "9", "mod", guild_id="-100", channel_id="-100")
WAIT_S = 60


@pytest.fixture
async def desk_site(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Site]:
    store = ImageStore(tmp_path / "images")
    plans = parse_plans({"default": "member", "plans": {"member": {"fast_gpu_hours": 10, "relax": True}}})
    service = JobService(sessions, store, load_registry(), plans, Recorder())
    async with serving(service, policy=load_policy()) as running:
        yield running


def page(browser: Any, url: str, element_id: str) -> tuple[str, str, str]:
    """(``<html lang>``, the title, the text of ``#element_id``) of ``url`` once it shows."""
    browser.get(url)
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.ID, element_id))
    lang = browser.find_element(By.TAG_NAME, "html").get_attribute("lang")
    return str(lang), str(browser.title), str(browser.find_element(By.ID, element_id).text)


def test_accept_language_is_negotiated() -> None:
    assert accept_language("zh-CN,zh;q=0.9,en;q=0.8") == ZH
    assert accept_language("en-US,en;q=0.9,zh;q=0.8") == "en"
    assert accept_language("fr-FR, de;q=0.9, zh-TW;q=0.5") == ZH  # Traditional asked: the Chinese impasto has
    assert accept_language("en;q=0.2, zh;q=0.9") == ZH  # by quality, not order
    assert accept_language("fr, *") is None
    assert accept_language("zh;q=0, en") == "en"
    assert accept_language("") is None


def test_a_link_records_the_language_and_old_links_still_open() -> None:
    cfg_url = "https://impasto.example"

    class Cfg:
        web_url = cfg_url
        web_secret_value = SECRET

    url = editor_link(Cfg(), ADA, "job123456789", None, "777", lang=ZH)
    assert verify(SECRET, url.split("t=", 1)[1], "edit").lang == ZH
    assert verify(SECRET, gallery_link(Cfg(), ADA).split("t=", 1)[1], "gallery").lang == ""  # none: negotiated
    assert verify(SECRET, desk_link(Cfg(), MOD, lang="en").split("t=", 1)[1], "desk").lang == "en"
    # A link made before the field existed (no "lang" in its payload) verifies as it did.
    old = URLSafeSerializer(SECRET, salt="impasto-web-gallery").dumps(
        {"purpose": "gallery", "platform": "discord", "user_id": "100", "name": "ada", "expires": 4_000_000_000}
    )
    grant = verify(SECRET, old, "gallery")
    assert (grant.user_id, grant.lang) == ("100", "")


async def test_the_region_editor_opens_in_the_links_language(site: Site, browser: Any) -> None:
    single = await site.upscaled(ADA, "a lighthouse at dusk", "lang-editor")
    zh_url = editor_link(site.cfg, ADA, single.job_id, None, "777", lang=ZH)
    en_url = editor_link(site.cfg, ADA, single.job_id, None, "777")

    def open_and_submit_empty(url: str) -> tuple[str, str, str, str]:
        browser.get(url)
        wait_until_steady(browser)
        lang = browser.find_element(By.TAG_NAME, "html").get_attribute("lang")
        brush = browser.find_element(By.CSS_SELECTOR, "[data-tool=brush]").text
        browser.find_element(By.ID, "submit").click()  # nothing painted: editor.js refuses, in the page's words
        WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "error").text)
        return str(lang), str(browser.title), str(brush), str(browser.find_element(By.ID, "error").text)

    # The English browser opens a link made for a Chinese user: the page is Chinese.
    assert await asyncio.to_thread(open_and_submit_empty, zh_url) == (
        "zh-Hans",
        t("web.title_editor", ZH),
        t("web.brush", ZH),
        t("web.js_paint_first", ZH),
    )
    assert await asyncio.to_thread(open_and_submit_empty, en_url) == (
        "en",
        "impasto: Vary (Region)",
        "🖌️ Brush",
        "Paint the area to repaint first (brush, rectangle or lasso).",
    )

    # The server's refusals of a bad mask come back in the page's language too.
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        for url, locale in ((zh_url, ZH), (en_url, "en")):
            posted = await client.post("/edit", data={"t": url.split("t=", 1)[1], "mask": "not a png", "prompt": "x"})
            assert posted.status_code == 400
            assert t("web.mask_not_data", locale) in posted.text
            assert f'<html lang="{"zh-Hans" if locale == ZH else "en"}">' in posted.text
        # A good mask: the page that says where the result goes is Chinese too (the job id in <code>, escaped).
        white = io.BytesIO()
        Image.new("L", (SIZE, SIZE), 255).save(white, format="PNG")
        mask = "data:image/png;base64," + base64.b64encode(white.getvalue()).decode()
        done = await client.post("/edit", data={"t": zh_url.split("t=", 1)[1], "mask": mask, "prompt": "a lantern"})
        assert done.status_code == 200
        assert "已提交：任务 <code>" in done.text
        assert t("web.submitted_where", ZH) in done.text


async def test_a_gallery_follows_the_browsers_language(site: Site, browser: Any, browser_zh: Any) -> None:
    await site.finished(ADA, "a fox in snow", "lang-gallery")
    url = gallery_link(site.cfg, ADA)  # no language recorded: the browser's decides
    assert await asyncio.to_thread(page, browser_zh, url, "jobs") == (
        "zh-Hans",
        t("web.title_gallery", ZH),
        "a fox in snow",
    )
    zh_heading = await asyncio.to_thread(lambda: browser_zh.find_element(By.TAG_NAME, "h1").text)
    assert zh_heading == "你的图片"
    assert await asyncio.to_thread(page, browser, url, "jobs") == ("en", "impasto: your gallery", "a fox in snow")
    assert await asyncio.to_thread(lambda: browser.find_element(By.TAG_NAME, "h1").text) == "Your images"


async def test_the_desk_follows_the_browsers_language(desk_site: Site, browser: Any, browser_zh: Any) -> None:
    url = desk_link(desk_site.cfg, MOD)
    assert await asyncio.to_thread(page, browser_zh, url, "nothing") == (
        "zh-Hans",
        "impasto：审核台",
        "没有待审核的内容。",
    )
    heading = await asyncio.to_thread(lambda: browser_zh.find_element(By.CSS_SELECTOR, "#queue h2").text)
    assert heading == "待审核"
    assert await asyncio.to_thread(page, browser, url, "nothing") == (
        "en",
        "impasto: moderators' desk",
        "Nothing is waiting.",
    )
    # A link made for a Chinese moderator is Chinese in any browser.
    assert (await asyncio.to_thread(page, browser, desk_link(desk_site.cfg, MOD, lang=ZH), "nothing"))[0] == "zh-Hans"


async def test_the_stored_choice_then_the_browser_then_english(site: Site) -> None:
    heron = await site.finished(ADA, "a heron", "lang-choice")
    url = gallery_link(site.cfg, ADA)
    async with httpx.AsyncClient() as client:
        english = await client.get(url)
        assert '<html lang="en">' in english.text
        assert "Your images" in english.text
        browser_zh = await client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert '<html lang="zh-Hans">' in browser_zh.text
        assert "你的图片" in browser_zh.text

        await site.service.set_language(ADA, "中文")  # the user's /settings choice beats the browser's
        chosen = await client.get(url, headers={"Accept-Language": "en-US"})
        assert '<html lang="zh-Hans">' in chosen.text
        assert "你的图片" in chosen.text
        recorded = await client.get(gallery_link(site.cfg, ADA, lang="en"), headers={"Accept-Language": "zh-CN"})
        assert "Your images" in recorded.text  # the link's language beats both

        # A job's page: its labels, its mode and its downloads in the chosen language.
        job_page = await client.get(url.replace("/gallery?", f"/job/{heron.job_id}?") + "&from=gallery")
        assert job_page.status_code == 200
        for chinese in ("<dt>种子</dt>", "<dt>模式</dt><dd>快速</dd>", "⬇ 下载四宫格（256×256 PNG）", "🤍 加入收藏"):
            assert chinese in job_page.text
        home = await client.get(url.split("/gallery?")[0] + "/", headers={"Accept-Language": "zh-CN"})
        assert t("web.home", ZH) in home.text


async def test_refusals_in_the_readers_language(site: Site) -> None:
    expired = sign(SECRET, Pass("gallery", "discord", "100", expires=1, lang=ZH))
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        old = await client.get("/gallery", params={"t": expired})
        assert old.status_code == 403
        assert t("web.link_expired", ZH) in old.text
        assert '<html lang="zh-Hans">' in old.text
        for header, locale in (("zh-CN,zh;q=0.9", ZH), ("en-GB", "en"), ("", "en")):
            bare = await client.get("/gallery", headers={"Accept-Language": header} if header else {})
            assert bare.status_code == 400
            assert t("web.need_link", locale) in bare.text
        changed = await client.get("/gallery", params={"t": expired[:-2] + "xx"}, headers={"Accept-Language": "zh"})
        assert t("web.link_invalid", ZH) in changed.text
        assert (
            "请求超过"
            in (await client.post("/edit", content=b"x" * (4 * 1024 * 1024), headers={"Accept-Language": "zh-CN"})).text
        )


async def test_a_mini_apps_sign_in_refusals_in_the_links_language(site: Site) -> None:
    from web_helpers import TELEGRAM_TOKEN

    from impasto.bots.web.telegram_auth import sign_init_data

    tg = Requester("telegram", "42", "ada", channel_id="42")
    single = await site.upscaled(tg, "a kite", "lang-webapp")
    token = editor_link(site.cfg, tg, single.job_id, None, "7", webapp=True, lang=ZH).split("t=", 1)[1]
    another = sign_init_data({"user": '{"id": 43}', "auth_date": str(int(time.time()))}, TELEGRAM_TOKEN)
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        for init_data, key in (("garbage", "web.tg_malformed"), (another, "web.other_telegram_user")):
            posted = await client.post("/edit", data={"t": token, "init_data": init_data, "mask": "", "prompt": "x"})
            assert posted.status_code == 403
            assert t(key, ZH) in posted.text


async def test_the_desks_queue_and_words_in_chinese(desk_site: Site, browser_zh: Any) -> None:
    from test_web_desk import queue

    held, appeal = await queue(desk_site)
    url = desk_link(desk_site.cfg, MOD)

    def read() -> tuple[str, str, list[str]]:
        browser_zh.get(url)
        WebDriverWait(browser_zh, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"[data-item='{appeal}']"))
        item = browser_zh.find_element(By.CSS_SELECTOR, f"[data-item='{appeal}']")
        buttons = [b.text for b in item.find_elements(By.TAG_NAME, "button")]
        options = browser_zh.find_element(By.NAME, "category").text
        return str(item.find_element(By.CLASS_NAME, "what").text), str(options), buttons

    what, options, buttons = await asyncio.to_thread(read)
    assert what == "用户 1 的申诉：因血腥内容被拒绝。"
    assert buttons == ["批准", "驳回"]
    assert "血腥内容" in options  # the policy's categories by their Chinese names
    held_text = await asyncio.to_thread(
        lambda: browser_zh.find_element(By.CSS_SELECTOR, f"[data-item='{held}'] .what").text
    )
    assert held_text.startswith("被扣留的结果，任务 ")
