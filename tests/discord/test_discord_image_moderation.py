"""A result the worker's classifier flagged, on Discord (the real discord.py client, the fake Discord, the real core
on SQLite and a real worker with the tiny classifier: threshold 0 flags every picture): a spoiler, held for review
(and posted on approval), removed, or delivered in an NSFW channel; progress previews blurred outside NSFW channels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from discord_stack import ServiceStack
from fake_discord import ALICE, BOB, CHANNEL_ID, GUILD_ID, NSFW_CHANNEL_ID, FakeDiscord
from PIL import Image
from sqlalchemy import select, update
from test_discord_flows import PreviewRenderer, prompt_option, shown, waiting

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.service.delivery.core import HELD_LINE, REMOVED_LINE
from impasto.bots.service.errors import JobNotReady
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView
from impasto.engine.nsfw import load_classifier
from impasto.engine.spec import Progress, ProgressFn, RenderResult
from impasto.queue.specs import RenderWork
from impasto.storage import moderation as mod
from impasto.storage.models import HELD, Job, ModerationEvent

Json = dict[str, Any]
FLAG_ALL = 0.0  # an image is flagged when its score ≥ the threshold


class CheckerRenderer(PreviewRenderer):
    """Previews of sharp black and white squares: a blurred one has grey in it."""

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        checker = Image.new("L", (32, 32), 0)
        for x in range(32):
            for y in range(32):
                if (x // 4 + y // 4) % 2:
                    checker.putpixel((x, y), 255)

        def with_preview(step: Progress) -> None:
            progress(Progress(step.step, step.total, checker.convert("RGB")))

        return super(PreviewRenderer, self).render(work, with_preview)


@pytest.fixture
def flag_all(stack: ServiceStack, tmp_path: Path) -> None:
    stack.classifier_factory = lambda: load_classifier("tiny", tmp_path / "models")
    stack.nsfw_threshold = FLAG_ALL


async def server_chooses(stack: ServiceStack, **settings: str) -> None:
    async with stack.service.sessions() as session, session.begin():
        guild = await mod.guild_id_for(session, "discord", GUILD_ID)
        await mod.update_settings(session, guild, **settings)  # type: ignore[arg-type]


async def finished(fake: FakeDiscord, stack: ServiceStack, *, channel_id: str = CHANNEL_ID) -> tuple[Json, JobView]:
    """/imagine in the channel, rendered; the job's message once it shows the end (a result or one line)."""
    record = await fake.slash("imagine", prompt_option("a lighthouse"), channel_id=channel_id)
    message = await waiting(fake, record)
    await shown(fake, stack, message)
    await stack.drain()
    view = await shown(fake, stack, message)
    end = await fake.wait_message(
        lambda m: (
            m["id"] == message["id"]
            and (bool(m["components"]) or HELD_LINE in m["content"] or "removed" in m["content"])
        )
    )
    return end, view


def attachment_names(message: Json) -> list[str]:
    return [a["filename"] for a in message["attachments"]]


@pytest.mark.usefixtures("flag_all")
async def test_a_flagged_result_is_a_spoiler_by_default(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    message, view = await finished(fake, stack)
    assert view.flagged
    assert attachment_names(message) == [f"SPOILER_impasto_{view.job_id}.png"]


@pytest.mark.usefixtures("flag_all")
async def test_in_an_nsfw_channel_a_flagged_result_is_delivered_as_it_is(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    message, view = await finished(fake, stack, channel_id=NSFW_CHANNEL_ID)
    assert view.flagged
    assert attachment_names(message) == [f"impasto_{view.job_id}.png"]


@pytest.mark.usefixtures("flag_all")
async def test_a_held_result_is_one_line_until_a_moderator_approves_it(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    told: list[str] = []

    async def on_held(view: JobView) -> None:
        told.append(view.job_id)

    bot.delivery.on_held = on_held
    await server_chooses(stack, flagged_output="hold")
    message, view = await finished(fake, stack)
    assert HELD_LINE in message["content"]
    assert (message["attachments"], message["components"]) == ([], [])  # nothing posted, no buttons
    assert await fake.wait_for(lambda: told) == [view.job_id]  # told once the line is posted and indexed
    async with stack.service.sessions() as session:
        kinds = list(await session.scalars(select(ModerationEvent.kind).where(ModerationEvent.job_id == view.job_id)))
    assert HELD in kinds
    owner = Requester(platform="discord", user_id=ALICE)
    with pytest.raises(JobNotReady, match="held for review"):
        await stack.service.show(owner, view.job_id)  # /show is no way around the review
    await fake.react(message["id"], "✉️", user_id=ALICE)  # nor is ✉️: the details come without the pictures
    dm = await fake.wait_message(lambda m: m["content"].startswith(f"**Job ID**: {view.job_id}"))
    assert dm["attachments"] == []

    # Approve (the moderators' queue records the decision, then releases): the result goes where it was asked, on
    # the same message, once.
    async with stack.service.sessions() as session, session.begin():
        held = await session.scalar(select(ModerationEvent.id).where(ModerationEvent.kind == HELD))
        assert held is not None
        moderator = await mod.user_id_for(session, "discord", "6000")
        assert await mod.decide(session, held, moderator_id=moderator, approve=True) is not None
    assert (await stack.service.show(owner, view.job_id)).view.job_id == view.job_id
    assert await bot.delivery.release_held(view.job_id)
    released = await fake.wait_message(lambda m: m["id"] == message["id"] and bool(m["components"]))
    assert attachment_names(released) == [f"impasto_{view.job_id}.png"]
    assert not await bot.delivery.release_held(view.job_id)


async def test_a_result_that_was_not_held_is_not_released(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    _, view = await finished(fake, stack)  # no classifier: nothing flagged
    assert not await bot.delivery.release_held(view.job_id)


@pytest.mark.usefixtures("flag_all")
async def test_a_removed_result_is_one_line_never_a_black_square(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    await server_chooses(stack, flagged_output="remove")
    message, _ = await finished(fake, stack)
    assert REMOVED_LINE in message["content"]
    assert (message["attachments"], message["components"]) == ([], [])


async def show_again(fake: FakeDiscord, job_id: str, channel_id: str) -> Json:
    record = await fake.slash("show", [{"name": "job_id", "type": 3, "value": job_id}], channel_id=channel_id)
    return await fake.wait_message(
        lambda m: m["id"] == record.original_id and (bool(m["attachments"]) or m["content"].startswith("⚠️"))
    )


@pytest.mark.usefixtures("flag_all")
async def test_show_posts_a_flagged_result_again_only_as_the_server_has_it_there(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    """/show posts a finished job again, and the worker does not check it again: a picture the server removes is
    never posted again, one it spoilers goes behind a spoiler, and an NSFW channel follows the NSFW setting."""
    await server_chooses(stack, flagged_output="remove")
    message, view = await finished(fake, stack)
    assert REMOVED_LINE in message["content"]
    refused = await show_again(fake, view.job_id, CHANNEL_ID)
    assert "flagged by the image check" in refused["content"]
    assert refused["attachments"] == []
    await server_chooses(stack, flagged_output_nsfw="remove")
    refused = await show_again(fake, view.job_id, NSFW_CHANNEL_ID)
    assert refused["attachments"] == []

    await server_chooses(stack, flagged_output="spoiler", flagged_output_nsfw="spoiler")
    for channel_id in (CHANNEL_ID, NSFW_CHANNEL_ID):
        again = await show_again(fake, view.job_id, channel_id)
        assert attachment_names(again) == [f"SPOILER_impasto_{view.job_id}.png"]
    await server_chooses(stack, flagged_output_nsfw="deliver")
    again = await show_again(fake, view.job_id, NSFW_CHANNEL_ID)
    assert attachment_names(again) == [f"impasto_{view.job_id}.png"]


def previews(fake: FakeDiscord, channel_id: str) -> list[bytes]:
    edits = [r for r in fake.requests if r.method == "PATCH" and "%)" in str((r.body or {}).get("content"))]
    return [data for r in edits if channel_id in r.path for _, data in r.files]


def has_grey(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        grey = image.convert("L")
    return sum(grey.histogram()[17:240]) > 0


@pytest.mark.parametrize(("channel_id", "blurred"), [(CHANNEL_ID, True), (NSFW_CHANNEL_ID, False)])
async def test_previews_are_blurred_outside_nsfw_channels(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack, channel_id: str, blurred: bool
) -> None:
    stack.renderer_factory = lambda: CheckerRenderer(steps=3)
    record = await fake.slash("imagine", prompt_option("a lighthouse"), channel_id=channel_id)
    message = await waiting(fake, record)
    await shown(fake, stack, message)
    await stack.drain()
    await fake.wait_message(lambda m: m["id"] == message["id"] and bool(m["components"]))
    sent = previews(fake, channel_id)
    assert sent
    assert all(has_grey(p) is blurred for p in sent)


def refusals(fake: FakeDiscord, words: str) -> int:
    return sum(m["content"].startswith("⚠️") and words in m["content"] for m in fake.messages.values())


@pytest.mark.usefixtures("flag_all")
async def test_u1_of_a_flagged_grid_is_posted_only_as_the_server_has_it_there(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    """U1–U4 post a grid's picture again (the worker does not check it again): behind a spoiler where the grid was,
    refused once the server removes such pictures, while a review is pending, or after a rejection."""
    grid, view = await finished(fake, stack)
    assert attachment_names(grid) == [f"SPOILER_impasto_{view.job_id}.png"]
    await fake.press(grid["id"], fake.button(grid, "U1")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #1" in m["content"] and bool(m["attachments"]))
    pick = single["attachments"][0]["filename"]
    assert pick.startswith("SPOILER_impasto_")
    assert pick != f"SPOILER_impasto_{view.job_id}.png"

    await server_chooses(stack, flagged_output="remove")
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    await fake.wait_for(lambda: refusals(fake, "flagged by the image check") == 1)
    assert not any("Image #2" in m["content"] for m in fake.messages.values())

    await server_chooses(stack, flagged_output="spoiler")
    async with stack.service.sessions() as session, session.begin():
        held = await mod.hold(session, job_id=view.job_id, user_id=1, guild_id=None, channel_id=None, nsfw_score=1.0)
    await fake.press(grid["id"], fake.button(grid, "U3")["custom_id"])
    await fake.wait_for(lambda: refusals(fake, "held for review") == 1)
    async with stack.service.sessions() as session, session.begin():
        moderator = await mod.user_id_for(session, "discord", "6000")
        assert await mod.decide(session, held.id, moderator_id=moderator, approve=False) is not None
    await fake.press(grid["id"], fake.button(grid, "U4")["custom_id"])
    await fake.wait_for(lambda: refusals(fake, "flagged by the image check") == 2)
    assert not any(f"Image #{n}" in m["content"] for m in fake.messages.values() for n in (2, 3, 4))


def dms_of(fake: FakeDiscord, user_id: str, job_id: str) -> list[Json]:
    return [
        m
        for m in fake.messages.values()
        if m["channel_id"] == f"9{user_id[1:]}" and m["content"].startswith(f"**Job ID**: {job_id}")
    ]


@pytest.mark.usefixtures("flag_all")
async def test_envelope_sends_a_flagged_result_only_as_the_server_has_it(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    """✉️ sends the job to whoever reacts, by DM (not an NSFW place): a picture the server spoilers goes behind a
    spoiler, one it removes never (the details come without it, and say why); a stealth job only to its owner."""
    message, view = await finished(fake, stack)
    await fake.react(message["id"], "✉️", user_id=BOB)
    [dm] = await fake.wait_for(lambda: dms_of(fake, BOB, view.job_id))
    assert dm["attachments"]
    assert all(name.startswith("SPOILER_") for name in attachment_names(dm))

    await server_chooses(stack, flagged_output="remove")
    await fake.react(message["id"], "✉️", user_id=BOB)
    dms = await fake.wait_for(lambda: dms_of(fake, BOB, view.job_id)[1:])
    assert dms[0]["attachments"] == []
    assert "flagged by the image check" in dms[0]["content"]

    await server_chooses(stack, flagged_output="spoiler")
    async with stack.service.sessions() as session, session.begin():
        await session.execute(update(Job).where(Job.id == view.job_id).values(visibility="stealth"))
    await fake.react(message["id"], "✉️", user_id=BOB)  # not Bob's: nothing is sent
    await fake.react(message["id"], "✉️", user_id=ALICE)
    [mine] = await fake.wait_for(lambda: dms_of(fake, ALICE, view.job_id))
    assert all(name.startswith("SPOILER_") for name in attachment_names(mine))
    assert len(dms_of(fake, BOB, view.job_id)) == 2  # reactions are handled in order: Bob's came first
