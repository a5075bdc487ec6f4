"""The Discord front door on real parts: the real JobService on a scratch database, the real queue (arq on Redis db 15,
in a namespace of its own) drained by a real worker (no-op renderer by default), the real event stream, and the real
discord.py client on the fake Discord."""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker

from impasto.bots.discord.app import BotOptions
from impasto.bots.service.fetch import http_fetcher
from impasto.bots.service.jobs import JobService
from impasto.engine.registry import load_registry
from impasto.queue import events
from impasto.queue.client import open_pool, service_enqueue
from impasto.queue.keys import Namespace
from impasto.queue.renderer import NoopRenderer
from impasto.queue.screening import Classifier
from impasto.queue.settings import WorkerConfig
from impasto.queue.worker import RendererFactory, WorkerSetup, build_worker
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.plans import load_plans
from impasto.storage.testing import Backend, migrated_engine, scratch_database

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class ServiceStack:
    service: JobService
    images: ImageStore
    pool: ArqRedis
    db_url: str
    ns: Namespace
    group: str  # this test's Discord consumer group

    renderer_factory: RendererFactory | None = None  # None: the no-op renderer
    # The worker's image classifier (``engine.nsfw``; None: none) and its threshold: 0 flags every picture.
    classifier_factory: Callable[[], Classifier | None] | None = None
    nsfw_threshold: float = 0.5

    def bot_options(self, **options: Any) -> BotOptions:
        """A bot process on this stack: its own consumer group, quick to take over what a stopped process left
        pending (production waits a minute), no spacing between progress edits."""
        options.setdefault("events_group", self.group)
        options.setdefault("reclaim_idle_ms", 200)
        options.setdefault("events_block_ms", 200)
        options.setdefault("min_edit_interval_s", 0.0)
        options.setdefault("guild_ready_timeout_s", 0.05)
        return BotOptions(**options)

    def worker(self, *, burst: bool, steps: int = 3) -> Worker:
        factory = self.renderer_factory or (lambda: NoopRenderer(steps=steps, step_s=0.01))
        setup = WorkerSetup(
            config=WorkerConfig.model_validate(
                {"name": "discord-gpu0", "poll_delay_s": 0.05, "lease_s": 30.0, "namespace": self.ns.prefix}
            ),
            database_url=self.db_url,
            image_root=self.images.root,
            renderer_factory=factory,
            classifier_factory=self.classifier_factory,
            nsfw_threshold=self.nsfw_threshold,
        )
        return build_worker(setup, redis_url=TEST_REDIS_URL, burst=burst, handle_signals=False)

    async def drain(self, steps: int = 3) -> None:
        """One worker in burst mode until the queue is empty."""
        worker = self.worker(burst=True, steps=steps)
        try:
            await worker.main()
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()


@asynccontextmanager
async def service_stack(
    tmp_path: Path, backend: Backend = "sqlite", *, default_model: str = "tiny-sd15"
) -> AsyncIterator[ServiceStack]:
    async with (
        scratch_database(backend, postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp_path) as url,
        migrated_engine(url) as engine,
    ):
        # A namespace and a consumer group of our own: db 15 is shared with other test sessions.
        ns = Namespace(f"impasto-test-{secrets.token_hex(4)}:")
        group = f"discord-test-{secrets.token_hex(4)}"
        pool = await open_pool(TEST_REDIS_URL, ns=ns)
        await events.ensure_group(pool, group, ns=ns)
        images = ImageStore(tmp_path / "images")
        service = JobService(
            session_factory(engine),
            images,
            load_registry(default=default_model),
            load_plans(),
            service_enqueue(pool, ns=ns),
            fetch_image=http_fetcher(max_bytes=10 * 1024 * 1024, allow_hosts="127.0.0.1"),  # the fake CDN is local
        )
        try:
            yield ServiceStack(service, images, pool, url, ns, group)
        finally:
            async for key in pool.scan_iter(match=ns.prefix + "*"):  # leave db 15 as we found it (stream included)
                await pool.delete(key)
            await pool.aclose()
