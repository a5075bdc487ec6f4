"""The moderators' review queue and appeals on Telegram (PTB against the fake Bot API, the delivery core, the real
job service on SQLite, a real worker; the tiny classifier at threshold 0 flags every picture):

``/mod channel`` gives a one-time code, ``/mod link CODE`` from the admin chat links it; a held result goes there as a
spoiler photo with Approve / Reject; approve → posted in the group; reject → the user is told; a non-administrator's
press is refused; two presses → one outcome; a refused prompt's Appeal → approve → the job runs and its result arrives
in the group; deny → the user is told; /mod log and the audit feed.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_botapi import Call
from sqlalchemy import func, select
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.moderation.admission_check import ModerationCheck
from impasto.bots.service.requester import Requester
from impasto.bots.telegram.handlers import REVIEW_KEY
from impasto.bots.telegram.posting import Where, start_progress
from impasto.bots.telegram.review_queue import TelegramReview
from impasto.bots.web.links import verify
from impasto.engine.nsfw import load_classifier
from impasto.queue.moderation.policy import load_policy
from impasto.storage import moderation as mod
from impasto.storage.models import APPEAL, APPROVED, REJECTED, Job, ModerationEvent

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

GROUP = -1008008
ADMIN, OTHER_ADMIN, MEMBER = 42, 43, 77
COMMAND_MESSAGE = 7


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TelegramStack]:
    async with telegram_stack(tmp_path, request.param) as stack:
        stack.classifier_factory = lambda: load_classifier("tiny", tmp_path / "models")
        stack.nsfw_threshold = 0.0
        policy = load_policy()
        stack.moderation = policy
        stack.service.admission.checks.append(ModerationCheck(stack.service.sessions, policy))
        stack.api.admins.update({ADMIN, OTHER_ADMIN})
        await stack.stop_bot()  # restarted with /mod and the review queue
        await stack.start_bot()
        yield stack


async def say(stack: TelegramStack, text: str, *, user_id: int, chat_id: int = GROUP) -> Call:
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.message(text, chat_id=chat_id, user_id=user_id, name=f"u{user_id}"))
    [answer] = await stack.api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == chat_id, after=mark)
    return answer


async def press(stack: TelegramStack, data: str, message: dict[str, Any], *, user_id: int) -> Call:
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.callback(data, message, user_id=user_id, name=f"u{user_id}"))
    [answer] = await stack.api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
    return answer


async def link_admin_chat(stack: TelegramStack) -> None:
    answer = await say(stack, "/mod channel", user_id=ADMIN)
    code = re.search(r"/mod link ([0-9a-f]{8})", str(answer.params["text"]))
    assert code is not None
    assert "only the administrator" in str(
        (await say(stack, f"/mod link {code[1]}", user_id=MEMBER, chat_id=MEMBER)).params["text"]
    )
    answer = await say(stack, "/mod channel", user_id=ADMIN)
    code = re.search(r"/mod link ([0-9a-f]{8})", str(answer.params["text"]))
    assert code is not None
    linked = await say(stack, f"/mod link {code[1]}", user_id=ADMIN, chat_id=ADMIN)
    assert "linked" in str(linked.params["text"])
    again = await say(stack, f"/mod link {code[1]}", user_id=ADMIN, chat_id=ADMIN)
    assert "unknown or expired" in str(again.params["text"])  # one-time


async def imagine_in_the_group(stack: TelegramStack, prompt: str) -> tuple[str, str]:
    """MEMBER's /imagine of ``prompt`` (a unique tag appended) in the group, its progress message started as the
    command's answer; the job and the tag. Nothing has rendered yet."""
    tag = f"tag{secrets.token_hex(4)}"
    who = Requester(platform="telegram", user_id=str(MEMBER), guild_id=str(GROUP), channel_id=str(GROUP))
    [ticket] = await stack.service.imagine(who, f"{prompt} {tag}", idempotency_key=tag)
    assert stack.application is not None
    assert stack.delivery is not None
    view = await stack.service.job(ticket.job_id)
    await start_progress(stack.application.bot, stack.delivery, Where(GROUP, None, COMMAND_MESSAGE), view, ticket)
    return ticket.job_id, tag


async def held(stack: TelegramStack) -> tuple[str, str]:
    async with stack.service.sessions() as session, session.begin():
        group = await mod.guild_id_for(session, "telegram", str(GROUP))
        await mod.update_settings(session, group, flagged_output="hold")
    job_id, tag = await imagine_in_the_group(stack, "a lighthouse")
    await stack.drain()
    await stack.api.wait_for(
        lambda c: (
            c.method == "editMessageText" and tag in str(c.params["text"]) and "held for review" in c.params["text"]
        )
    )
    return job_id, tag


def buttons(call: Call) -> dict[str, str]:
    markup = call.params.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


async def test_a_held_result_goes_to_the_linked_chat_and_approve_posts_it_in_the_group(stack: TelegramStack) -> None:
    await link_admin_chat(stack)
    job_id, tag = await held(stack)
    [post] = await stack.api.wait_for(lambda c: c.method == "sendPhoto" and c.chat_id == ADMIN)
    assert post.params["has_spoiler"] is True
    assert job_id in str(post.params["caption"])
    approve, reject = buttons(post)["Approve"], buttons(post)["Reject"]

    refused = await press(stack, approve, post.result, user_id=MEMBER)
    assert "only this server's moderators" in str(refused.params["text"])
    assert not [c for c in stack.api.calls if c.method == "sendPhoto" and c.chat_id == GROUP]

    await press(stack, approve, post.result, user_id=ADMIN)
    [photo] = await stack.api.wait_for(
        lambda c: c.method == "sendPhoto" and c.chat_id == GROUP and tag in str(c.params.get("caption"))
    )
    assert photo.params.get("has_spoiler") in (None, False)
    await stack.api.wait_for(lambda c: c.method == "editMessageCaption" and "approved" in str(c.params["caption"]))
    late = await press(stack, reject, post.result, user_id=OTHER_ADMIN)  # a second moderator, at the same time
    assert "already approved" in str(late.params["text"])
    async with stack.service.sessions() as session:
        kinds = list(await session.scalars(select(ModerationEvent.kind).where(ModerationEvent.job_id == job_id)))
    assert kinds.count(APPROVED) == 1
    assert REJECTED not in kinds


async def test_reject_tells_the_user_and_posts_nothing(stack: TelegramStack) -> None:
    await link_admin_chat(stack)
    _job_id, tag = await held(stack)
    [post] = await stack.api.wait_for(lambda c: c.method == "sendPhoto" and c.chat_id == ADMIN)
    await press(stack, buttons(post)["Reject"], post.result, user_id=ADMIN)
    await stack.api.wait_for(
        lambda c: c.method == "editMessageText" and tag in str(c.params["text"]) and "rejected" in c.params["text"]
    )
    assert not [c for c in stack.api.calls if c.method == "sendPhoto" and c.chat_id == GROUP]


async def appeal(stack: TelegramStack) -> Call:
    """A refused prompt in the group, appealed by its author; the appeal as posted in the linked chat."""
    refusal = await say(stack, "/imagine a gory battlefield, severed head", user_id=MEMBER)
    assert "gore" in str(refusal.params["text"])
    data = buttons(refusal)["Appeal"]
    not_theirs = await press(stack, data, refusal.result, user_id=ADMIN)
    assert "not yours" in str(not_theirs.params["text"])
    await press(stack, data, refusal.result, user_id=MEMBER)
    await stack.api.wait_for(lambda c: c.method == "editMessageReplyMarkup" and c.chat_id == GROUP)
    again = await press(stack, data, refusal.result, user_id=MEMBER)  # once per refusal
    assert "appealed already" in str(again.params["text"])
    [post] = await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == ADMIN and "Appeal by" in str(c.params["text"])
    )
    assert "severed head" in str(post.params["text"])
    async with stack.service.sessions() as session:
        assert await session.scalar(select(func.count()).where(ModerationEvent.kind == APPEAL)) == 1
    return post


async def test_an_approved_appeal_runs_the_job_and_its_result_arrives_in_the_group(stack: TelegramStack) -> None:
    await link_admin_chat(stack)
    post = await appeal(stack)
    await press(stack, buttons(post)["Approve"], post.result, user_id=ADMIN)
    await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == GROUP and "approved your appeal" in str(c.params["text"])
    )
    stack.nsfw_threshold = 1.0  # the picture passes: the appeal was about the prompt
    await stack.drain()
    [photo] = await stack.api.wait_for(
        lambda c: c.method == "sendPhoto" and c.chat_id == GROUP and "severed head" in str(c.params.get("caption"))
    )
    assert photo.params.get("reply_markup")
    async with stack.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 1


async def test_a_denied_appeal_tells_the_user_and_runs_nothing(stack: TelegramStack) -> None:
    await link_admin_chat(stack)
    post = await appeal(stack)
    await press(stack, buttons(post)["Deny"], post.result, user_id=ADMIN)
    await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == GROUP and "stays refused" in str(c.params["text"])
    )
    async with stack.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0


async def test_mod_log_and_the_audit_feed(stack: TelegramStack) -> None:
    assert stack.application is not None
    review = stack.application.bot_data[REVIEW_KEY]
    assert isinstance(review, TelegramReview)
    await review.redis.set(review.feed._key("cursor"), 0)
    await link_admin_chat(stack)
    await say(stack, "/mod word add <b>lighthouse</b>", user_id=ADMIN)
    assert await review.feed.once() >= 2  # the channel change and the word
    [line] = await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == ADMIN and "word+" in str(c.params["text"])
    )
    assert "&lt;b&gt;lighthouse" in str(line.params["text"])  # escaped
    assert await review.feed.once() == 0  # each line once
    log = await say(stack, "/mod log", user_id=ADMIN)
    assert "word+" in str(log.params["text"])
    assert "channel" in str(log.params["text"])
    refused = await say(stack, "/mod log", user_id=MEMBER)
    assert "administrators" in str(refused.params["text"])


@dataclass(frozen=True)
class DeskWeb:
    web_url: str = "https://impasto.example"
    web_secret_value: str = "desk-secret"


async def test_mod_desk_sends_the_link_privately(stack: TelegramStack) -> None:
    stack.web = DeskWeb()
    await stack.stop_bot()
    await stack.start_bot()
    mark = len(stack.api.calls)
    answer = await say(stack, "/mod desk", user_id=ADMIN)
    assert "privately" in str(answer.params["text"])
    [private] = await stack.api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == ADMIN, after=mark)
    found = re.search(r'href="(https://impasto\.example/desk\?t=[^"]+)"', str(private.params["text"]))
    assert found is not None
    grant = verify("desk-secret", html.unescape(found[1]).partition("?t=")[2], "desk")
    assert (grant.platform, grant.user_id, grant.guild_id) == ("telegram", str(ADMIN), str(GROUP))
    refused = await say(stack, "/mod desk", user_id=MEMBER)
    assert "administrators" in str(refused.params["text"])


async def group_grid(stack: TelegramStack, prompt: str) -> tuple[Call, str]:
    """MEMBER's finished grid in the group (its picture passes the classifier); the posted photo and its job."""
    job_id, tag = await imagine_in_the_group(stack, prompt)
    stack.nsfw_threshold = 1.0
    await stack.drain()
    [grid] = await stack.api.wait_for(
        lambda c: c.method == "sendPhoto" and c.chat_id == GROUP and tag in str(c.params.get("caption"))
    )
    return grid, job_id


async def appeal_the_refusal_and_approve(stack: TelegramStack, *, after: int, quoted: str, parent_id: str) -> Job:
    """The refusal line posted in the group since ``after`` carries the Appeal button: MEMBER appeals, the appeal in the
    linked chat quotes ``quoted``, ADMIN approves and the group is told; the job the approval ran (a child of
    ``parent_id``)."""
    [refusal] = await stack.api.wait_for(
        lambda c: (
            c.method == "sendMessage" and c.chat_id == GROUP and "this prompt was refused" in str(c.params["text"])
        ),
        after=after,
    )
    await press(stack, buttons(refusal)["Appeal"], refusal.result, user_id=MEMBER)
    [post] = await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == ADMIN and "Appeal by" in str(c.params["text"])
    )
    assert quoted in str(post.params["text"])
    await press(stack, buttons(post)["Approve"], post.result, user_id=ADMIN)
    await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == GROUP and "approved your appeal" in str(c.params["text"])
    )
    async with stack.service.sessions() as session:
        child = await session.scalar(select(Job).where(Job.parent_id == parent_id))
    assert child is not None
    return child


async def test_a_refused_button_press_in_a_group_carries_an_appeal_that_reruns_the_press(stack: TelegramStack) -> None:
    """A button re-runs its job's prompt through the policy: refused (the group added a word meanwhile), its line in
    the group carries the Appeal button; approved, the press itself runs (a variation of that job, not an /imagine)."""
    await link_admin_chat(stack)
    grid, job_id = await group_grid(stack, "a windmill")
    await say(stack, "/mod word add windmill", user_id=ADMIN)
    mark = len(stack.api.calls)
    await press(stack, buttons(grid)["V1"], grid.result, user_id=MEMBER)
    child = await appeal_the_refusal_and_approve(stack, after=mark, quoted="a windmill tag", parent_id=job_id)
    assert (child.action, child.image_index) == ("v", 1)


async def test_mod_review_and_mod_log_work_in_the_linked_admin_chat(stack: TelegramStack) -> None:
    """The moderators work in the admin chat that /mod link linked: /mod review and /mod log answer there for the
    group; someone who administers no group reporting there is refused."""
    await link_admin_chat(stack)
    await appeal(stack)
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.message("/mod review", chat_id=ADMIN, user_id=ADMIN, name=f"u{ADMIN}"))
    [listed] = await stack.api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == ADMIN and "1 waiting for review" in str(c.params["text"]),
        after=mark,
    )
    assert "severed head" in str(listed.params["text"])
    [reposted] = await stack.api.wait_for(
        lambda c: (
            c.method == "sendMessage"
            and c.chat_id == ADMIN
            and str(c.params["text"]).startswith("Appeal by")
            and "Approve" in buttons(c)
        ),
        after=mark,
    )
    assert "severed head" in str(reposted.params["text"])
    logged = await say(stack, f"/mod log {MEMBER}", user_id=ADMIN, chat_id=ADMIN)
    assert "refused" in str(logged.params["text"])
    assert "appeal" in str(logged.params["text"])
    # MEMBER's private chat reports for no group: /mod stays a group command there.
    refused = await say(stack, "/mod review", user_id=MEMBER, chat_id=MEMBER)
    assert "waiting for review" not in str(refused.params["text"])
    # A member posting in the linked chat (an admin group would have them) is not the group's administrator.
    stack.api.admins.discard(OTHER_ADMIN)
    not_admin = await say(stack, "/mod log", user_id=OTHER_ADMIN, chat_id=ADMIN)
    assert "administrators of the groups that report to this chat" in str(not_admin.params["text"])


async def test_a_refused_remix_edit_in_a_group_carries_an_appeal_that_reruns_the_edit(stack: TelegramStack) -> None:
    """With Remix on, V1 asks for the edited prompt; the edit refused, its line in the group carries the Appeal button;
    approved, the same press with the same edit runs."""
    await link_admin_chat(stack)
    grid, job_id = await group_grid(stack, "a harbour")
    await stack.service.update_settings(
        Requester(platform="telegram", user_id=str(MEMBER), guild_id=str(GROUP), channel_id=str(GROUP)), remix=True
    )
    mark = len(stack.api.calls)
    await press(stack, buttons(grid)["V1"], grid.result, user_id=MEMBER)
    [question] = await stack.api.wait_for(
        lambda c: (
            c.method == "sendMessage" and c.chat_id == GROUP and "force_reply" in str(c.params.get("reply_markup"))
        ),
        after=mark,
    )
    mark = len(stack.api.calls)
    edit = stack.api.message(
        "a gory harbour, severed head", chat_id=GROUP, user_id=MEMBER, name=f"u{MEMBER}", reply_to=question.result
    )
    await stack.api.push(edit)
    child = await appeal_the_refusal_and_approve(stack, after=mark, quoted="severed head", parent_id=job_id)
    assert (child.action, child.image_index, child.prompt) == ("v", 1, "a gory harbour, severed head")
