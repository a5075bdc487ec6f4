"""End to end with the real engine: the built-in tiny SD 1.5 model on the CPU, through a real worker."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from queue_helpers import Stack

from impasto.bots.service.requester import Requester
from impasto.engine.registry import load_registry
from impasto.queue import events
from impasto.queue.actions import Action
from impasto.queue.renderer import EngineRenderer
from impasto.storage.images import ImageStore

ERIN = Requester(platform="telegram", user_id="6006", display_name="erin")


@pytest.mark.slow
async def test_imagine_and_a_variation_on_the_tiny_model(stack: Stack, tmp_path: Path) -> None:
    renderer = EngineRenderer.load(
        load_registry(default="tiny-sd15"), cache_dir=tmp_path / "models", lora_dir=None, model="tiny-sd15"
    )
    [ticket] = await stack.service.imagine(ERIN, "a lighthouse --no fog --seed 7", idempotency_key="e-1")
    await stack.drain(renderer, preview_interval_s=0)
    view = await stack.service.job(ticket.job_id)
    assert view.status == "done", view.error
    assert view.gpu_seconds > 0
    assert view.charged_gpu_seconds == pytest.approx(view.gpu_seconds)
    store = ImageStore(stack.image_root)
    single = view.image(1)
    assert single is not None
    with Image.open(io.BytesIO(store.get(single.key))) as image:
        assert image.size == (single.width_px, single.height_px) == (view.params["width"], view.params["height"])
    history = await events.history(stack.pool, ticket.job_id, ns=stack.ns)
    progress = [e for e in history if isinstance(e, events.Progress)]
    assert progress[-1].step == progress[-1].total
    previews = [e.preview_png for e in progress if e.preview_png]
    assert previews
    assert previews[0].startswith(b"\x89PNG")
    done = history[-1]
    assert isinstance(done, events.Done)
    assert done.paints_noise
    assert done.seed == 7

    pressed = await stack.service.press(ERIN, ticket.job_id, Action.VARIATION, 2, idempotency_key="e-2")
    assert pressed.ticket is not None
    await stack.drain(renderer)
    child = await stack.service.job(pressed.ticket.job_id)
    assert child.status == "done", child.error
    assert (child.parent_id, child.action, child.image_index) == (ticket.job_id, "v", 2)
    assert sorted(i.index for i in child.images) == [0, 1, 2, 3, 4]
