"""The worker's moderation through a real worker (PostgreSQL, Redis): the tiny image classifier on inputs and outputs
(its scores mean nothing; the threshold decides), and the prompt policy on a translated prompt (the real engine with
the tiny SD 1.5 model and the tiny translator, on the CPU)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image
from queue_helpers import Stack
from sqlalchemy import select

from impasto.bots.service.requester import Requester
from impasto.engine.nsfw import load_classifier
from impasto.engine.registry import load_registry
from impasto.queue import events
from impasto.queue.moderation.policy import load_policy
from impasto.queue.renderer import EngineRenderer
from impasto.storage import moderation as mod
from impasto.storage.models import FLAGGED, REFUSED, Job, LedgerEntry, ModerationEvent
from impasto.storage.models import Image as ImageRow

MEI = Requester(platform="discord", user_id="8008", display_name="mei", guild_id="5150", channel_id="61")
FLAG_ALL, FLAG_NONE = 0.0, 1.0  # an image is flagged when its score ≥ the threshold; tiny scores are never 1


def png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, format="PNG")
    return out.getvalue()


def classify(stack: Stack, cache: Path, threshold: float) -> None:
    stack.classifier_factory = lambda: load_classifier("tiny", cache)
    stack.nsfw_threshold = threshold


async def job_row(stack: Stack, job_id: str) -> Job:
    async with stack.sessions() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


async def ledger_kinds(stack: Stack, job_id: str) -> set[str]:
    async with stack.sessions() as session:
        return set(await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id)))


async def audit(stack: Stack, job_id: str) -> list[ModerationEvent]:
    async with stack.sessions() as session:
        return list(await session.scalars(select(ModerationEvent).where(ModerationEvent.job_id == job_id)))


async def final_event(stack: Stack, job_id: str) -> events.Event:
    [event] = [e for e in await events.history(stack.pool, job_id, ns=stack.ns) if e.final]
    return event


async def blend(stack: Stack, key: str) -> str:
    keys = [stack.service.images.put(png("red")), stack.service.images.put(png("blue"))]
    urls = ["https://cdn.example/a.png", "https://cdn.example/b.png"]
    [ticket] = await stack.service.blend(MEI, urls, idempotency_key=key, image_keys=keys)
    return ticket.job_id


async def test_a_flagged_input_image_ends_the_job_refunded_and_audited(stack: Stack, tmp_path: Path) -> None:
    classify(stack, tmp_path / "models", FLAG_ALL)
    job_id = await blend(stack, "in-1")
    await stack.drain()
    job = await job_row(stack, job_id)
    assert job.status == "failed"
    assert job.error == (
        "this job was refused: image 1 you gave was flagged as sexual or explicit content; nothing was charged"
    )
    assert await ledger_kinds(stack, job_id) == {"reserve", "release"}  # refunded, never settled
    assert job.charged_gpu_seconds == 0
    [row] = await audit(stack, job_id)
    assert (row.kind, row.category, row.rule) == (FLAGGED, "sexual or explicit content", "image")
    assert row.note.startswith("input image 1: ")
    event = await final_event(stack, job_id)
    assert isinstance(event, events.Failed)
    assert event.refunded

    # The same blend under a threshold no picture reaches is painted.
    classify(stack, tmp_path / "models", FLAG_NONE)
    passed = await blend(stack, "in-2")
    await stack.drain()
    assert (await job_row(stack, passed)).status == "done"


@pytest.mark.parametrize(("threshold", "verdict"), [(FLAG_ALL, "flagged"), (FLAG_NONE, "passed")])
async def test_every_output_is_classified_and_its_verdict_stored(
    stack: Stack, tmp_path: Path, threshold: float, verdict: str
) -> None:
    classify(stack, tmp_path / "models", threshold)
    [ticket] = await stack.service.imagine(MEI, "a lighthouse", idempotency_key="out-1")
    await stack.drain()
    async with stack.sessions() as session:
        rows = list(await session.scalars(select(ImageRow).where(ImageRow.job_id == ticket.job_id)))
    assert sorted(r.index for r in rows) == [0, 1, 2, 3, 4]
    assert {r.moderation for r in rows} == {verdict}
    assert all(r.nsfw_score is not None and 0 <= r.nsfw_score <= 1 for r in rows)
    event = await final_event(stack, ticket.job_id)
    assert isinstance(event, events.Done)
    assert event.flagged == ([1, 2, 3, 4] if verdict == "flagged" else [])
    # A flagged result is still done and charged (delivery decides what the user sees); it is audited.
    job = await job_row(stack, ticket.job_id)
    assert job.status == "done"
    assert [r.kind for r in await audit(stack, ticket.job_id)] == ([FLAGGED] if verdict == "flagged" else [])
    view = await stack.service.job(ticket.job_id)
    assert view.flagged is (verdict == "flagged")


async def test_without_a_classifier_nothing_is_scored(stack: Stack) -> None:
    [ticket] = await stack.service.imagine(MEI, "a lighthouse", idempotency_key="none-1")
    await stack.drain()
    async with stack.sessions() as session:
        rows = list(await session.scalars(select(ImageRow).where(ImageRow.job_id == ticket.job_id)))
    assert {(r.moderation, r.nsfw_score) for r in rows} == {(None, None)}


@pytest.mark.slow
async def test_a_translation_the_servers_policy_refuses_ends_the_job(stack: Stack, tmp_path: Path) -> None:
    """龙 passes admission (no listed word), but the tiny translator reads it as "dragon", a word this server added:
    the worker refuses it before painting, with the category line, refunded and audited."""
    stack.policy = load_policy(None)
    async with stack.sessions() as session, session.begin():
        guild = await mod.guild_id_for(session, "discord", "5150")
        await mod.add_word(session, guild, "hate", "dragon")
    renderer = EngineRenderer.load(
        load_registry(default="tiny-sd15"), cache_dir=tmp_path / "models", lora_dir=None, model="tiny-sd15"
    )
    [ticket] = await stack.service.imagine(MEI, "龙 --seed 3", idempotency_key="tr-1")
    [other] = await stack.service.imagine(MEI, "猫 --seed 3", idempotency_key="tr-2")
    await stack.drain(renderer, preview_interval_s=0)

    job = await job_row(stack, ticket.job_id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.startswith("this prompt was refused: hate")
    assert "(in its English translation); nothing was charged" in job.error
    assert "dragon" not in job.error  # the user never sees the word list
    assert await ledger_kinds(stack, ticket.job_id) == {"reserve", "release"}
    [row] = await audit(stack, ticket.job_id)
    assert (row.kind, row.category, row.rule, row.matched, row.note) == (
        REFUSED,
        "hate",
        "server word",
        "dragon",
        "translated prompt",
    )
    # Another translation in the same server is painted; the policy saw only what the model would read.
    assert (await job_row(stack, other.job_id)).status == "done"


class BrokenClassifier:
    def scores(self, images: Sequence[Image.Image]) -> list[float]:
        raise RuntimeError("the classifier's device went away")


async def test_a_result_the_check_cannot_run_on_is_never_delivered(stack: Stack) -> None:
    stack.classifier_factory = BrokenClassifier
    [ticket] = await stack.service.imagine(MEI, "a lighthouse", idempotency_key="broken-1")
    await stack.drain()
    job = await job_row(stack, ticket.job_id)
    assert (job.status, job.error) == ("failed", "the image check could not run on the result; nothing was charged")
    assert await ledger_kinds(stack, ticket.job_id) == {"reserve", "release"}
