"""/describe in the job service: admission (the model's captioner, the quota), which picture a job's /describe reads,
who may describe a job, and the buttons under the four prompts (one request key: a double press makes one set)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_job_service import Recorder, make_plans, render

from impasto.bots.service.errors import CreditsExhausted, InvalidRequest, JobNotReady, NotYourJob
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.engine.registry import TINY_DESCRIBER, Registry, load_registry
from impasto.queue.actions import Action
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import NewImage, claim_job, complete_job
from impasto.storage.models import Job, LedgerEntry
from impasto.storage.readings import record_described

ADA = Requester("discord", "100", "ada", guild_id="900", channel_id="c1")
BOB = Requester("discord", "200", "bob", guild_id="900", channel_id="c1")
PROMPTS = [f"a lighthouse number {n}, oil painting --ar 3:2" for n in range(1, 5)]


def png(width: int = 24, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def with_captioner() -> Registry:
    registry = load_registry()
    return replace(
        registry, models={name: replace(entry, describer=TINY_DESCRIBER) for name, entry in registry.models.items()}
    )


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


async def count(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        jobs = await session.scalar(select(func.count()).select_from(Job))
        charges = await session.scalar(select(func.count()).select_from(LedgerEntry))
    return int(jobs or 0), int(charges or 0)


async def finish(sessions: async_sessionmaker[AsyncSession], job_id: str) -> None:
    """What the worker does with a describe job: complete it, store its prompts."""
    async with sessions() as session, session.begin():
        assert await claim_job(session, job_id, worker="test") is not None
        assert await complete_job(session, job_id, images=[], gpu_seconds=0.5)
        await record_described(session, job_id, PROMPTS)


async def test_a_model_without_a_captioner_is_refused_before_anything_is_charged(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    service = JobService(sessions, store, load_registry(), make_plans(), Recorder())  # the shipped file: none
    with pytest.raises(InvalidRequest, match="model v6 has no captioner for /describe"):
        await service.describe(ADA, idempotency_key="k", image_key=store.put(png()))
    assert await count(sessions) == (0, 0)


async def test_describe_is_held_and_charged_like_a_job_and_refused_without_credit(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    recorder = Recorder()
    service = JobService(sessions, store, with_captioner(), make_plans(), recorder)
    ticket = await service.describe(ADA, idempotency_key="k1", image_key=store.put(png()), display="cat.png")
    view = await service.job(ticket.job_id)
    assert (view.action, view.display, view.status, view.params["offset"]) == ("d", "cat.png", "queued", 0)
    assert ticket.reserved_gpu_seconds > 0
    assert [r.job_id for r in recorder.queued] == [ticket.job_id]  # on the fair queue, in the user's lane
    again = await service.describe(ADA, idempotency_key="k1", image_key=store.put(png()))
    assert again.job_id == ticket.job_id  # the same request: one job
    broke = JobService(sessions, store, with_captioner(), make_plans(fast_gpu_seconds=0.5, relax=False), Recorder())
    before = await count(sessions)
    with pytest.raises(CreditsExhausted):
        await broke.describe(BOB, idempotency_key="k2", image_key=store.put(png()))
    assert await count(sessions) == before


async def test_a_jobs_picture_is_described_and_someone_elses_stealth_job_is_not(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    service = JobService(sessions, store, with_captioner(), make_plans(), Recorder())
    [grid] = await service.imagine(ADA, "a lighthouse", idempotency_key="g")
    with pytest.raises(JobNotReady):
        await service.describe(ADA, idempotency_key="d0", job_id=grid.job_id)
    images = await render(sessions, store, grid.job_id)
    ticket = await service.describe(BOB, idempotency_key="d1", job_id=grid.job_id, index=3)
    view = await service.job(ticket.job_id)
    assert view.parent_id == grid.job_id
    assert view.params["image"] == images[3].key  # image 3 of the grid
    assert view.display == f"{(await service.job(grid.job_id)).display} (image 3)"
    whole = await service.job((await service.describe(ADA, idempotency_key="d2", job_id=grid.job_id)).job_id)
    assert whole.params["image"] == images[0].key  # no index: the grid itself
    assert whole.display.endswith(" (the grid)")
    [stealth] = await service.imagine(ADA, "a secret --stealth", idempotency_key="s")
    await render(sessions, store, stealth.job_id)
    before = await count(sessions)
    with pytest.raises(NotYourJob):
        await service.describe(BOB, idempotency_key="d3", job_id=stealth.job_id)
    assert await count(sessions) == before
    await service.describe(ADA, idempotency_key="d4", job_id=stealth.job_id)  # the owner may


async def test_the_buttons_under_the_prompts(sessions: async_sessionmaker[AsyncSession], store: ImageStore) -> None:
    service = JobService(sessions, store, with_captioner(), make_plans(), Recorder())
    ticket = await service.describe(ADA, idempotency_key="d", image_key=store.put(png()))
    with pytest.raises(JobNotReady):
        await service.press(BOB, ticket.job_id, Action.DESCRIBE_PICK, 2, idempotency_key="early")
    await finish(sessions, ticket.job_id)

    two = await service.press(BOB, ticket.job_id, Action.DESCRIBE_PICK, 2, idempotency_key="p2")
    assert two.kind == "job"
    assert (two.view.action, two.view.prompt, two.view.user_id) == ("imagine", PROMPTS[1], "200")
    assert two.view.params["aspect_ratio"] == "3:2"  # parsed as an /imagine of that prompt

    edited = await service.press(
        BOB, ticket.job_id, Action.DESCRIBE_PICK, 3, idempotency_key="p3", remix_text="a dog at dusk --ar 1:1"
    )
    assert (edited.view.prompt, edited.view.params["aspect_ratio"]) == ("a dog at dusk --ar 1:1", "1:1")

    every = await service.press(ADA, ticket.job_id, Action.DESCRIBE_ALL, None, idempotency_key="all")
    assert len(every.tickets) == 4
    assert sorted([(await service.job(t.job_id)).prompt for t in every.tickets]) == sorted(PROMPTS)
    twice = await service.press(ADA, ticket.job_id, Action.DESCRIBE_ALL, None, idempotency_key="all")
    assert [t.job_id for t in twice.tickets] == [t.job_id for t in every.tickets]  # a double press: one set

    again = await service.press(BOB, ticket.job_id, Action.DESCRIBE_AGAIN, None, idempotency_key="r")
    assert (again.view.action, again.view.parent_id, again.view.params["offset"]) == ("d", ticket.job_id, 1)
    assert again.view.params["image"] == (await service.job(ticket.job_id)).params["image"]

    [grid] = await service.imagine(ADA, "a cat", idempotency_key="g")
    await render(sessions, store, grid.job_id)
    with pytest.raises(InvalidRequest, match="is not a /describe result"):
        await service.press(ADA, grid.job_id, Action.DESCRIBE_ALL, None, idempotency_key="x")


async def test_imagine_all_in_relax_mode_is_refused_in_one_line_and_charges_nothing(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    """/imagine refuses several relax jobs from one prompt (Midjourney: permutations and --repeat need fast or turbo);
    Imagine all, four jobs from one press, follows the same rule. One of the four prompts alone still runs in relax."""
    service = JobService(sessions, store, with_captioner(), make_plans(), Recorder())
    ticket = await service.describe(ADA, idempotency_key="d", image_key=store.put(png()))
    await finish(sessions, ticket.job_id)
    await service.update_settings(BOB, mode="relax")
    before = await count(sessions)
    with pytest.raises(InvalidRequest) as refused:
        await service.press(BOB, ticket.job_id, Action.DESCRIBE_ALL, None, idempotency_key="all")
    assert refused.value.message == (
        "several jobs from one press run only in fast or turbo mode, and this one makes 4 relax jobs; "
        "switch with /fast, or press 1–4 one at a time"
    )
    assert await count(sessions) == before  # no job, no charge
    one = await service.press(BOB, ticket.job_id, Action.DESCRIBE_PICK, 1, idempotency_key="p1")
    assert one.view.params["mode"] == "relax"
    await service.update_settings(BOB, mode="fast")
    fast = await service.press(BOB, ticket.job_id, Action.DESCRIBE_ALL, None, idempotency_key="fast")
    assert len(fast.tickets) == 4


async def test_a_flagged_picture_is_not_described_where_it_would_not_be_shown_as_it_is(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    """/describe of a job posts its picture (Discord shows it above the prompts), and the worker does not check a job's
    own picture again: a picture the image check flagged is refused while it waits for the moderators, and wherever
    the asker's place would not deliver it as it is (a spoiler, a hold, a removal), as /show and ✉️ keep it back."""
    service = JobService(sessions, store, with_captioner(), make_plans(), Recorder())
    [grid] = await service.imagine(ADA, "a lighthouse", idempotency_key="g")
    async with sessions() as session, session.begin():
        assert await claim_job(session, grid.job_id, worker="test") is not None
    flagged = [NewImage(i, store.put(f"flagged-{i}".encode()), 64, 64, nsfw_score=0.99, flagged=True) for i in range(5)]
    async with sessions() as session, session.begin():
        assert await complete_job(session, grid.job_id, images=flagged, gpu_seconds=2.0)
    before = await count(sessions)
    with pytest.raises(InvalidRequest, match="flagged"):  # outside an NSFW channel: never shown as it is
        await service.describe(BOB, idempotency_key="d1", job_id=grid.job_id, index=2)
    await service.hold_result(grid.job_id)
    nsfw_bob = replace(BOB, nsfw_channel=True)
    with pytest.raises(InvalidRequest, match="held for review"):  # not before the moderators decide, anywhere
        await service.describe(nsfw_bob, idempotency_key="d2", job_id=grid.job_id, index=2)
    with pytest.raises(InvalidRequest, match="held for review"):
        await service.describe(ADA, idempotency_key="d3", job_id=grid.job_id)  # its owner neither
    assert await count(sessions) == before  # nothing made, nothing charged
