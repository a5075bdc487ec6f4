"""The whole Telegram front door on real parts: PTB polling the fake Bot API, the real JobService on a scratch
database, the real queue (arq on Redis db 15) drained by a real worker with the no-op renderer, and the delivery
core with ``TelegramSurface`` consuming the real event stream."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from arq.connections import ArqRedis
from fake_botapi import FakeBotApi
from redis.asyncio import Redis
from tg_harness import TEST_POSTGRES_URL, TEST_REDIS_URL, start_polling, stop_polling

from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.fetch import FetchError
from impasto.bots.service.jobs import JobService
from impasto.bots.telegram.app import TgApp
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.handlers import install
from impasto.bots.telegram.surface import TelegramSurface
from impasto.bots.telegram.uploads import store_fetcher
from impasto.bots.web.links import WebLinkSettings
from impasto.engine.registry import load_registry
from impasto.queue import events
from impasto.queue.client import open_pool, service_enqueue
from impasto.queue.keys import Namespace
from impasto.queue.moderation.policy import Policy
from impasto.queue.renderer import NoopRenderer, Renderer
from impasto.queue.screening import Classifier
from impasto.queue.settings import WorkerConfig
from impasto.queue.worker import WorkerSetup, build_worker
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.plans import load_plans
from impasto.storage.testing import Backend, migrated_engine, scratch_database


@dataclass
class TelegramStack:
    api: FakeBotApi
    service: JobService
    images: ImageStore
    redis: Redis
    pool: ArqRedis
    db_url: str
    group: str
    ns: Namespace
    application: TgApp | None = None
    delivery: Delivery | None = None
    deliverer_task: asyncio.Task[None] | None = None
    web: WebLinkSettings | None = None  # the web front door's link settings: Vary (Region) offered and opened
    moderation: Policy | None = None  # the prompt policy: /mod for group administrators
    # The worker's image classifier (``engine.nsfw``; None: none) and its threshold: 0 flags every picture.
    classifier_factory: Callable[[], Classifier | None] | None = None
    nsfw_threshold: float = 0.5

    def new_delivery(self, application: TgApp, *, wait_inline_s: float = 5.0) -> Delivery:
        """A delivery core as a bot process runs it (one per process; they share the consumer group)."""
        surface = TelegramSurface(
            application.bot, self.images, mask_editor=self.web is not None, wait_inline_s=wait_inline_s
        )
        return Delivery(
            self.service, self.redis, surface, ns=self.ns, group=self.group, edit_interval_s=0.001, block_ms=200
        )

    def deps(self, application: TgApp) -> Deps:
        self.delivery = self.new_delivery(application)
        return Deps(
            service=self.service,
            images=self.images,
            delivery=self.delivery,
            redis=self.redis,
            ns=self.ns,
            models=["tiny-sd15", "tiny-sdxl"],
            album_wait_s=0.3,
            web=self.web,
            moderation=self.moderation,
        )

    async def start_bot(self) -> None:
        """A fresh Application and delivery core (a "restart" is stop_bot + start_bot: nothing survives in memory)."""
        self.application = await start_polling(self.api, lambda app: install(app, self.deps(app)))
        assert self.delivery is not None
        self.delivery.redeliver_every_s = 0.1
        self.deliverer_task = asyncio.create_task(self.delivery.run(consumer="bot-1"))

    async def stop_bot(self) -> None:
        if self.deliverer_task is not None:
            self.deliverer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.deliverer_task
        if self.application is not None:
            await stop_polling(self.application)
        self.application, self.deliverer_task = None, None

    async def drain(self, steps: int = 3, renderer: Renderer | None = None) -> None:
        """One worker in burst mode with ``renderer`` (default: the no-op one), until the queue is empty."""
        renderer = renderer or NoopRenderer(steps=steps, step_s=0.01)
        setup = WorkerSetup(
            config=WorkerConfig.model_validate(
                {"name": "tg-gpu0", "poll_delay_s": 0.05, "lease_s": 3.0, "namespace": self.ns.prefix}
            ),
            database_url=self.db_url,
            image_root=self.images.root,
            renderer_factory=lambda: renderer,
            classifier_factory=self.classifier_factory,
            nsfw_threshold=self.nsfw_threshold,
        )
        worker = build_worker(setup, redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
        try:
            await worker.main()
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()


async def refuse_network(url: str) -> bytes:
    raise FetchError("cannot be downloaded in tests (no network)")


@asynccontextmanager
async def telegram_stack(tmp_path: Path, backend: Backend = "sqlite") -> AsyncIterator[TelegramStack]:
    async with (
        FakeBotApi() as api,
        scratch_database(backend, postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp_path) as url,
        migrated_engine(url) as engine,
    ):
        # A namespace of our own: no other test session's worker on db 15 takes these jobs, and ours takes no other.
        ns = Namespace(f"impasto-test-{secrets.token_hex(4)}:")
        pool = await open_pool(TEST_REDIS_URL, ns=ns)
        redis = Redis.from_url(TEST_REDIS_URL)
        group = f"telegram-test-{secrets.token_hex(4)}"
        await events.ensure_group(redis, group, ns=ns)
        images = ImageStore(tmp_path / "images")
        service = JobService(
            session_factory(engine),
            images,
            load_registry(default="tiny-sd15"),
            load_plans(),
            service_enqueue(pool, ns=ns),
            fetch_image=store_fetcher(images, refuse_network),
        )
        stack = TelegramStack(api, service, images, redis, pool, url, group, ns)
        try:
            await stack.start_bot()
            yield stack
        finally:
            await stack.stop_bot()
            async for key in redis.scan_iter(match=ns.prefix + "*"):  # leave db 15 as we found it (stream included)
                await redis.delete(key)
            await redis.aclose()
            await pool.aclose()
