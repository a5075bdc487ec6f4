"""A Chinese prompt through a real worker and the real engine (tiny SD 1.5, tiny translator, CPU): the job row keeps
the prompt as written and records what the model read, with the translation time."""

from __future__ import annotations

from pathlib import Path

import pytest
from queue_helpers import Stack

from impasto.bots.service.requester import Requester
from impasto.engine.registry import load_registry
from impasto.queue import events
from impasto.queue.renderer import EngineRenderer
from impasto.storage.models import Job

LIN = Requester(platform="telegram", user_id="7007", display_name="lin")


@pytest.mark.slow
async def test_a_chinese_prompt_is_painted_as_english_and_the_row_says_so(stack: Stack, tmp_path: Path) -> None:
    renderer = EngineRenderer.load(
        load_registry(default="tiny-sd15"), cache_dir=tmp_path / "models", lora_dir=None, model="tiny-sd15"
    )
    since = await events.last_id(stack.pool, ns=stack.ns)
    [ticket] = await stack.service.imagine(LIN, "一只在月光下睡觉的橘猫 --no 人物 --seed 7", idempotency_key="t-1")
    await stack.drain(renderer, preview_interval_s=0)
    # The completion event carries what the model read, for the captions ("read as: …") on both platforms.
    async for event in events.listen(stack.pool, job_ids=[ticket.job_id], since=since, ns=stack.ns):
        if event.final:
            assert isinstance(event, events.Done)
            assert event.read_as == "a ginger cat sleeping in the moonlight --no people"
            break
    async with stack.sessions() as session:
        job = await session.get(Job, ticket.job_id)
    assert job is not None
    assert job.status == "done", job.error
    assert job.prompt.startswith("一只在月光下睡觉的橘猫")
    assert job.read_as == "a ginger cat sleeping in the moonlight --no people"
    assert job.translate_seconds > 0
    assert job.gpu_seconds > 0

    # An English prompt records nothing.
    [plain] = await stack.service.imagine(LIN, "a lighthouse --seed 7", idempotency_key="t-2")
    await stack.drain(renderer, preview_interval_s=0)
    async with stack.sessions() as session:
        row = await session.get(Job, plain.job_id)
    assert row is not None
    assert (row.status, row.read_as, row.translate_seconds) == ("done", None, 0.0)
