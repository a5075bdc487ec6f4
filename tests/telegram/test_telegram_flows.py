"""Whole flows: the real PTB client over HTTP, the real job service and SQL, the real queue and worker (no-op
renderer), the real event stream. Only Telegram itself is faked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fake_botapi import BOT_USERNAME, Call
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.service.views import JobView
from impasto.bots.telegram.callback_data import JobButton, decode

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]


def buttons(call: Call) -> dict[str, str]:
    """Label → callback_data of the keyboard a message was sent with."""
    markup = call.params.get("reply_markup") or call.params.get("media", {}).get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def is_result(call: Call) -> bool:
    """A posted result: a photo with job buttons (U#, V#, tools: ``j:`` callback data) that the server accepted (not
    a 429 answer). A progress preview is a photo too, but its only button is ❌ (``c:``): it is not a result."""
    posted = isinstance(call.result, dict) and "message_id" in call.result
    if call.method != "sendPhoto" or not posted:
        return False
    return any(data.startswith("j:") for data in buttons(call).values())


async def settle(stack: TelegramStack, after: int, count: int = 1, rounds: int = 6) -> list[Call]:
    """Run burst workers until ``count`` results were posted after call ``after``.

    One burst may end before a job that waited behind the plan's concurrency limit is queued, so drain again."""
    for _ in range(rounds - 1):
        await stack.drain(steps=1)
        try:
            return await stack.api.wait_for(is_result, after=after, count=count, timeout_s=5)
        except TimeoutError:
            continue
    await stack.drain(steps=1)
    return await stack.api.wait_for(is_result, after=after, count=count, timeout_s=20)


async def imagine(stack: TelegramStack, text: str, **message: Any) -> tuple[Call, Call]:
    """Send a command, run the worker, return (the progress message, the posted result)."""
    api = stack.api
    mark = len(api.calls)
    await api.push(api.message(text, **message))
    [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
    [result] = await settle(stack, mark)
    return progress, result


async def recorded(stack: TelegramStack, chat_id: str, message_id: object) -> JobView:
    """The job a posted message shows, from the message index: the bot records it just after posting, so poll, with
    a bound (a look right after the post can come before the record)."""
    for _ in range(500):
        found = await stack.service.find_job_by_message("telegram", chat_id, str(message_id))
        if found is not None:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} in chat {chat_id} was never recorded")


async def press(stack: TelegramStack, result: Call, label: str, user_id: int = 42) -> tuple[int, Call]:
    """Press a button on a posted message; return the call index before the press and the callback answer."""
    api = stack.api
    mark = len(api.calls)
    await api.push(api.callback(buttons(result)[label], result.result, user_id=user_id))
    [answer] = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
    return mark, answer


async def test_imagine_u2_upscale_v1_in_a_private_chat(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        progress, grid = await imagine(stack, "/imagine a lighthouse at dusk --ar 3:2")
        assert "Waiting to start" in progress.params["text"]
        assert progress.params["reply_parameters"]["message_id"] > 0
        assert "a lighthouse at dusk" in grid.params["caption"]
        assert "(fast)" in grid.params["caption"]
        assert list(buttons(grid))[:5] == ["U1", "U2", "U3", "U4", "🔄"]
        grid_button = decode(buttons(grid)["U2"])
        assert isinstance(grid_button, JobButton)
        job_id = grid_button.job_id

        # U2: answered at once, the chosen image posted alone with the single-image tools.
        mark, answer = await press(stack, grid, "U2")
        assert "U2" in answer.params["text"]
        [single] = await api.wait_for(is_result, after=mark)
        assert "Image #2" in single.params["caption"]
        assert "Upscale (Subtle)" in buttons(single)

        # Upscale (Subtle): queued, rendered, posted as one image.
        mark, answer = await press(stack, single, "Upscale (Subtle)")
        await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        [upscaled] = await settle(stack, mark)
        assert "Upscaled (Subtle)" in upscaled.params["caption"]

        # V1 on the first grid: a new grid.
        mark, _answer = await press(stack, grid, "V1")
        await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        [varied] = await settle(stack, mark)
        assert "Variations" in varied.params["caption"]
        assert list(buttons(varied))[:4] == ["U1", "U2", "U3", "U4"]
        view = await stack.service.job(job_id)
        assert view.status == "done"


async def test_imagine_in_a_group_with_botname(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        _progress, grid = await imagine(stack, f"/imagine@{BOT_USERNAME} a red fox", chat_id=-100777, group=True)
        assert grid.chat_id == -100777
        assert "a red fox" in grid.params["caption"]
        # A double click: two callback queries for the same button; one job.
        api = stack.api
        mark = len(api.calls)
        await api.push(api.callback(buttons(grid)["V2"], grid.result))
        await api.push(api.callback(buttons(grid)["V2"], grid.result))
        answers = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark, count=2)
        assert sorted("already" in a.params["text"] for a in answers) == [False, True]
        await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        assert len([c for c in api.calls[mark:] if c.method == "sendMessage"]) == 1


async def test_bad_input_gets_one_line(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        await api.push(api.message("/imagine a cat --ar 0:3"))
        [reply] = await api.wait_method("sendMessage")
        assert reply.params["text"].startswith("⚠️")
        assert "--ar" in reply.params["text"]
        assert "\n" not in reply.params["text"]
        mark = len(api.calls)
        await api.push(api.message("/imagine"))
        [reply] = await api.wait_method("sendMessage", after=mark)
        assert "Write a prompt" in reply.params["text"]


async def test_history_show_and_prefer(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api

        async def ask(text: str) -> Call:
            mark = len(api.calls)
            await api.push(api.message(text))
            [reply] = await api.wait_for(lambda c: c.method in ("sendMessage", "sendPhoto"), after=mark)
            return reply

        assert "Suffix set to" in (await ask("/prefer suffix --ar 16:9")).params["text"]
        assert "--mine" in (await ask("/prefer option set mine --s 250")).params["text"]
        assert "--s 250" in (await ask("/prefer option list")).params["text"]
        _progress, grid = await imagine(stack, "/imagine a harbour --mine")
        assert "--ar 16:9" in grid.params["caption"]  # the suffix applied
        job = decode(buttons(grid)["U1"])
        assert isinstance(job, JobButton)
        history = await ask("/history harbour")
        assert job.job_id in history.params["text"]
        shown = await ask(f"/show {job.job_id}")
        assert shown.method == "sendPhoto"
        assert list(buttons(shown))[:5] == ["U1", "U2", "U3", "U4", "🔄"]
        missing = await ask("/show nosuchjob")
        assert missing.params["text"].startswith("⚠️")
        found = await recorded(stack, "42", shown.result["message_id"])
        assert found.job_id == job.job_id


async def test_a_job_past_the_concurrency_limit_says_job_queued_and_still_arrives(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        mark = len(api.calls)
        await api.push(api.message("/imagine a bee --repeat 4"))
        waiting = await api.wait_for(lambda c: c.method == "sendMessage", after=mark, count=4)
        queued = [c.params["text"] for c in waiting if "Job queued" in c.params["text"]]
        assert len(queued) == 1  # the basic plan allows 3 jobs in flight: the fourth waits for one of them
        assert "maximum allowed number of concurrent jobs" in queued[0]
        await settle(stack, mark, count=4)


async def test_the_owner_cancels_a_waiting_job_with_its_cancel_button(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        mark = len(api.calls)
        await api.push(api.message("/imagine a slow snail", chat_id=-100900, group=True))
        [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        cancel = buttons(progress)["❌ Cancel"]
        job_id = cancel.split(":")[1]

        mark = len(api.calls)
        await api.push(api.callback(cancel, progress.result, user_id=77, name="Mallory"))
        [answer] = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
        assert answer.params["show_alert"] is True  # not her job: nothing happens
        assert (await stack.service.job(job_id)).status == "queued"

        mark = len(api.calls)
        await api.push(api.callback(cancel, progress.result))
        [answer] = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
        assert answer.params["text"] == "🚫 Cancelled; nothing was charged"
        # A progress edit of the waiting job ("⏳ Waiting to start") may still be on its way: wait for the end's edit.
        [edited] = await api.wait_for(
            lambda c: c.method == "editMessageText" and "Cancelled" in c.params.get("text", ""), after=mark
        )
        assert int(edited.params["message_id"]) == progress.result["message_id"]
        assert "reply_markup" not in edited.params  # the ❌ is gone with the job
        view = await stack.service.job(job_id)
        assert (view.status, view.charged_gpu_seconds) == ("cancelled", 0)

        mark = len(api.calls)
        await api.push(api.callback(cancel, progress.result))  # pressed again: already over
        [answer] = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
        assert answer.params["text"] == "This job is already cancelled."


async def test_cancel_stops_a_job_being_painted(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        mark = len(api.calls)
        await api.push(api.message("/imagine a long fresco"))
        [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        cancel = buttons(progress)["❌ Cancel"]
        job_id = cancel.split(":")[1]
        painting = asyncio.create_task(stack.drain(steps=3000))  # 30 s of steps unless stopped
        try:
            edited = await api.wait_for(lambda c: c.method == "editMessageText" and "%" in c.params["text"], after=mark)
            assert buttons(edited[0])["❌ Cancel"] == cancel  # progress edits keep the button
            mark = len(api.calls)
            await api.push(api.callback(cancel, progress.result))
            [answer] = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert answer.params["text"] == "🚫 Stopping at the next step; nothing will be charged"
            await api.wait_for(
                lambda c: c.method == "editMessageText" and "Cancelled" in c.params["text"], after=mark, timeout_s=20
            )
        finally:
            await asyncio.wait_for(painting, 30)
        view = await stack.service.job(job_id)
        assert (view.status, view.charged_gpu_seconds) == ("cancelled", 0)
