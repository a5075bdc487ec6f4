"""Helpers for the web front door's tests: a site on the real core (JobService, image store, Redis keys of its
own) and jobs rendered as a worker would.

Selenium's calls block, so tests make them through ``asyncio.to_thread``: the event loop keeps serving the pages
the browser asks for meanwhile.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from PIL import Image, ImageDraw
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView, QueuedRender
from impasto.bots.web.app import WebDeps, build_app
from impasto.bots.web.guards import Guards, ReplyTarget, ReplyTargets
from impasto.queue.actions import Action
from impasto.queue.moderation.policy import Policy
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import NewImage, claim_job, complete_job

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "web-test-secret"
TELEGRAM_TOKEN = "123456:web-test-token"
SIZE = 256  # the test images' side: shown at 1:1 in the browser window below


@dataclass(frozen=True)
class Cfg:
    web_url: str | None
    web_secret_value: str | None = SECRET


class Recorder:
    def __init__(self) -> None:
        self.queued: list[QueuedRender] = []

    async def __call__(self, render: QueuedRender) -> None:
        self.queued.append(render)


@dataclass
class Site:
    service: JobService
    store: ImageStore
    sessions: async_sessionmaker[AsyncSession]
    recorder: Recorder
    redis: Redis
    prefix: str
    base_url: str

    @property
    def cfg(self) -> Cfg:
        return Cfg(self.base_url)

    async def finished(self, who: Requester, prompt: str, key: str, *, colour: int = 90) -> JobView:
        """An /imagine job, rendered as a worker would (a 2×2 grid and four singles of real PNGs)."""
        (ticket,) = await self.service.imagine(who, prompt, idempotency_key=key)
        async with self.sessions() as session, session.begin():
            assert await claim_job(session, ticket.job_id, worker="test") is not None
        images = [NewImage(i, self.store.put(png(SIZE, colour + i)), SIZE, SIZE) for i in range(5)]
        async with self.sessions() as session, session.begin():
            assert await complete_job(session, ticket.job_id, images=images, gpu_seconds=1.0)
        return await self.service.job(ticket.job_id)

    async def service_reply_target(self, job_id: str) -> ReplyTarget:
        target = await ReplyTargets(self.redis, prefix=self.prefix).get(job_id)
        assert target is not None
        return target

    async def upscaled(self, who: Requester, prompt: str, key: str) -> JobView:
        """A single image (U1 of a finished grid): where Vary (Region) is offered."""
        grid = await self.finished(who, prompt, key)
        result = await self.service.press(who, grid.job_id, Action.UPSCALE, 1, idempotency_key=key + "-u1")
        return result.view


def png(size: int, shade: int) -> bytes:
    """A small picture (a sky gradient, a sun, a sea) so the screenshots show something like a result."""
    sky = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((size, size)).point(lambda v: (v + shade) % 256),
            Image.new("L", (size, size), 90),
            Image.linear_gradient("L").resize((size, size)).point(lambda v: 255 - v // 2),
        ),
    )
    draw = ImageDraw.Draw(sky)
    draw.ellipse((size // 2, size // 6, size // 2 + size // 4, size // 6 + size // 4), fill=(255, 210, 90))
    draw.rectangle((0, size * 2 // 3, size, size), fill=(20, 60 + shade % 100, 120))
    out = io.BytesIO()
    sky.save(out, format="PNG")
    return out.getvalue()


class Server(uvicorn.Server):
    """uvicorn with an event set once it listens (it exposes only a flag)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@asynccontextmanager
async def serving(
    service: JobService, recorder: Recorder | None = None, *, policy: Policy | None = None
) -> AsyncIterator[Site]:
    """The web app on ``service`` under uvicorn on a free port of 127.0.0.1, in this event loop, with Redis keys
    of its own (removed afterwards)."""
    redis = Redis.from_url(TEST_REDIS_URL)
    prefix = f"impasto:test-web-{uuid.uuid4().hex[:10]}:"
    deps = WebDeps(
        service,
        Guards(redis, prefix=prefix),
        ReplyTargets(redis, prefix=prefix),
        SECRET,
        telegram_token=TELEGRAM_TOKEN,
        policy=policy,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(uvicorn.Config(build_app(deps), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait_for(server.listening.wait(), 60)
    try:
        yield Site(
            service, service.images, service.sessions, recorder or Recorder(), redis, prefix, f"http://127.0.0.1:{port}"
        )
    finally:
        server.should_exit = True
        await task
        sock.close()
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def wait_until_steady(browser: Any, timeout_s: float = 60) -> None:
    """The editor's image decoded and its fonts loaded: nothing moves the canvas once drawing starts."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout_s).until(
        lambda d: d.execute_script(
            "const i = document.getElementById('source');"
            "return i.complete && i.naturalWidth > 0 && document.fonts.status === 'loaded'"
        )
    )
