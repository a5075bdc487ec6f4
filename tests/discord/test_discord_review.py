"""The moderators' review queue and appeals on Discord (the real discord.py client on the fake Discord, the real core
on SQLite, a real worker; the tiny classifier at threshold 0 flags every picture):

held → posted in the moderators' channel behind a spoiler with Approve / Reject → approve → delivered where it was
asked; reject → the user's message says so; a member without Manage Messages is refused; two presses → one outcome;
a refused prompt's Appeal → the moderators' channel → approve → the job runs and its result arrives; deny → the
user is told; /mod log and the audit feed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from discord_stack import ServiceStack, service_stack
from fake_discord import BOB, CHANNEL_ID, GUILD_ID, PERMISSIONS, FakeDiscord
from sqlalchemy import func, select
from test_discord_flows import png, prompt_option, rendered, reply_to, shown, waiting

from impasto.bots.discord import texts
from impasto.bots.discord.app import ImpastoBot
from impasto.bots.moderation.admission_check import ModerationCheck
from impasto.bots.moderation.review import Review
from impasto.bots.service.delivery.core import HELD_LINE
from impasto.bots.web.links import verify
from impasto.engine.nsfw import load_classifier
from impasto.queue.moderation.policy import load_policy
from impasto.storage import moderation as mod
from impasto.storage.models import APPEAL, APPROVED, HELD, REJECTED, Job, ModerationEvent

Json = dict[str, Any]
MODERATOR = str(int(PERMISSIONS) | 1 << 13)  # a member's usual rights, with Manage Messages
MOD_CHANNEL = "3000000000000000007"
CAROL = "4000000000000000003"  # a second moderator


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceStack]:
    """The review queue's storage (decisions taken once, the queue, the feed's cursor) on both databases."""
    async with service_stack(tmp_path, request.param) as stack:
        yield stack


@pytest.fixture
async def modbot(start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack) -> ImpastoBot:
    policy = load_policy()
    stack.service.admission.checks.append(ModerationCheck(stack.service.sessions, policy))
    return await start_bot(moderation=policy)


@pytest.fixture
def flag_all(stack: ServiceStack, tmp_path: Path) -> None:
    stack.classifier_factory = lambda: load_classifier("tiny", tmp_path / "models")
    stack.nsfw_threshold = 0.0


async def mod_slash(fake: FakeDiscord, sub: str, options: list[Json] | None = None, **kw: Any) -> Json:
    """A moderator's /mod subcommand; its private answer."""
    kw.setdefault("permissions", MODERATOR)
    record = await fake.slash("mod", [{"name": sub, "type": 1, "options": options or []}], **kw)
    mid = await fake.wait_for(lambda: record.original_id)
    return await fake.wait_message(lambda m: m["id"] == mid and bool(m["content"]))


async def set_mod_channel(fake: FakeDiscord) -> None:
    answer = await mod_slash(fake, "channel", channel_id=MOD_CHANNEL)
    assert f"<#{MOD_CHANNEL}>" in answer["content"]
    assert answer["flags"] & 64


async def held_result(fake: FakeDiscord, stack: ServiceStack) -> tuple[Json, str]:
    async with stack.service.sessions() as session, session.begin():
        guild = await mod.guild_id_for(session, "discord", GUILD_ID)
        await mod.update_settings(session, guild, flagged_output="hold")
    record = await fake.slash("imagine", prompt_option("a lighthouse"))
    message = await waiting(fake, record)
    view = await shown(fake, stack, message)
    await stack.drain()
    held = await fake.wait_message(lambda m: m["id"] == message["id"] and HELD_LINE in m["content"])
    return held, view.job_id


def review_post(fake: FakeDiscord, job_id: str) -> Callable[[Json], bool]:
    shown_id = texts.escape(job_id)  # as Discord markdown shows it (an id may hold "_")
    return lambda m: m["channel_id"] == MOD_CHANNEL and shown_id in m["content"] and bool(m["components"])


@pytest.mark.usefixtures("flag_all")
async def test_a_held_result_goes_to_the_moderators_channel_and_approve_posts_it_where_it_was_asked(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    await set_mod_channel(fake)
    held, job_id = await held_result(fake, stack)
    post = await fake.wait_message(review_post(fake, job_id))
    assert [a["filename"] for a in post["attachments"]] == [f"SPOILER_review_{job_id}.png"]
    approve = fake.button(post, "Approve")["custom_id"]
    reject = fake.button(post, "Reject")["custom_id"]
    as_first_seen = copy.deepcopy(post)  # what a second moderator's client still shows while the first decides

    # A member without Manage Messages is refused, and nothing is decided.
    await fake.press(post["id"], approve, user_id=BOB)
    refused = await fake.wait_message(lambda m: "only this server's moderators" in m["content"])
    assert refused["flags"] & 64
    assert fake.messages[held["id"]]["components"] == []  # still held

    await fake.press(post["id"], approve, user_id=CAROL, permissions=MODERATOR)
    released = await fake.wait_message(lambda m: m["id"] == held["id"] and bool(m["components"]))
    assert [a["filename"] for a in released["attachments"]] == [f"impasto_{job_id}.png"]
    marked = await fake.wait_message(lambda m: m["id"] == post["id"] and "approved" in m["content"])
    assert marked["components"] == []

    # A second moderator pressing the same (stale) message is told it was decided; one decision row.
    fake.messages[post["id"]] = as_first_seen
    await fake.press(post["id"], reject, permissions=MODERATOR)
    await fake.wait_message(lambda m: "already approved" in m["content"] and m["flags"] & 64)
    async with stack.service.sessions() as session:
        kinds = list(await session.scalars(select(ModerationEvent.kind).where(ModerationEvent.job_id == job_id)))
        moderator = await session.scalar(select(ModerationEvent.moderator_id).where(ModerationEvent.kind == APPROVED))
    assert kinds.count(APPROVED) == 1
    assert REJECTED not in kinds
    assert moderator is not None  # audited: who


@pytest.mark.usefixtures("flag_all")
async def test_reject_tells_the_user_in_one_line_and_posts_nothing(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    await set_mod_channel(fake)
    held, job_id = await held_result(fake, stack)
    post = await fake.wait_message(review_post(fake, job_id))
    await fake.press(post["id"], fake.button(post, "Reject")["custom_id"], permissions=MODERATOR)
    told = await fake.wait_message(lambda m: m["id"] == held["id"] and "rejected" in m["content"])
    assert (told["attachments"], told["components"]) == ([], [])


@pytest.mark.usefixtures("flag_all")
async def test_mod_review_lists_and_reposts_privately_without_a_channel(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    held, job_id = await held_result(fake, stack)
    answer = await mod_slash(fake, "review")
    assert "1 waiting" in answer["content"]
    shown_id = texts.escape(job_id)
    assert shown_id in answer["content"]
    private = await fake.wait_message(lambda m: shown_id in m["content"] and bool(m["components"]) and m["flags"] & 64)
    await fake.press(private["id"], fake.button(private, "Approve")["custom_id"], permissions=MODERATOR)
    await fake.wait_message(lambda m: m["id"] == held["id"] and bool(m["components"]))


async def refused_with_appeal(fake: FakeDiscord) -> Json:
    record = await fake.slash("imagine", prompt_option("a gory battlefield, severed head"))
    mid = await fake.wait_for(lambda: record.original_id)
    refusal = await fake.wait_message(lambda m: m["id"] == mid and m["content"].startswith("⚠️"))
    assert "gore" in refusal["content"]
    return refusal


async def test_an_appeal_goes_to_the_moderators_and_approve_runs_the_job(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    await set_mod_channel(fake)
    refusal = await refused_with_appeal(fake)
    appeal = fake.button(refusal, "Appeal")["custom_id"]
    as_first_seen = copy.deepcopy(refusal)
    await fake.press(refusal["id"], appeal, user_id=BOB)  # not the refused user
    await fake.wait_message(lambda m: "appealed already, or it is not yours" in m["content"])
    await fake.press(refusal["id"], appeal)
    await fake.wait_message(lambda m: m["id"] == refusal["id"] and "moderators" in m["content"] and not m["components"])
    post = await fake.wait_message(
        lambda m: m["channel_id"] == MOD_CHANNEL and "Appeal by" in m["content"] and bool(m["components"])
    )
    assert "severed head" in post["content"]
    assert "gore" in post["content"]
    fake.messages[refusal["id"]] = as_first_seen  # pressed again from a client that still shows the button
    await fake.press(refusal["id"], appeal)  # once per refusal
    await fake.wait_for(lambda: sum("appealed already" in m["content"] for m in fake.messages.values()) >= 2)
    async with stack.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
        assert await session.scalar(select(func.count()).where(ModerationEvent.kind == APPEAL)) == 1

    await fake.press(post["id"], fake.button(post, "Approve")["custom_id"], permissions=MODERATOR)
    await fake.wait_message(lambda m: m["id"] == post["id"] and "approved" in m["content"])
    async with stack.service.sessions() as session:
        job_id = await session.scalar(select(Job.id))
    assert job_id is not None
    await stack.drain()
    opened = await reply_to(fake, refusal["id"])
    result = await fake.wait_message(lambda m: m["id"] == opened["id"] and bool(m["components"]))
    assert "severed head" in result["content"]
    dm = await fake.wait_message(lambda m: m["channel_id"] != CHANNEL_ID and "approved your appeal" in m["content"])
    assert dm["channel_id"] != MOD_CHANNEL
    # The waiver was for that approval only: the same prompt typed again is refused.
    again = await refused_with_appeal(fake)
    assert again["id"] != refusal["id"]


async def test_an_appealed_image_prompt_reruns_with_its_image(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    """An approved appeal makes the refused request again as it was asked: the attachment (an image prompt) goes
    with it, read from the store (the link Discord gave has expired by then)."""
    await set_mod_channel(fake)
    attachment = fake.add_attachment("ref.png", png("yellow", 32))
    options = [
        *prompt_option("a gory battlefield, severed head"),
        {"name": "image", "type": 11, "value": attachment["id"]},
    ]
    record = await fake.slash("imagine", options, attachments=[attachment])
    mid = await fake.wait_for(lambda: record.original_id)
    refusal = await fake.wait_message(lambda m: m["id"] == mid and m["content"].startswith("⚠️"))
    assert "gore" in refusal["content"]
    del fake.files[attachment["id"]]  # the CDN link no longer serves the file
    await fake.press(refusal["id"], fake.button(refusal, "Appeal")["custom_id"])
    post = await fake.wait_message(
        lambda m: m["channel_id"] == MOD_CHANNEL and "Appeal by" in m["content"] and bool(m["components"])
    )
    await fake.press(post["id"], fake.button(post, "Approve")["custom_id"], permissions=MODERATOR)
    await fake.wait_message(lambda m: m["id"] == post["id"] and "approved" in m["content"])
    async with stack.service.sessions() as session:
        job = await session.scalar(select(Job))
    assert job is not None
    assert (job.action, job.prompt, job.channel_id) == ("imagine", "a gory battlefield, severed head", CHANNEL_ID)
    assert job.params["image_prompt_urls"] == [attachment["url"]]
    assert [stack.images.get(str(k)) for k in job.params["image_prompts"]] == [png("yellow", 32)]
    await stack.drain()
    opened = await reply_to(fake, refusal["id"])
    await fake.wait_message(lambda m: m["id"] == opened["id"] and bool(m["components"]))


async def test_a_refused_button_press_carries_an_appeal_that_reruns_the_press(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    """A button re-runs its job's prompt through the policy: refused (the server added a word meanwhile), the line
    only the presser sees carries the Appeal button; approved, the press itself runs (V1 of that job)."""
    await set_mod_channel(fake)
    grid = await rendered(fake, stack, await waiting(fake, await fake.slash("imagine", prompt_option("a windmill"))))
    parent = await shown(fake, stack, grid)
    word = [{"name": "word", "type": 3, "value": "windmill"}]
    assert "windmill" in (await mod_slash(fake, "word_add", word))["content"]
    await fake.press(grid["id"], fake.button(grid, "V1")["custom_id"])
    refusal = await fake.wait_message(
        lambda m: m["content"].startswith("⚠️") and "this prompt was refused" in m["content"] and bool(m["components"])
    )
    assert refusal["flags"] & 64  # the presser's alone
    await fake.press(refusal["id"], fake.button(refusal, "Appeal")["custom_id"])
    post = await fake.wait_message(
        lambda m: m["channel_id"] == MOD_CHANNEL and "Appeal by" in m["content"] and bool(m["components"])
    )
    await fake.press(post["id"], fake.button(post, "Approve")["custom_id"], permissions=MODERATOR)
    await fake.wait_message(lambda m: m["id"] == post["id"] and "approved" in m["content"])
    async with stack.service.sessions() as session:
        child = await session.scalar(select(Job).where(Job.parent_id == parent.job_id))
    assert child is not None
    assert (child.action, child.image_index) == ("v", 1)


async def test_a_denied_appeal_tells_the_user_and_runs_nothing(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    await set_mod_channel(fake)
    refusal = await refused_with_appeal(fake)
    await fake.press(refusal["id"], fake.button(refusal, "Appeal")["custom_id"])
    post = await fake.wait_message(lambda m: m["channel_id"] == MOD_CHANNEL and "Appeal by" in m["content"])
    await fake.press(post["id"], fake.button(post, "Deny")["custom_id"], permissions=MODERATOR)
    await fake.wait_message(lambda m: "prompt stays refused" in m["content"])
    async with stack.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
        assert await session.scalar(select(func.count()).where(ModerationEvent.kind == REJECTED)) == 1


async def test_mod_log_and_the_audit_feed(fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack) -> None:
    await set_mod_channel(fake)
    word = [{"name": "word", "type": 3, "value": "@everyone lighthouse"}]
    await mod_slash(fake, "word_add", word)
    feed = await fake.wait_message(lambda m: m["channel_id"] == MOD_CHANNEL and "word+" in m["content"])
    assert "@everyone" not in feed["content"]  # escaped: no ping
    assert feed["allowed_mentions"]["parse"] == []
    log = await mod_slash(fake, "log")
    assert "word+" in log["content"]
    assert "channel" in log["content"]
    assert HELD not in log["content"]


@pytest.mark.usefixtures("flag_all")
async def test_a_decision_taken_on_the_web_desk_is_posted_by_the_bot(
    fake: FakeDiscord, modbot: ImpastoBot, stack: ServiceStack
) -> None:
    held, job_id = await held_result(fake, stack)
    desk = Review(stack.service, None)  # as the web front door has it: no chat client to post with
    item = await desk.held_item(job_id)
    assert item is not None
    decision = await desk.decide(item.id, "discord", CAROL, approve=True)
    assert decision.outcome == "approved"
    released = await fake.wait_message(lambda m: m["id"] == held["id"] and bool(m["components"]))  # the feed's turn
    assert [a["filename"] for a in released["attachments"]] == [f"impasto_{job_id}.png"]


async def test_mod_desk_sends_a_private_link_for_this_server(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack
) -> None:
    await start_bot(moderation=load_policy(), web=DeskWeb("https://impasto.example"))
    answer = await mod_slash(fake, "desk")
    assert answer["flags"] & 64
    found = re.search(r"<(https://impasto\.example/desk\?t=[^>]+)>", answer["content"])
    assert found is not None
    grant = verify("desk-secret", found[1].partition("?t=")[2], "desk")
    assert (grant.platform, grant.guild_id) == ("discord", GUILD_ID)


@dataclass(frozen=True)
class DeskWeb:
    web_url: str
    web_secret_value: str = "desk-secret"
