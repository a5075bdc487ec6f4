"""Every way a job is born goes through every policy check, and the engine-capability check, before anything is charged.

Parametrised over entry points × checks: a check added to ``POLICY_CHECKS`` is one more column here, an entry point
one more row; a pair where the check does not apply would make a job, charge it and fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_job_service import Recorder, make_plans, render

from impasto.bots.language.errors import PromptError
from impasto.bots.moderation.admission_check import ModerationCheck
from impasto.bots.service.checks import POLICY_CHECKS, Intent, PolicyCheck
from impasto.bots.service.context import Context
from impasto.bots.service.errors import ChannelNotAllowed, PromptRefused, RateLimited, ServiceError
from impasto.bots.service.flood import RateCheck, admit_rate
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.engine.registry import TINY_DESCRIBER, Registry, load_registry
from impasto.queue import keys
from impasto.queue.actions import Action
from impasto.queue.moderation.policy import load_policy
from impasto.storage import moderation
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import claim_job, complete_job
from impasto.storage.models import Job, LedgerEntry, ModerationEvent
from impasto.storage.plans import RateLimits
from impasto.storage.readings import record_described

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
OWNER = Requester("discord", "100", "ada", guild_id="900", channel_id="open")


class Banned(ServiceError):
    pass


async def ban_everyone(ctx: Context, intent: Intent) -> None:
    """A stand-in for checks other issues add (moderation, rate limits): refuses everything it is shown."""
    raise Banned(f"refused {intent.entry} {intent.action.value}")


@dataclass(frozen=True)
class Scenario:
    """A policy check, how to make it refuse (where the request comes from, extra checks), and its refusal."""

    name: str
    where: Requester
    extra: tuple[PolicyCheck, ...]
    refusal: type[Exception]
    setup: Callable[[JobService], Awaitable[None]] | None = None
    moderated: bool = False  # the service runs the moderation check (as ``runtime.job_service`` builds it)
    flood: bool = False  # the service runs the flood check on a server bucket with room for one command


async def close_the_channel(service: JobService) -> None:
    await service.configure_guild("discord", "900", allowed_channels=["open"])


async def ban_the_owner(service: JobService) -> None:
    async with service.sessions() as session, session.begin():
        user_id = await moderation.user_id_for(session, "discord", OWNER.user_id)
        await moderation.ban(session, user_id, None, reason="test")


def moderation_check(sessions: async_sessionmaker[AsyncSession]) -> ModerationCheck:
    return ModerationCheck(sessions, load_policy())


SCENARIOS = [
    Scenario("closed channel", replace(OWNER, channel_id="closed"), (), ChannelNotAllowed, close_the_channel),
    Scenario("banned by a moderator", OWNER, (), PromptRefused, ban_the_owner, moderated=True),
    Scenario("server flooded", OWNER, (), RateLimited, flood=True),
    Scenario("any added check", OWNER, (ban_everyone,), Banned),
]
assert len(POLICY_CHECKS) == 1, "a new policy check needs its scenario above"


async def described(s: JobService, grid: str) -> str:
    """The finished /describe of the grid, made in the test's setup (``describe_the_grid``)."""
    async with s.sessions() as session:
        found = await session.scalar(select(Job.id).where(Job.parent_id == grid, Job.action == Action.DESCRIBE.value))
    assert found is not None
    return str(found)


async def describe_the_grid(service: JobService, sessions: async_sessionmaker[AsyncSession], grid: str) -> None:
    """A finished /describe of the grid, by its owner (its four prompts as the worker would store them)."""
    ticket = await service.describe(OWNER, idempotency_key="describe-parent", job_id=grid)
    async with sessions() as session, session.begin():
        assert await claim_job(session, ticket.job_id, worker="test") is not None
        assert await complete_job(session, ticket.job_id, images=[], gpu_seconds=1.0)
        await record_described(session, ticket.job_id, [f"a cat number {n} --ar 1:1" for n in range(1, 5)])


def with_captioner() -> Registry:
    """The shipped registry, each model with the tiny CLIP captioner (the shipped file names none: /describe is
    refused there, by the capability step)."""
    registry = load_registry()
    return replace(
        registry, models={name: replace(entry, describer=TINY_DESCRIBER) for name, entry in registry.models.items()}
    )


async def describe_entry(s: JobService, who: Requester, grid: str, action: Action | None) -> object:
    """/describe (``action`` None: of the grid's picture) or a button under its four prompts."""
    if action is None:
        return await s.describe(who, idempotency_key="e-describe", job_id=grid)
    index = 2 if action.needs_index else None
    return await s.press(who, await described(s, grid), action, index, idempotency_key=f"e-{action.value}")


# Every entry point that makes a job: (name, call). ``parent`` is a finished grid, ``single`` a finished U2.
Entry = Callable[[JobService, Requester, str, str], Awaitable[object]]
ENTRIES: dict[str, Entry] = {
    "imagine": lambda s, who, grid, single: s.imagine(who, "a cat", idempotency_key="e-imagine"),
    "blend": lambda s, who, grid, single: s.blend(
        who, ["https://x.test/a.png", "https://x.test/b.png"], idempotency_key="e-blend"
    ),
    "U2 (pick)": lambda s, who, grid, single: s.press(who, grid, Action.UPSCALE, 3, idempotency_key="e-u"),
    # U2 pressed again: answered with the earlier pick (no new job), but a refused press is refused all the same.
    "U2 again": lambda s, who, grid, single: s.press(who, grid, Action.UPSCALE, 2, idempotency_key="e-u-again"),
    "V1": lambda s, who, grid, single: s.press(who, grid, Action.VARIATION, 1, idempotency_key="e-v"),
    "reroll": lambda s, who, grid, single: s.press(who, grid, Action.REROLL, idempotency_key="e-r"),
    "remix": lambda s, who, grid, single: s.press(
        who, grid, Action.VARIATION, 2, idempotency_key="e-remix", remix_text="a dog"
    ),
    **{
        action.label: (
            lambda s, who, grid, single, action=action: s.press(
                who,
                single,
                action,
                idempotency_key=f"e-{action.value}",
                remix_text="a cat --zoom 1.5" if action is Action.ZOOM_CUSTOM else None,
                mask_key=s.images.put(b"mask") if action.row.needs_mask else None,
            )
        )
        for action in Action
        if action.row.where == "single" and action.renders
    },
    "describe": lambda s, who, grid, single: describe_entry(s, who, grid, None),
    **{
        f"describe: {action.label}": (lambda s, who, grid, single, action=action: describe_entry(s, who, grid, action))
        for action in Action
        if action.row.where == "prompts"
    },
}
#: Entry points answered from an earlier job when nothing refuses them (no new job to count).
ANSWERED_WITHOUT_A_JOB = {"U2 again"}


@asynccontextmanager
async def flood_check(wanted: bool) -> AsyncIterator[list[PolicyCheck]]:
    """A flood check whose server bucket (one command, refilled once a day) the owner's server already spent, in a
    namespace of its own on the test Redis; nothing when not ``wanted``."""
    if not wanted:
        yield []
        return
    redis = Redis.from_url(TEST_REDIS_URL)
    ns = keys.Namespace(f"impasto-test-flood-{uuid.uuid4().hex[:8]}:")
    limits = RateLimits(guild_commands_per_minute=1 / 1440, guild_burst=1)
    try:
        await admit_rate(redis, make_plans().get("member"), limits, OWNER, ns=ns)  # the one token
        yield [RateCheck(redis, limits, ns=ns)]
    finally:
        async for key in redis.scan_iter(match=ns.prefix + "*"):
            await redis.delete(key)
        await redis.aclose()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


async def jobs_and_charges(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        jobs = await session.scalar(select(func.count()).select_from(Job))
        charges = await session.scalar(select(func.count()).select_from(LedgerEntry))
        return int(jobs or 0), int(charges or 0)


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_every_check_applies_to_every_entry_point(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, entry: str, scenario: Scenario
) -> None:
    recorder = Recorder()
    open_service = JobService(sessions, store, with_captioner(), make_plans(), recorder)
    # A finished grid and a finished U2 to press buttons on, made while nothing refuses.
    [ticket] = await open_service.imagine(OWNER, "a lighthouse", idempotency_key="parent")
    await render(sessions, store, ticket.job_id)
    picked = await open_service.press(OWNER, ticket.job_id, Action.UPSCALE, 2, idempotency_key="pick")
    await describe_the_grid(open_service, sessions, ticket.job_id)
    before = await jobs_and_charges(sessions)

    checks: list[PolicyCheck] = [*POLICY_CHECKS, *scenario.extra]
    if scenario.moderated:
        checks.append(moderation_check(sessions))
    async with flood_check(scenario.flood) as flood:
        checks += flood
        service = JobService(sessions, store, with_captioner(), make_plans(), recorder, checks=checks)
        if scenario.setup is not None:
            await scenario.setup(service)
        with pytest.raises(scenario.refusal):
            await ENTRIES[entry](service, scenario.where, ticket.job_id, picked.view.job_id)
    after = await jobs_and_charges(sessions)
    assert after == before, "a refused request made a job or charged"

    # The same request where nothing refuses is admitted: the refusal above came from the check, not the call.
    if scenario.extra and entry not in ANSWERED_WITHOUT_A_JOB:
        await ENTRIES[entry](open_service, OWNER, ticket.job_id, picked.view.job_id)
        assert (await jobs_and_charges(sessions))[0] > before[0]


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("a cat --weird 250", "--weird"),
        ("https://x.test/a.png a cat --stop 50", "--stop"),  # an image prompt starts from an image
        ("a cat --sref https://x.test/a.png", "--sref"),  # v6 in the shipped registry has no IP-Adapter
    ],
)
async def test_what_the_engine_cannot_do_is_refused_before_charging(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore, text: str, option: str
) -> None:
    service = JobService(sessions, store, load_registry(), make_plans(), Recorder())
    with pytest.raises(PromptError) as refused:
        await service.imagine(OWNER, text, idempotency_key="k")
    assert refused.value.option == option
    assert option in refused.value.message
    assert await jobs_and_charges(sessions) == (0, 0)


async def test_sref_needs_an_adapter_on_the_model_that_paints(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    service = JobService(sessions, store, load_registry(default="tiny-sdxl"), make_plans(), Recorder())
    [ticket] = await service.imagine(OWNER, "a cat --sref https://x.test/a.png --sw 300", idempotency_key="k1")
    view = await service.job(ticket.job_id)
    assert (view.params["style_references"], view.params["style_weight"]) == (["https://x.test/a.png"], 300)
    # --draft paints with tiny-sdxl's few-step variant, registered without an adapter.
    with pytest.raises(
        PromptError, match=r"model tiny-sdxl-turbo \(the few-step model --draft paints with\)"
    ) as refused:
        await service.imagine(OWNER, "a cat --draft --sref https://x.test/a.png", idempotency_key="k2")
    assert refused.value.option == "--sref"
    assert (await jobs_and_charges(sessions))[0] == 1


async def test_stop_is_honoured_for_text_and_not_carried_into_buttons(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    recorder = Recorder()
    service = JobService(sessions, store, load_registry(), make_plans(), recorder)
    [ticket] = await service.imagine(OWNER, "a cat --stop 50", idempotency_key="k")
    grid = await service.job(ticket.job_id)
    assert grid.params["stop"] == 50
    await render(sessions, store, ticket.job_id)
    reroll = await service.press(OWNER, ticket.job_id, Action.REROLL, idempotency_key="r")
    assert reroll.view.params["stop"] == 50  # 🔄 paints from text again
    varied = await service.press(OWNER, ticket.job_id, Action.VARIATION, 1, idempotency_key="v")
    assert varied.view.params["stop"] == 100  # V1 starts from an image: stored as what it paints
    assert "--stop" not in varied.view.display
    with pytest.raises(PromptError, match="--stop works only"):
        await service.press(
            OWNER, ticket.job_id, Action.VARIATION, 2, idempotency_key="v2", remix_text="a dog --stop 40"
        )


async def test_the_prompt_policy_refuses_before_charging_and_audits(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    recorder = Recorder()
    service = JobService(
        sessions, store, load_registry(), make_plans(), recorder, checks=[*POLICY_CHECKS, moderation_check(sessions)]
    )
    # gore is allowed only in NSFW channels by default; --no items are steered away from, never painted.
    with pytest.raises(PromptRefused, match="gore"):
        await service.imagine(OWNER, "a {knight, decapitated knight} in the rain", idempotency_key="k1")
    assert await jobs_and_charges(sessions) == (0, 0)
    [ok] = await service.imagine(OWNER, "a knight in the rain --no gore", idempotency_key="k2")
    nsfw = replace(OWNER, nsfw_channel=True)
    [allowed] = await service.imagine(nsfw, "a decapitated statue", idempotency_key="k3")
    # A Remix edit is checked too.
    await render(sessions, store, ok.job_id)
    with pytest.raises(PromptRefused):
        await service.press(OWNER, ok.job_id, Action.VARIATION, 1, idempotency_key="k4", remix_text="a gory knight")
    async with sessions() as session:
        audited = list(await session.scalars(select(ModerationEvent).where(ModerationEvent.kind == "refused")))
    assert len(audited) == 2
    assert {row.category for row in audited} == {"gore"}
    assert allowed.job_id != ok.job_id


async def test_admitted_jobs_and_refusals_are_counted(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    def count(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    service = JobService(
        sessions, store, load_registry(), make_plans(), Recorder(), checks=[*POLICY_CHECKS, moderation_check(sessions)]
    )
    admitted = count("impasto_jobs_admitted_total", {"action": "imagine", "lane": "fast"})
    gore = count("impasto_moderation_refusals_total", {"category": "gore"})
    await service.imagine(OWNER, "a cat --repeat 2", idempotency_key="m-1")
    await service.imagine(OWNER, "a cat --repeat 2", idempotency_key="m-1")  # a replay admits nothing new
    with pytest.raises(PromptRefused):
        await service.imagine(OWNER, "a decapitated knight", idempotency_key="m-2")
    assert count("impasto_jobs_admitted_total", {"action": "imagine", "lane": "fast"}) == admitted + 2
    assert count("impasto_moderation_refusals_total", {"category": "gore"}) == gore + 1


async def test_an_approved_appeal_reruns_the_refused_request_as_it_was_asked(
    sessions: async_sessionmaker[AsyncSession], store: ImageStore
) -> None:
    """The refusal keeps the request (``bots/service/replay.py``); approved, that request is made again — a Remix edit
    as the same press on the same image, an /imagine in an NSFW channel still in that place — with the policy waived
    for it alone."""
    from impasto.bots.moderation.review import Review

    service = JobService(
        sessions, store, load_registry(), make_plans(), Recorder(), checks=[*POLICY_CHECKS, moderation_check(sessions)]
    )
    review = Review(service, load_policy())
    [ok] = await service.imagine(OWNER, "a knight in the rain", idempotency_key="r1")
    await render(sessions, store, ok.job_id)

    async def appealed(refusal: PromptRefused, who: Requester) -> str:
        assert refusal.refusal_id is not None
        item = await review.appeal(refusal.refusal_id, "discord", who.user_id, chat_id="open", message_id="5")
        assert item is not None
        decision = await review.decide(item.id, "discord", "999", approve=True)
        assert decision.outcome == "approved"
        assert decision.job_id is not None, decision.line
        return decision.job_id

    with pytest.raises(PromptRefused) as edit:
        await service.press(OWNER, ok.job_id, Action.VARIATION, 2, idempotency_key="r2", remix_text="a gory knight")
    child = await service.job(await appealed(edit.value, OWNER))
    assert (child.action, child.parent_id, child.prompt) == (Action.VARIATION.value, ok.job_id, "a gory knight")
    async with sessions() as session:
        row = await session.get(Job, child.job_id)
        assert row is not None
        assert row.image_index == 2

    # A word this server blocks is refused even in an NSFW channel; the rerun is made there again, not elsewhere.
    async with sessions() as session, session.begin():
        guild = await moderation.guild_id_for(session, "discord", "900")
        await moderation.add_word(session, guild, "custom", "lighthouse")
    nsfw = replace(OWNER, nsfw_channel=True, channel_id="after-dark")
    with pytest.raises(PromptRefused) as typed:
        await service.imagine(nsfw, "a lighthouse at night", idempotency_key="r3")
    rerun = await appealed(typed.value, nsfw)
    async with sessions() as session:
        row = await session.get(Job, rerun)
        assert row is not None
        assert (row.prompt, row.channel_id, row.nsfw_channel) == ("a lighthouse at night", "after-dark", True)
    # The waiver was that one request's: the same prompt again is refused.
    with pytest.raises(PromptRefused):
        await service.imagine(nsfw, "a lighthouse at night", idempotency_key="r4")
