"""``--sref`` through the queue: the link is fetched into the store (safe_fetch, a local HTTP server), travels with
the job, and a real worker paints it through the tiny model's IP-Adapter at the ``--sw`` scale, on the style layer."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from queue_helpers import Stack

from impasto.bots.language.job import Job
from impasto.bots.moderation.check import job_texts
from impasto.bots.service.fetch import http_fetcher
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.engine.images import png_text
from impasto.engine.provenance import IMPASTO_KEY
from impasto.engine.references import style_scale
from impasto.engine.registry import load_registry
from impasto.engine.spec import RenderSpec
from impasto.queue.actions import Action
from impasto.queue.renderer import EngineRenderer
from impasto.queue.screening import user_inputs
from impasto.queue.specs import RenderWork
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import ClaimedJob
from impasto.storage.plans import load_plans

FAY = Requester(platform="discord", user_id="7007", display_name="fay")
STYLE_LAYER = "up_blocks.0.attentions.1.transformer_blocks.0.attn2"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (30, 30, 220)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
async def image_server(serve_http: Callable[[web.Application], Awaitable[str]]) -> str:
    body = _png()

    async def style(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/style.png", style)
    return await serve_http(app)


@pytest.mark.slow
async def test_sref_is_fetched_queued_and_painted_at_its_weight(
    stack: Stack, image_server: str, tmp_path: Path
) -> None:
    registry = load_registry(default="tiny-sd15")
    service = JobService(
        stack.sessions,
        ImageStore(stack.image_root),
        registry,
        load_plans(),
        stack.service.enqueue,
        fetch_image=http_fetcher(max_bytes=1 << 20, allow_hosts="127.0.0.1"),  # the server is local
    )
    stack = replace(stack, service=service)
    renderer = EngineRenderer.load(registry, cache_dir=tmp_path / "models", lora_dir=None, model="tiny-sd15")
    attention = renderer.engine.models.get("tiny-sd15").pipe.unet.get_submodule(STYLE_LAYER)
    seen: list[list[float]] = []  # the adapter's scales (content, style) each time the style layer runs with it

    def record(module: object, _: object) -> None:
        scale = getattr(getattr(module, "processor", None), "scale", None)
        if scale is not None:
            seen.append(list(scale))

    hook = attention.register_forward_pre_hook(record)

    url = f"{image_server}/style.png"
    [ticket] = await service.imagine(FAY, f"a lighthouse --sref {url} --sw 250 --seed 5", idempotency_key="s-1")
    queued = await service.job(ticket.job_id)
    key = ImageStore(stack.image_root).put(_png())
    assert list(queued.params["style_references"]) == [key]  # the worker reads the store, never the link
    assert list(queued.params["style_reference_urls"]) == [url]
    await stack.drain(renderer, preview_interval_s=0)
    view = await service.job(ticket.job_id)
    assert view.status == "done", view.error
    assert seen, "the style layer's adapter processor never ran"
    assert seen[0] == [0.0, pytest.approx(style_scale(250))]  # content slot off, style slot at --sw
    single = view.image(1)
    assert single is not None
    meta = json.loads(png_text(ImageStore(stack.image_root).get(single.key))[IMPASTO_KEY])
    assert (meta["style_references"], meta["style_weight"]) == (1, 250)

    # A button's job keeps the style reference (Midjourney's variations keep --sref).
    seen.clear()
    pressed = await service.press(FAY, ticket.job_id, Action.VARIATION, 1, idempotency_key="s-2")
    assert pressed.ticket is not None
    await stack.drain(renderer)
    child = await service.job(pressed.ticket.job_id)
    assert child.status == "done", child.error
    assert seen
    assert seen[0][1] == pytest.approx(style_scale(250))
    hook.remove()


def test_style_references_are_screened_as_the_users_pictures() -> None:
    """The worker's image check reads what the user brought: the --sref pictures too (queue/screening.py)."""
    style, prompt = _png(), b"prompt-bytes"
    claimed = ClaimedJob(
        "j1", "imagine", None, {}, "a cat", "a cat", 1, "tiny-sd15", "fast", 1, "discord:1", None, None
    )
    spec = RenderSpec(model="tiny-sd15", prompts=(("a cat", 1.0),), image_prompts=(prompt,), style_references=(style,))
    assert user_inputs(claimed, RenderWork("j1", spec, None)) == [prompt, style]
    assert job_texts(Job((), style_references=("https://e.com/nsfw.png",))) == ["https://e.com/nsfw.png"]
