"""``WorkerState``: what one worker process holds for its whole life, under one key of arq's ``ctx`` (STYLE 6)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from impasto.queue.moderation.policy import Policy
from impasto.queue.renderer import Renderer
from impasto.queue.screening import ImageCheck
from impasto.queue.settings import WorkerConfig
from impasto.storage.images import ImageStore

STATE_KEY = "impasto"


@dataclass
class WorkerState:
    config: WorkerConfig
    renderer: Renderer
    gpu: ThreadPoolExecutor  # one thread: it owns the device; every render runs on it, off the event loop
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    images: ImageStore
    render: asyncio.Future[Any] | None = None  # the latest render handed to the GPU thread
    gpu_stuck: bool = False  # the GPU thread ignored a stop: this process must exit (functions.GpuStuck)
    sweeper: asyncio.Task[None] | None = None  # the background sweep (queue.sweep), cancelled at shutdown
    image_check: ImageCheck | None = None  # IMPASTO_NSFW_MODEL on inputs and outputs; None: no classifier
    policy: Policy | None = None  # the prompt policy, for translated prompts; None: translations are not checked

    @staticmethod
    def of(ctx: dict[str, Any]) -> WorkerState:
        state = ctx[STATE_KEY]
        if not isinstance(state, WorkerState):  # pragma: no cover - on_startup always sets it
            raise TypeError("the arq worker was started without impasto's on_startup")
        return state
