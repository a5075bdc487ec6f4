"""The moderators' desk on the web, on the real core (both databases): the review queue with Approve / Reject (the
same core calls as the chat's buttons, decided once), an appeal approved into a running job, the word lists, the
audit log; a prompt full of HTML shows as text; the CSP header; another server's moderator is refused; in headless
Chromium when it is installed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web_helpers import SECRET, Recorder, Site, serving

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.web.links import Pass, sign
from impasto.engine.registry import load_registry
from impasto.queue.moderation.policy import load_policy
from impasto.storage import moderation as mod
from impasto.storage.images import ImageStore
from impasto.storage.models import APPROVED, Job, ModerationEvent
from impasto.storage.plans import parse_plans

GROUP, ELSEWHERE = "-100", "-200"
ADA = Requester("telegram", "1", "ada", guild_id=GROUP, channel_id=GROUP)
HOSTILE = '<script>alert("x")</script><b>gory</b> battlefield @everyone'


@pytest.fixture
async def desk_site(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Site]:
    store = ImageStore(tmp_path / "images")
    plans = parse_plans({"default": "member", "plans": {"member": {"fast_gpu_hours": 10, "relax": True}}})
    recorder = Recorder()
    service = JobService(sessions, store, load_registry(), plans, recorder)
    async with serving(service, recorder, policy=load_policy()) as running:
        yield running


def desk_url(site: Site, guild: str, moderator: str = "9") -> str:
    return f"{site.base_url}/desk?t=" + sign(SECRET, Pass("desk", "telegram", moderator, "mod", guild_id=guild))


def token_of(url: str) -> str:
    return url.partition("?t=")[2]


async def queue(site: Site) -> tuple[int, int]:
    """A held result and an appeal of a refused prompt full of HTML, in GROUP: (held id, appeal id)."""
    job = await site.finished(ADA, "a lighthouse", "desk-1")
    held = await site.service.hold_result(job.job_id)
    async with site.sessions() as session, session.begin():
        user = await mod.user_id_for(session, "telegram", "1")
        guild = await mod.guild_id_for(session, "telegram", GROUP)
        refusal = await mod.record_refusal(
            session,
            user_id=user,
            guild_id=guild,
            channel_id=GROUP,
            category="gore",
            rule="word",
            matched=("gory",),
            prompt=HOSTILE,
        )
        assert refusal.refusal_id is not None
        appeal = await mod.appeal(session, refusal.refusal_id, user)
        assert appeal is not None
        appeal_id = appeal.id
    return held, appeal_id


async def post(http: aiohttp.ClientSession, url: str, data: dict[str, str]) -> tuple[int, str]:
    async with http.post(url, data=data, allow_redirects=True) as response:
        return response.status, await response.text()


async def test_the_desk_decides_once_escapes_and_keeps_to_its_server(desk_site: Site) -> None:
    site = desk_site
    held, appeal = await queue(site)
    url = desk_url(site, GROUP)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            page = await response.text()
            assert response.status == 200
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert f'data-item="{held}"' in page
        assert f'data-item="{appeal}"' in page
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;gory&lt;/b&gt;" in page
        assert "/img/" in page  # the held picture, through a signed image URL

        # Another server's moderator sees nothing of GROUP's queue and cannot decide its items.
        other = desk_url(site, ELSEWHERE, moderator="8")
        async with http.get(other) as response:
            assert f'data-item="{held}"' not in await response.text()
        status, text = await post(
            http, f"{site.base_url}/desk/decide", {"t": token_of(other), "id": str(held), "verdict": "approve"}
        )
        assert status == 403
        assert "not in this server&#39;s review queue" in text  # escaped
        # A tampered link is refused.
        status, _ = await post(
            http, f"{site.base_url}/desk/decide", {"t": token_of(url) + "x", "id": str(held), "verdict": "approve"}
        )
        assert status == 403

        status, text = await post(
            http, f"{site.base_url}/desk/decide", {"t": token_of(url), "id": str(held), "verdict": "approve"}
        )
        assert status == 200
        assert "approved: job" in text
        assert f'data-item="{held}"' not in text  # answered: off the queue
        status, text = await post(
            http, f"{site.base_url}/desk/decide", {"t": token_of(url), "id": str(held), "verdict": "reject"}
        )
        assert "already approved" in text

        # An approved appeal runs the prompt as the user's job (charged as any job: queued through the core).
        status, text = await post(
            http, f"{site.base_url}/desk/decide", {"t": token_of(url), "id": str(appeal), "verdict": "approve"}
        )
        assert "appeal approved" in text
        assert "Nothing is waiting" in text

        status, text = await post(
            http, f"{site.base_url}/desk/words", {"t": token_of(url), "op": "add", "word": "<i>harbour</i>"}
        )
        assert "&lt;i&gt;harbour&lt;/i&gt;" in text
        assert "<i>harbour</i>" not in text
        assert "word+" in text  # the audit log on the page
    async with site.sessions() as session:
        moderator = await session.scalar(
            select(ModerationEvent.moderator_id).where(ModerationEvent.ref_id == held, ModerationEvent.kind == APPROVED)
        )
        assert moderator == await mod.user_id_for(session, "telegram", "9")  # audited: who
        assert await session.scalar(select(func.count()).select_from(Job).where(Job.prompt == HOSTILE)) == 1
    assert len(site.recorder.queued) == 2  # the held job's own render and the appealed prompt


async def test_the_desk_in_a_browser(desk_site: Site, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    site = desk_site
    held, _ = await queue(site)
    url = desk_url(site, GROUP)

    def approve_held() -> tuple[str, str]:
        browser.get(url)
        prompt = browser.find_element(By.CSS_SELECTOR, '[data-kind="appeal"] .prompt').text
        item = browser.find_element(By.CSS_SELECTOR, f'[data-item="{held}"]')
        item.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "said"))
        return prompt, browser.find_element(By.ID, "said").text

    prompt, said = await asyncio.to_thread(approve_held)
    assert prompt == HOSTILE  # shown as text, not run as markup
    assert said.startswith("approved: job")
    async with site.sessions() as session:
        assert await session.scalar(select(func.count()).where(ModerationEvent.kind == APPROVED)) == 1
