"""The seam between the worker and the GPU: a ``Renderer`` turns ``RenderWork`` into a ``RenderResult``.

``EngineRenderer`` wraps ``impasto.engine.engine.Engine`` (diffusers, torch). ``NoopRenderer`` paints flat tiles at
a chosen pace without torch: the service benchmark and the queue tests run the whole worker with it, and an operator
can smoke-test a deployment on a host without a GPU (``impasto worker --renderer noop``).

Both are synchronous and run on the worker's single GPU thread; ``progress`` is called after every step and may
raise ``impasto.engine.errors.Cancelled`` to stop between two steps.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from PIL import Image

from impasto.engine.errors import EngineOutOfMemory
from impasto.engine.grid import compose_grid
from impasto.engine.spec import Progress, ProgressFn, RenderResult
from impasto.queue.specs import DescribeWork, RenderWork

if TYPE_CHECKING:
    from impasto.engine.engine import Engine
    from impasto.engine.registry import Registry


class Renderer(Protocol):
    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult: ...


@runtime_checkable
class Describes(Protocol):
    """A renderer that also serves /describe (both of ours do; a worker whose renderer does not fails the job)."""

    def describe(self, work: DescribeWork) -> list[str]: ...


@dataclass
class NoopRenderer:
    """Paints ``spec.batch_size`` flat tiles of ``tile_px`` in ``steps`` steps of ``step_s`` seconds each.

    ``max_batch`` imitates a device too small for the whole batch: a larger batch raises ``EngineOutOfMemory``.
    ``hang_s`` imitates a wedged device call: the first step blocks that long without reporting progress.
    """

    steps: int = 4
    step_s: float = 0.0
    tile_px: int = 32
    max_batch: int | None = None
    hang_s: float = 0.0

    def describe(self, work: DescribeWork) -> list[str]:
        """Four prompts that parse, different for each ``offset`` (🔄), without a captioner."""
        with Image.open(io.BytesIO(work.image)) as image:
            width, height = image.size
        ratio = "1:1" if width == height else ("3:2" if width > height else "2:3")
        return [f"a flat tile number {work.offset * 4 + i + 1}, noop study --ar {ratio}" for i in range(4)]

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        spec = work.spec
        if self.max_batch is not None and spec.batch_size > self.max_batch:
            raise EngineOutOfMemory(f"{spec.batch_size} images", "noop")
        started = time.monotonic()
        if self.hang_s:
            time.sleep(self.hang_s)
        for step in range(1, self.steps + 1):
            if self.step_s:
                time.sleep(self.step_s)
            progress(Progress(step=step, total=self.steps, preview=None))
        seed = spec.seed or 0
        tiles = [
            Image.new("RGB", (self.tile_px, self.tile_px), ((seed + i) * 53 % 256, 90, 160))
            for i in range(spec.batch_size)
        ]
        images = tuple(_png(t) for t in tiles)
        gpu_seconds = time.monotonic() - started
        return RenderResult(
            kind="imagine" if work.action is None else "vary",
            model=spec.model,
            images=images,
            grid=_png(compose_grid(tiles)) if len(tiles) > 1 else None,
            seed=seed,
            seeds=tuple(seed + i for i in range(spec.batch_size)),
            width=self.tile_px,
            height=self.tile_px,
            steps=self.steps,
            guidance=0.0,
            gpu_seconds=gpu_seconds,
            elapsed_s=gpu_seconds,
            is_tiny=True,
        )


class EngineRenderer:
    """The real renderer: the diffusers engine, its default model loaded once at start-up."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def load(
        cls,
        registry: Registry,
        *,
        cache_dir: Path,
        lora_dir: Path | None,
        model: str | None,
        memory_budget_bytes: int | None = None,
    ) -> EngineRenderer:
        """Build the engine and load ``model`` (the registry default when None). Call on the GPU thread.
        ``memory_budget_bytes``: resident models' budget (None: the device's memory less a margin)."""
        from impasto.engine.engine import Engine

        engine = Engine(registry, cache_dir=cache_dir, lora_dir=lora_dir, memory_budget_bytes=memory_budget_bytes)
        engine.models.get(model or registry.default)
        engine.translation.preload(registry.get(model or registry.default))  # its prompt translator, if any
        return cls(engine)

    def describe(self, work: DescribeWork) -> list[str]:
        return self.engine.describe(work.model, work.image, offset=work.offset)

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        # One GPU thread renders one job at a time, so the engine's screen is this job's for the whole render.
        self.engine.translation.screen = work.screen
        try:
            return self.engine.render(work.spec, work.action, progress)
        finally:
            self.engine.translation.screen = None


def render_with_oom_retry(renderer: Renderer, work: RenderWork, progress: ProgressFn) -> tuple[RenderResult, bool]:
    """Render; on ``EngineOutOfMemory`` retry once as two half batches (same seeds). Returns (result, retried).

    A second out-of-memory, or one on a single image, propagates: the caller fails the job and refunds.
    """
    try:
        return renderer.render(work, progress), False
    except EngineOutOfMemory:
        batch = work.spec.batch_size
        if batch <= 1:
            raise
    first_n = batch // 2
    first = renderer.render(replace(work, spec=replace(work.spec, batch_size=first_n)), progress)
    second = renderer.render(
        replace(work, spec=replace(work.spec, batch_size=batch - first_n, seed=(first.seed + first_n) % 2**32)),
        progress,
    )
    images = first.images + second.images
    decoded: list[Image.Image] = [Image.open(io.BytesIO(b)) for b in images]
    grid = _png(compose_grid(decoded)) if len(decoded) > 1 and len(decoded) <= 4 else None
    merged = replace(
        first,
        images=images,
        grid=grid,
        seeds=first.seeds + second.seeds,
        gpu_seconds=first.gpu_seconds + second.gpu_seconds,
        elapsed_s=first.elapsed_s + second.elapsed_s,
        parameters=first.parameters + second.parameters,
    )
    return merged, True


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
