"""The job service on the real databases: a job's SQL life, idempotency, quotas, cancel, lineage, preferences."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.language.errors import PromptError
from impasto.bots.service.errors import (
    ChannelNotAllowed,
    CreditsExhausted,
    InvalidRequest,
    JobNotReady,
    NotYourJob,
    QueueFull,
    QueueUnavailable,
    RelaxNotAllowed,
)
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import QueuedRender
from impasto.engine.registry import load_registry
from impasto.queue.actions import Action
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import NewImage, cancel_job, claim_job, complete_job, fail_job
from impasto.storage.models import Job, LedgerEntry, Usage
from impasto.storage.plans import Plans, parse_plans

ADA = Requester("discord", "100", "ada", guild_id="900", channel_id="1")
BOB = Requester("discord", "200", "bob", guild_id="900", channel_id="1")
# v6 at 1024², 30 steps, 4 images: 0.05 × 1.048576 × 30 × 4 ≈ 6.29 GPU-seconds held per /imagine.
ESTIMATE = 0.05 * 1024 * 1024 / 1e6 * 30 * 4


def make_plans(*, fast_gpu_seconds: float = 3600.0, relax: bool = True, concurrent: int = 3, queued: int = 10) -> Plans:
    return parse_plans(
        {
            "default": "member",
            "plans": {
                "member": {
                    "fast_gpu_hours": fast_gpu_seconds / 3600,
                    "relax": relax,
                    "max_concurrent_jobs": concurrent,
                    "max_queued_jobs": queued,
                    "max_permutations": 4,
                },
                "vip": {"fast_gpu_hours": 100, "relax": True, "max_permutations": 40},
            },
        }
    )


class Recorder:
    def __init__(self) -> None:
        self.queued: list[QueuedRender] = []
        self.broken = False

    async def __call__(self, render: QueuedRender) -> None:
        if self.broken:
            raise ConnectionError("redis is down")
        self.queued.append(render)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def make_service(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder, plans: Plans
) -> JobService:
    return JobService(sessions, store, load_registry(), plans, recorder)


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder) -> JobService:
    return make_service(sessions, store, recorder, make_plans())


async def render(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, job_id: str, *, grid: bool = True, gpu: float = 2.0
) -> list[NewImage]:
    """What a worker does: claim, store images, complete."""
    async with sessions() as session, session.begin():
        claimed = await claim_job(session, job_id, worker="test")
        assert claimed is not None
    indexes = range(5) if grid else range(1, 2)
    images = [NewImage(i, store.put(f"{job_id}-{i}".encode()), 64, 64) for i in indexes]
    async with sessions() as session, session.begin():
        assert await complete_job(session, job_id, images=images, gpu_seconds=gpu)
    return images


async def usage(sessions: async_sessionmaker[AsyncSession]) -> tuple[float, float]:
    async with sessions() as session:
        row = (
            await session.execute(
                select(func.sum(Usage.used_gpu_seconds), func.sum(Usage.reserved_gpu_seconds)).where(
                    Usage.period.not_like("%@%")
                )
            )
        ).one()
        return float(row[0] or 0), float(row[1] or 0)


async def test_a_jobs_sql_life(
    service: JobService, sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder
) -> None:
    (ticket,) = await service.imagine(ADA, "a lighthouse at dusk --ar 16:9", idempotency_key="i-1")
    assert ticket.status == "queued"
    assert not ticket.waiting
    assert ticket.reserved_gpu_seconds > 0
    assert [r.job_id for r in recorder.queued] == [ticket.job_id]
    assert recorder.queued[0].lane == "fast"
    assert recorder.queued[0].user_key == "discord:100"
    assert recorder.queued[0].guild_key == "discord:900"
    queued_view = await service.job(ticket.job_id)
    assert queued_view.params["aspect_ratio"] == "16:9"
    assert queued_view.params["seed"] == ticket.seed  # the service picked a seed and stored it

    info = await service.info(ADA)
    assert info.queued_jobs["fast"] == 1
    assert info.fast_gpu_seconds_reserved == pytest.approx(ticket.reserved_gpu_seconds)

    await render(sessions, store, ticket.job_id, gpu=3.0)
    done = await service.job(ticket.job_id)
    assert done.status == "done"
    assert [i.index for i in done.images] == [0, 1, 2, 3, 4]
    assert done.is_grid

    info = await service.info(ADA)
    assert (info.plan, info.mode) == ("member", "fast")
    assert info.fast_gpu_seconds_used == pytest.approx(3.0)
    assert info.fast_gpu_seconds_reserved == pytest.approx(0.0)
    assert info.fast_remaining_hours == pytest.approx((3600 - 3.0) / 3600)
    assert info.fast_remaining_percent == pytest.approx(100 * (3600 - 3.0) / 3600)
    assert (info.lifetime_images, info.lifetime_gpu_seconds) == (4, 3.0)
    assert info.queued_jobs["fast"] == 0
    assert info.running_jobs == ()

    assert (done.guild_id, done.channel_id) == ("900", "1")
    await service.record_message(ticket.job_id, "discord", "1", "554", "progress")
    await service.record_message(ticket.job_id, "discord", "1", "555", "result")
    assert [(m.message_id, m.kind) for m in await service.messages(ticket.job_id)] == [
        ("554", "progress"),
        ("555", "result"),
    ]
    found = await service.find_job_by_message("discord", "1", "555")
    assert found is not None
    assert found.job_id == ticket.job_id
    assert await service.find_job_by_message("discord", "1", "556") is None

    assert [v.job_id for v in await service.history(ADA, search="LIGHTHOUSE")] == [ticket.job_id]
    assert await service.history(ADA, search="castle") == []
    assert (await service.show(ADA, ticket.job_id)).view.job_id == ticket.job_id
    with pytest.raises(NotYourJob):
        await service.show(BOB, ticket.job_id)


async def test_the_same_key_twice_makes_one_job_and_one_charge(
    service: JobService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await service.imagine(ADA, "a cat", idempotency_key="click-1")
    again = await service.imagine(ADA, "a cat", idempotency_key="click-1")
    both = await asyncio.gather(*(service.imagine(ADA, "a dog", idempotency_key="click-2") for _ in range(5)))
    assert [t.job_id for t in again] == [t.job_id for t in first]
    assert again[0].duplicate
    long_key = "x" * 500
    (long_first,) = await service.imagine(ADA, "a long key", idempotency_key=long_key)
    (long_again,) = await service.imagine(ADA, "a long key", idempotency_key=long_key)
    assert long_again.job_id == long_first.job_id
    assert len({t[0].job_id for t in both}) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 3
        assert await session.scalar(select(func.count()).where(LedgerEntry.kind == "reserve")) == 3
    assert (await usage(sessions))[1] == pytest.approx(3 * ESTIMATE)


async def test_fifty_concurrent_imagines_never_overspend(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder
) -> None:
    # Room for three grids and a half; queue limits out of the way so the balance is the only limit.
    service = make_service(sessions, store, recorder, make_plans(fast_gpu_seconds=3.5 * ESTIMATE, queued=100))
    results = await asyncio.gather(
        *(service.imagine(ADA, f"a cat number {n}", idempotency_key=f"c-{n}") for n in range(50)),
        return_exceptions=True,
    )
    accepted = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, CreditsExhausted)]
    assert len(accepted) == 3, [r for r in results if not isinstance(r, list | CreditsExhausted)]
    assert len(refused) == 47
    assert "/relax" in refused[0].message
    used, reserved = await usage(sessions)
    assert used + reserved <= 3.5 * ESTIMATE
    assert len(recorder.queued) == 3


async def test_complete_twice_charges_once_and_fail_refunds(
    service: JobService, sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    (one,) = await service.imagine(ADA, "one", idempotency_key="a")
    (two,) = await service.imagine(ADA, "two", idempotency_key="b")
    images = await render(sessions, store, one.job_id, gpu=4.0)
    async with sessions() as session, session.begin():
        assert not await complete_job(session, one.job_id, images=images, gpu_seconds=4.0)
    async with sessions() as session, session.begin():
        assert await claim_job(session, two.job_id, worker="w") is not None
        assert await fail_job(session, two.job_id, error="engine out of memory")
    assert await usage(sessions) == pytest.approx((4.0, 0.0))
    failed = await service.job(two.job_id)
    assert (failed.status, failed.error) == ("failed", "engine out of memory")


async def test_queue_limits_and_waiting(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder
) -> None:
    service = make_service(sessions, store, recorder, make_plans(concurrent=1, queued=1))
    (first,) = await service.imagine(ADA, "one", idempotency_key="q1")
    (second,) = await service.imagine(ADA, "two", idempotency_key="q2")
    assert not first.waiting
    assert second.waiting
    assert second.notice is not None
    assert second.notice.startswith("Job queued")
    before = await usage(sessions)
    with pytest.raises(QueueFull, match="queue is full"):
        await service.imagine(ADA, "three", idempotency_key="q3")
    assert await usage(sessions) == before  # nothing charged
    # Bob's queue is his own.
    await service.imagine(BOB, "bob's", idempotency_key="q4")


async def test_cancel_queued_refunds_and_only_the_owner_may(
    service: JobService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    (ticket,) = await service.imagine(ADA, "to cancel", idempotency_key="x")
    with pytest.raises(NotYourJob):
        await service.cancel(BOB, ticket.job_id)
    assert await service.cancel(ADA, ticket.job_id) == "cancelled"
    assert await usage(sessions) == (0.0, 0.0)
    async with sessions() as session, session.begin():
        assert await claim_job(session, ticket.job_id, worker="w") is None

    (running,) = await service.imagine(ADA, "running", idempotency_key="y")
    async with sessions() as session, session.begin():
        await claim_job(session, running.job_id, worker="w")
    assert await service.cancel(ADA, running.job_id) == "running"
    assert (await service.job(running.job_id)).cancel_requested
    async with sessions() as session, session.begin():
        assert await cancel_job(session, running.job_id)  # the worker stops between steps
    assert await usage(sessions) == (0.0, 0.0)


async def test_lineage_imagine_u2_zoom_v3(
    service: JobService, sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    (grid,) = await service.imagine(ADA, "a harbour --seed 11", idempotency_key="l1")
    with pytest.raises(JobNotReady):
        await service.press(ADA, grid.job_id, Action.UPSCALE, 2, idempotency_key="l2")
    grid_images = await render(sessions, store, grid.job_id)
    before = await usage(sessions)

    picked = await service.press(ADA, grid.job_id, Action.UPSCALE, 2, idempotency_key="l2")
    assert picked.kind == "image"
    single = picked.view
    assert (single.status, single.parent_id, single.image_index, single.action) == ("done", grid.job_id, 2, "u")
    assert [(i.index, i.key) for i in single.images] == [(1, grid_images[2].key)]
    assert await usage(sessions) == before  # U1–U4 are free
    again = await service.press(ADA, grid.job_id, Action.UPSCALE, 2, idempotency_key="l2-other-click")
    assert again.view.job_id == single.job_id
    with pytest.raises(InvalidRequest, match="image 5 does not exist"):
        await service.press(ADA, grid.job_id, Action.UPSCALE, 5, idempotency_key="l5")

    zoom = await service.press(ADA, single.job_id, Action.ZOOM_OUT_2, idempotency_key="l3")
    assert zoom.kind == "job"
    assert zoom.ticket is not None
    assert (zoom.view.parent_id, zoom.view.action, zoom.view.seed) == (single.job_id, "z2", 11)
    async with sessions() as session, session.begin():
        claimed = await claim_job(session, zoom.view.job_id, worker="w")
    assert claimed is not None
    assert claimed.input_image_keys == (grid_images[2].key,)
    assert claimed.action == "z2"
    zoom_images = [NewImage(i, store.put(f"zoom-{i}".encode()), 64, 64) for i in range(5)]
    async with sessions() as session, session.begin():
        await complete_job(session, zoom.view.job_id, images=zoom_images, gpu_seconds=1.0)

    vary = await service.press(ADA, zoom.view.job_id, Action.VARIATION, 3, idempotency_key="l4")
    assert vary.kind == "job"
    async with sessions() as session, session.begin():
        claimed = await claim_job(session, vary.view.job_id, worker="w")
    assert claimed is not None
    assert (claimed.parent_id, claimed.image_index, claimed.input_image_keys) == (
        zoom.view.job_id,
        3,
        (zoom_images[3].key,),
    )
    assert claimed.parent_image_keys[3] == zoom_images[3].key
    # The chain reads back: V3 → zoom → U2 → imagine.
    chain = []
    job_id: str | None = vary.view.job_id
    while job_id is not None:
        view = await service.job(job_id)
        chain.append(view.action)
        job_id = view.parent_id
    assert chain == ["v", "z2", "u", "imagine"]

    details = await service.press(BOB, grid.job_id, Action.DETAILS, idempotency_key="l6")
    assert details.kind == "details"
    fav = await service.press(ADA, grid.job_id, Action.FAVORITE, idempotency_key="l7")
    assert fav.view.favorite


async def test_remix_asks_for_text_then_uses_it(
    service: JobService, sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    (grid,) = await service.imagine(ADA, "a red car", idempotency_key="r1")
    await render(sessions, store, grid.job_id)
    await service.update_settings(ADA, remix=True)
    asked = await service.press(ADA, grid.job_id, Action.VARIATION, 1, idempotency_key="r2")
    assert asked.kind == "remix"
    assert asked.view.job_id == grid.job_id
    done = await service.press(
        ADA, grid.job_id, Action.VARIATION, 1, idempotency_key="r2", remix_text="a blue car --ar 3:2"
    )
    assert done.kind == "job"
    assert done.view.prompt == "a blue car --ar 3:2"
    assert done.view.params["aspect_ratio"] == "3:2"
    reroll = await service.press(ADA, grid.job_id, Action.REROLL, idempotency_key="r3", remix_text="a green car")
    assert reroll.view.seed != grid.seed or reroll.view.params["seed"] == reroll.view.seed


async def test_modes_plans_and_refusals(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder
) -> None:
    service = make_service(sessions, store, recorder, make_plans(relax=False, fast_gpu_seconds=1.0))
    with pytest.raises(RelaxNotAllowed, match="not part of the member plan; plans with relax: vip"):
        await service.imagine(ADA, "a cat --relax", idempotency_key="m1")
    with pytest.raises(RelaxNotAllowed):
        await service.update_settings(ADA, mode="relax")
    with pytest.raises(CreditsExhausted, match="fast time renews on"):
        await service.imagine(ADA, "a cat", idempotency_key="m2")
    with pytest.raises(PromptError):
        await service.imagine(ADA, "a cat --ar banana", idempotency_key="m3")
    # A role mapped to the vip plan lifts both limits.
    await service.configure_guild("discord", "900", role_plans={"r-vip": "vip"})
    vip = Requester("discord", "100", "ada", guild_id="900", channel_id="1", roles=("r-vip",))
    (relaxed,) = await service.imagine(vip, "a cat --relax", idempotency_key="m4")
    assert relaxed.reserved_gpu_seconds == 0.0  # relax costs nothing
    assert recorder.queued[-1].lane == "relax"
    with pytest.raises(InvalidRequest, match="run only in fast or turbo mode, and this prompt makes 2 relax jobs"):
        await service.imagine(vip, "a {cat, dog} --relax", idempotency_key="m4b")
    assert len(await service.imagine(vip, "a {cat, dog} --fast", idempotency_key="m4c")) == 2
    (turbo,) = await service.imagine(vip, "a cat --turbo", idempotency_key="m5")
    assert turbo.reserved_gpu_seconds == pytest.approx(2 * ESTIMATE)  # turbo holds twice the estimate
    assert (await service.info(vip)).plan == "vip"
    # Channel rules.
    await service.configure_guild("discord", "900", allowed_channels=["2"])
    with pytest.raises(ChannelNotAllowed):
        await service.imagine(vip, "a cat", idempotency_key="m6")


async def test_queue_down_fails_the_job_and_charges_nothing(
    service: JobService, sessions: async_sessionmaker[AsyncSession], recorder: Recorder
) -> None:
    recorder.broken = True
    with pytest.raises(QueueUnavailable):
        await service.imagine(ADA, "a cat", idempotency_key="d1")
    assert await usage(sessions) == (0.0, 0.0)
    (view,) = await service.history(ADA)
    assert view.status == "failed"
    recorder.broken = False
    (queued,) = await service.imagine(ADA, "a dog", idempotency_key="d2")
    recorder.broken = True  # a repeated click while the queue is down leaves the queued job alone
    (again,) = await service.imagine(ADA, "a dog", idempotency_key="d2")
    assert again.job_id == queued.job_id
    assert (await service.job(queued.job_id)).status == "queued"


async def test_settings_and_preferences_shape_the_prompt(service: JobService) -> None:
    view = await service.update_settings(ADA, stylize=250, raw=True, model="v5", visibility="stealth")
    assert view.settings_text == "--v 5 --style raw --s 250 --stealth"
    assert await service.prefer_suffix(ADA, "--ar 2:3") == "--ar 2:3"
    with pytest.raises(PromptError):
        await service.prefer_suffix(ADA, "a cat")
    assert await service.prefer_option_set(ADA, "wide", "--ar 16:9") == {"wide": "--ar 16:9"}
    assert await service.prefer_option_list(ADA) == {"wide": "--ar 16:9"}
    (plain,) = await service.imagine(ADA, "a dog", idempotency_key="p1")
    job = await service.job(plain.job_id)
    assert (job.params["stylize"], job.params["style"], job.model, job.visibility) == (250, "raw", "v5", "stealth")
    assert job.params["aspect_ratio"] == "2:3"
    (wide,) = await service.imagine(ADA, "a dog --wide", idempotency_key="p2")
    assert (await service.job(wide.job_id)).params["aspect_ratio"] == "16:9"
    assert await service.prefer_option_set(ADA, "wide", "") == {}
    reset = await service.update_settings(ADA, reset=True)
    assert reset.settings_text == ""
    with pytest.raises(InvalidRequest, match="unknown model"):
        await service.update_settings(ADA, model="v99")


async def test_blend_makes_one_job_from_links_and_stored_copies(
    service: JobService, store: ImageStore, recorder: Recorder, sessions: async_sessionmaker[AsyncSession]
) -> None:
    keys = [store.put(b"one"), store.put(b"two")]
    urls = ["https://cdn.example/a.png", "https://cdn.example/b.png"]
    (ticket,) = await service.blend(ADA, urls, "landscape", idempotency_key="b1", image_keys=keys)
    async with sessions() as session, session.begin():
        claimed = await claim_job(session, ticket.job_id, worker="w")
    assert claimed is not None
    assert claimed.action == "blend"
    assert claimed.input_image_keys == tuple(keys)
    assert list(claimed.params["image_prompts"]) == keys  # the worker reads the store, never the network
    assert list(claimed.params["image_prompt_urls"]) == urls
    assert claimed.params["aspect_ratio"] == "3:2"
    with pytest.raises(PromptError, match="2 to 5 images"):
        await service.blend(ADA, urls[:1], None, idempotency_key="b2")


async def test_a_servers_daily_cap(service: JobService, sessions: async_sessionmaker[AsyncSession]) -> None:
    from impasto.bots.service.errors import DailyCapReached

    await service.configure_guild("discord", "900", daily_cap_gpu_seconds=1.5 * ESTIMATE)
    await service.imagine(ADA, "one", idempotency_key="dc1")
    with pytest.raises(DailyCapReached, match="per member per day"):
        await service.imagine(ADA, "two", idempotency_key="dc2")
    # A DM is not under the server's cap.
    await service.imagine(Requester("discord", "100", "ada"), "two", idempotency_key="dc3")
    assert (await service.guild("discord", "900")).daily_cap_gpu_seconds == pytest.approx(1.5 * ESTIMATE)


async def test_settling_and_admitting_at_once_for_one_user_never_deadlock(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, recorder: Recorder
) -> None:
    service = make_service(sessions, store, recorder, make_plans(queued=100))
    first = [(await service.imagine(ADA, f"first {n}", idempotency_key=f"f{n}"))[0] for n in range(10)]
    for ticket in first:
        async with sessions() as session, session.begin():
            assert await claim_job(session, ticket.job_id, worker="w") is not None
    key = store.put(b"img")

    async def finish(job_id: str) -> None:
        async with sessions() as session, session.begin():
            assert await complete_job(session, job_id, images=[NewImage(1, key, 8, 8)], gpu_seconds=1.0)

    results = await asyncio.gather(
        *(finish(t.job_id) for t in first),
        *(service.imagine(ADA, f"second {n}", idempotency_key=f"s{n}") for n in range(10)),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    used, reserved = await usage(sessions)
    assert used == pytest.approx(10.0)
    assert reserved == pytest.approx(10 * ESTIMATE)


async def test_history_search_treats_wildcards_as_text(service: JobService) -> None:
    (percent,) = await service.imagine(ADA, "100% pure joy", idempotency_key="h1")
    await service.imagine(ADA, "a quiet_lake", idempotency_key="h2")
    await service.imagine(ADA, "a quiet lake", idempotency_key="h3")
    assert [v.job_id for v in await service.history(ADA, search="0% p")] == [percent.job_id]
    assert [v.prompt for v in await service.history(ADA, search="t_l")] == ["a quiet_lake"]
    assert len(await service.history(ADA, limit=2)) == 2
    assert await service.history(BOB) == []
