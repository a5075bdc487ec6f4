"""A result the worker's classifier flagged, on Telegram (PTB against the fake Bot API, the delivery core with
``TelegramSurface``, the real job service on SQLite and a real worker with the tiny classifier: threshold 0 flags every
picture): ``has_spoiler`` by default, held for review (and posted on approval), removed, delivered where the group's
administrators allowed NSFW."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fake_botapi import Call
from test_telegram_flows import buttons
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.service.delivery.core import REMOVED_LINE
from impasto.bots.service.requester import Requester
from impasto.bots.telegram.posting import Where, start_progress
from impasto.engine.nsfw import load_classifier
from impasto.storage import moderation as mod

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

GROUP = -1007007  # a group chat: its own moderation settings
COMMAND_MESSAGE = 7


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[TelegramStack]:
    async with telegram_stack(tmp_path) as stack:
        stack.classifier_factory = lambda: load_classifier("tiny", tmp_path / "models")
        stack.nsfw_threshold = 0.0
        await stack.start_bot()
        try:
            yield stack
        finally:
            await stack.stop_bot()


async def group_chooses(stack: TelegramStack, **settings: object) -> None:
    async with stack.service.sessions() as session, session.begin():
        group = await mod.guild_id_for(session, "telegram", str(GROUP))
        await mod.update_settings(session, group, **settings)  # type: ignore[arg-type]


async def rendered(stack: TelegramStack) -> tuple[str, str]:
    """A job asked in the group, its progress message posted, rendered: (job id, a word of its prompt)."""
    tag = f"tag{secrets.token_hex(4)}"
    who = Requester(platform="telegram", user_id="42", display_name="Alice", guild_id=str(GROUP), channel_id=str(GROUP))
    [ticket] = await stack.service.imagine(who, f"a lighthouse {tag}", idempotency_key=tag)
    assert stack.application is not None
    assert stack.delivery is not None
    view = await stack.service.job(ticket.job_id)
    await start_progress(stack.application.bot, stack.delivery, Where(GROUP, None, COMMAND_MESSAGE), view, ticket)
    await stack.drain()
    return ticket.job_id, tag


def about(tag: str, method: str) -> Callable[[Call], bool]:
    def matches(call: Call) -> bool:
        text = call.params.get("text") or call.params.get("caption") or ""
        return call.method == method and tag in str(text) and isinstance(call.result, dict)

    return matches


async def test_a_flagged_result_goes_behind_a_spoiler(stack: TelegramStack) -> None:
    job_id, tag = await rendered(stack)
    [photo] = await stack.api.wait_for(lambda c: about(tag, "sendPhoto")(c) and job_id in c.params["caption"])
    assert photo.params.get("has_spoiler") is True


async def test_where_administrators_allowed_nsfw_it_is_posted_as_it_is(stack: TelegramStack) -> None:
    await group_chooses(stack, nsfw_chat=True)
    job_id, tag = await rendered(stack)
    [photo] = await stack.api.wait_for(lambda c: about(tag, "sendPhoto")(c) and job_id in c.params["caption"])
    assert photo.params.get("has_spoiler") in (None, False)


async def test_a_held_result_is_one_line_until_released(stack: TelegramStack) -> None:
    await group_chooses(stack, flagged_output="hold")
    job_id, tag = await rendered(stack)
    await stack.api.wait_for(
        lambda c: about(tag, "editMessageText")(c) and "your result is held for review" in c.params["text"]
    )
    assert not [c for c in stack.api.calls if about(tag, "sendPhoto")(c) and job_id in c.params["caption"]]

    assert stack.delivery is not None
    assert await stack.delivery.release_held(job_id)
    [photo] = await stack.api.wait_for(lambda c: about(tag, "sendPhoto")(c) and job_id in c.params["caption"])
    assert photo.params.get("has_spoiler") in (None, False)
    assert not await stack.delivery.release_held(job_id)


async def test_a_removed_result_is_one_line(stack: TelegramStack) -> None:
    await group_chooses(stack, flagged_output="remove")
    job_id, tag = await rendered(stack)
    await stack.api.wait_for(lambda c: about(tag, "editMessageText")(c) and REMOVED_LINE in c.params["text"])
    assert not [c for c in stack.api.calls if about(tag, "sendPhoto")(c) and job_id in c.params["caption"]]


async def show_again(stack: TelegramStack, job_id: str) -> Call:
    """/show in the group: the photo posted again, or the one-line refusal — the bot's reply to this very /show (under
    load an earlier /show's photo can still be on its way, or sent again after a timeout)."""
    mark = len(stack.api.calls)
    update = stack.api.message(f"/show {job_id}", chat_id=GROUP)
    asked = update["message"]["message_id"]
    await stack.api.push(update)
    [reply] = await stack.api.wait_for(
        lambda c: (
            c.method in ("sendMessage", "sendPhoto")
            and c.params.get("chat_id") in (GROUP, str(GROUP))
            and (c.params.get("reply_parameters") or {}).get("message_id") == asked
        ),
        after=mark,
    )
    return reply


async def test_show_posts_a_flagged_result_again_only_as_the_group_has_it(stack: TelegramStack) -> None:
    """/show posts a finished job again, and the worker does not check it again: a picture the group removes is never
    posted again, one it spoilers goes behind the spoiler, and where NSFW is allowed the NSFW setting applies."""
    await group_chooses(stack, flagged_output="remove")
    job_id, tag = await rendered(stack)
    await stack.api.wait_for(lambda c: about(tag, "editMessageText")(c) and REMOVED_LINE in c.params["text"])
    refused = await show_again(stack, job_id)
    assert refused.method == "sendMessage"
    assert "flagged by the image check" in refused.params["text"]

    await group_chooses(stack, flagged_output="spoiler")
    again = await show_again(stack, job_id)
    assert (again.method, again.params.get("has_spoiler")) == ("sendPhoto", True)

    await group_chooses(stack, nsfw_chat=True)  # the NSFW setting: delivered as it is by default
    again = await show_again(stack, job_id)
    assert again.method == "sendPhoto"
    assert again.params.get("has_spoiler") in (None, False)
    await group_chooses(stack, flagged_output_nsfw="remove")
    refused = await show_again(stack, job_id)
    assert refused.method == "sendMessage"
    assert "flagged by the image check" in refused.params["text"]


async def press_again(stack: TelegramStack, grid: Call, label: str) -> Call:
    """U1–U4 of the grid pressed in the group: that single's photo ("Image #N", not an earlier press's photo sent
    again after a timeout), or the one-line refusal."""
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.callback(buttons(grid)[label], grid.result))
    single = f"Image #{label.removeprefix('U')}"

    def answers(c: Call) -> bool:
        if c.params.get("chat_id") not in (GROUP, str(GROUP)):
            return False
        return c.method == "sendMessage" or (c.method == "sendPhoto" and single in str(c.params.get("caption")))

    [reply] = await stack.api.wait_for(answers, after=mark)
    return reply


async def test_u1_of_a_flagged_grid_is_posted_only_as_the_group_has_it(stack: TelegramStack) -> None:
    """U1–U4 post a grid's picture again (the worker does not check it again): behind the spoiler where the grid was,
    refused once the group removes such pictures, and while the grid's result waits for review."""
    job_id, tag = await rendered(stack)
    [grid] = await stack.api.wait_for(lambda c: about(tag, "sendPhoto")(c) and job_id in c.params["caption"])
    assert grid.params.get("has_spoiler") is True
    single = await press_again(stack, grid, "U1")
    assert (single.method, single.params.get("has_spoiler")) == ("sendPhoto", True)

    await group_chooses(stack, flagged_output="remove")
    refused = await press_again(stack, grid, "U2")
    assert refused.method == "sendMessage"
    assert "flagged by the image check" in refused.params["text"]

    await group_chooses(stack, flagged_output="spoiler")
    async with stack.service.sessions() as session, session.begin():
        await mod.hold(session, job_id=job_id, user_id=1, guild_id=None, channel_id=None, nsfw_score=1.0)
    refused = await press_again(stack, grid, "U3")
    assert refused.method == "sendMessage"
    assert "held for review" in refused.params["text"]


async def press_file(stack: TelegramStack, grid: Call) -> Call:
    """📄 Full-res file under the grid: the document sent, or the press answered with the one-line refusal."""
    mark = len(stack.api.calls)
    press = stack.api.callback(buttons(grid)["📄 Full-res file"], grid.result)
    pressed = press["callback_query"]["id"]
    await stack.api.push(press)
    [answer] = await stack.api.wait_for(
        lambda c: c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == pressed, after=mark
    )
    if answer.params.get("show_alert"):
        return answer
    [document] = await stack.api.wait_method("sendDocument", after=mark)
    return document


async def test_the_full_res_file_of_a_flagged_result_follows_the_group(stack: TelegramStack) -> None:
    """The file posts the picture again, and a document has no spoiler: refused where the group spoilers (the photo
    behind its spoiler stays the way to see it), or removes; sent where the picture is delivered as it is."""
    job_id, tag = await rendered(stack)
    [grid] = await stack.api.wait_for(lambda c: about(tag, "sendPhoto")(c) and job_id in c.params["caption"])
    refused = await press_file(stack, grid)
    assert refused.method == "answerCallbackQuery"
    assert "spoiler" in refused.params["text"]

    await group_chooses(stack, nsfw_chat=True)
    sent = await press_file(stack, grid)
    assert sent.method == "sendDocument"

    await group_chooses(stack, flagged_output_nsfw="remove")
    refused = await press_file(stack, grid)
    assert refused.method == "answerCallbackQuery"
    assert "flagged by the image check" in refused.params["text"]
