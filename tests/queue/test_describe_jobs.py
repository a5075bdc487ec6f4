"""A /describe job's life through a real worker: admitted by the service, run by the captioner branch (the no-op
renderer's stand-in captioner here; the engine's tiny CLIP in the Discord and Telegram tests), its prompts in SQL and
in its one Done event, charged what it measured; a worker without a captioner fails it and refunds."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image
from queue_helpers import Stack

from impasto.bots.language.parser import parse_imagine
from impasto.bots.service.requester import Requester
from impasto.engine.spec import ProgressFn, RenderResult
from impasto.queue import events
from impasto.queue.actions import Action
from impasto.queue.renderer import NoopRenderer
from impasto.queue.specs import RenderWork

ALICE = Requester(platform="discord", user_id="1001", display_name="alice", guild_id="g1", channel_id="c1")


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "olive").save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class PainterOnly:
    """A renderer that paints and has no captioner (an operator's custom one, say)."""

    inner: NoopRenderer

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        return self.inner.render(work, progress)


async def test_a_describe_job_ends_with_four_prompts_in_sql_and_its_event(stack: Stack) -> None:
    key = stack.service.images.put(png(60, 40))
    ticket = await stack.service.describe(ALICE, idempotency_key="d-1", image_key=key, display="wide.png")
    await stack.drain()
    view = await stack.service.job(ticket.job_id)
    assert view.status == "done"
    assert view.images == ()
    assert len(view.described) == 4
    assert len(set(view.described)) == 4
    for prompt in view.described:
        (job,) = parse_imagine(prompt, registry=stack.service.registry)
        assert job.aspect_ratio == "3:2"
    assert view.charged_gpu_seconds == view.gpu_seconds  # fast: what it measured, once
    history = await events.history(stack.pool, ticket.job_id, ns=stack.ns)
    assert [e.kind for e in history].count("done") == 1
    done = history[-1]
    assert isinstance(done, events.Done)
    assert done.prompts == list(view.described)
    assert done.image_keys == []

    # 🔄 after it: offset 1, four other prompts.
    again = await stack.service.press(ALICE, ticket.job_id, Action.DESCRIBE_AGAIN, None, idempotency_key="d-2")
    await stack.drain()
    other = await stack.service.job(again.view.job_id)
    assert other.status == "done"
    assert set(other.described).isdisjoint(view.described)


async def test_a_worker_without_a_captioner_fails_the_job_and_refunds(stack: Stack) -> None:
    key = stack.service.images.put(png(40, 40))
    ticket = await stack.service.describe(ALICE, idempotency_key="d-3", image_key=key)
    await stack.drain(renderer=PainterOnly(NoopRenderer()))
    view = await stack.service.job(ticket.job_id)
    assert view.status == "failed"
    assert view.error == "this worker cannot describe images; nothing was charged"
    assert view.charged_gpu_seconds == 0
    assert view.described == ()
