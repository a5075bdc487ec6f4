"""/describe on Telegram through the real PTB client and the fake Bot API, on the real core and queue, with a real
worker whose captioner is the engine's tiny CLIP: a photo captioned /describe and /describe replying to a photo give
four prompts (each parses) with 1–4 🔄 / Imagine all; 2 and Imagine all make /imagine jobs of those prompts, 🔄 four
other prompts; bad input is one line with nothing charged."""

from __future__ import annotations

import html
import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from fake_botapi import Call
from PIL import Image
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.language.parser import parse_imagine
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView
from impasto.bots.telegram.callback_data import JobButton, decode
from impasto.bots.telegram.describe_result import describe_keyboard, describe_text
from impasto.engine.describe import SUBJECTS
from impasto.engine.engine import Engine
from impasto.engine.registry import load_registry
from impasto.queue.actions import Action
from impasto.queue.renderer import EngineRenderer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]
ALICE = Requester(platform="telegram", user_id="42")
_PROMPT_LINE = re.compile(r"^[1-4]️⃣ <code>(.*)</code>$")


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def buttons(call: Call) -> dict[str, str]:
    markup = call.params.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def is_described(call: Call) -> bool:
    return call.method == "editMessageText" and any(d.startswith("j:dp:") for d in buttons(call).values())


async def describe_result(stack: TelegramStack, tmp_path: Path, after: int) -> tuple[Call, JobView]:
    """Run a worker with the real engine (its tiny CLIP captioner) until the describe message shows four prompts."""
    registry = load_registry(default="tiny-sd15")
    await stack.drain(renderer=EngineRenderer(Engine(registry, cache_dir=tmp_path / "models")))
    [edit] = await stack.api.wait_for(is_described, after=after)
    button = decode(buttons(edit)["1"])
    assert isinstance(button, JobButton)
    return edit, await stack.service.job(button.job_id)


def check_prompts(edit: Call, view: JobView, ratio: str) -> list[str]:
    prompts = list(view.described)
    assert len(prompts) == 4
    shown = [m.group(1) for line in edit.params["text"].split("\n") if (m := _PROMPT_LINE.match(line))]
    assert [html.unescape(p) for p in shown] == prompts
    registry = load_registry(default="tiny-sd15")
    for prompt in prompts:
        assert prompt.endswith(f"--ar {ratio}")
        assert prompt.split(",")[0] in SUBJECTS  # the captioner's words
        (job,) = parse_imagine(prompt, registry=registry)
        assert job.aspect_ratio == ratio
    assert list(buttons(edit)) == ["1", "2", "3", "4", "🔄", "Imagine all"]
    return prompts


async def test_describe_a_captioned_photo_then_imagine_one_all_and_again(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        photo = api.add_file(png(64, 36), "photos/wide.png")
        mark = len(api.calls)
        await api.push(api.message(photo_file_id=photo, caption="/describe"))
        [waiting] = await api.wait_for(
            lambda c: c.method == "sendMessage" and "Waiting to start" in c.params["text"], after=mark
        )
        edit, view = await describe_result(stack, tmp_path, mark)
        assert int(edit.params["message_id"]) == waiting.result["message_id"]  # the progress message, edited
        assert view.action == Action.DESCRIBE.value
        assert view.status == "done"
        prompts = check_prompts(edit, view, "16:9")
        assert edit.params["text"].startswith("Four prompts for <b>🖼️ 64×36</b>, asked by <a href=")
        chinese = replace(view, locale="zh_Hans")  # asked from a Chinese client
        assert "请求的 <b>🖼️ 64×36</b> 的四条提示词" in describe_text(chinese)
        assert [b.text for row in describe_keyboard(chinese).inline_keyboard for b in row][-1] == "全部生成"

        # 🔄: the same picture again, four other prompts.
        mark = len(api.calls)
        await api.push(api.callback(buttons(edit)["🔄"], edit.result))
        await api.wait_for(lambda c: c.method == "sendMessage" and "Waiting to start" in c.params["text"], after=mark)
        again, again_view = await describe_result(stack, tmp_path, mark)
        assert again_view.parent_id == view.job_id
        others = check_prompts(again, again_view, "16:9")
        assert {p.split(",")[0] for p in others}.isdisjoint({p.split(",")[0] for p in prompts})

        # 2: one /imagine of prompt 2.
        mark = len(api.calls)
        await api.push(api.callback(buttons(edit)["2"], edit.result, user_id=77, name="Bob"))
        [made] = await api.wait_for(
            lambda c: c.method == "sendMessage" and "Waiting to start" in c.params["text"], after=mark
        )
        assert html.escape(prompts[1]) in made.params["text"]
        bob = await stack.service.history(Requester(platform="telegram", user_id="77"))
        assert [(j.action, j.prompt) for j in bob if j.action == "imagine"] == [("imagine", prompts[1])]

        # Imagine all: four /imagine jobs, one per prompt.
        mark = len(api.calls)
        await api.push(api.callback(buttons(edit)["Imagine all"], edit.result))
        made_all = await api.wait_for(
            lambda c: c.method == "sendMessage" and "Waiting to start" in c.params["text"], after=mark, count=4
        )
        assert len(made_all) == 4
        mine = [j for j in await stack.service.history(ALICE, limit=20) if j.action == "imagine"]
        assert sorted(j.prompt for j in mine) == sorted(prompts)


async def test_describe_as_a_reply_and_refusals_charge_nothing(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api

        async def refusal(**message: object) -> str:
            mark = len(api.calls)
            await api.push(api.message(**message))  # type: ignore[arg-type]
            [line] = await api.wait_for(
                lambda c: c.method == "sendMessage" and c.params["text"].startswith("⚠️"), after=mark
            )
            return str(line.params["text"])

        assert await refusal(text="/describe") == (
            "⚠️ /describe needs an image: send it with the caption /describe, reply /describe to a picture, "
            "or give a link (https://…)"
        )
        notes = api.add_file(b"just some text", "photos/notes.png")
        assert await refusal(photo_file_id=notes, caption="/describe") == (
            "⚠️ That file is not an image; send a PNG, JPEG or WebP photo."
        )
        huge = api.add_file(b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024), "photos/huge.png")
        assert (await refusal(photo_file_id=huge, caption="/describe")).startswith("⚠️ That file is 11.0 MB; the limit")
        # A link the bot may not fetch (the tests' fetcher reaches no network, as a private address is refused).
        line = await refusal(text="/describe https://example.com/cat.png")
        assert line.startswith("⚠️ the image link https://example.com/cat.png ")
        assert await stack.service.history(ALICE) == []

        # In the language the user chose (/settings), not their app's, as every other command answers.
        await stack.service.set_language(ALICE, "中文")
        chinese = await refusal(text="/describe")
        assert chinese.startswith("⚠️ ")
        assert "/describe" in chinese
        assert "needs an image" not in chinese
        gone = await refusal(text="/describe nosuchjob123")
        assert "no job" not in gone
        assert "nosuchjob123" in gone
        await stack.service.set_language(ALICE, "auto")

        # /describe replying to a tall photo.
        photo = api.add_file(png(32, 48), "photos/tall.png")
        original = api.message(photo_file_id=photo)["message"]
        mark = len(api.calls)
        await api.push(api.message("/describe", reply_to=original))
        await api.wait_for(lambda c: c.method == "sendMessage" and "Waiting to start" in c.params["text"], after=mark)
        edit, view = await describe_result(stack, tmp_path, mark)
        check_prompts(edit, view, "2:3")
        assert await stack.service.history(ALICE) != []

        # /show JOB_ID brings the four prompts and their buttons back.
        mark = len(api.calls)
        await api.push(api.message(f"/show {view.job_id}"))
        [shown] = await api.wait_for(
            lambda c: c.method == "sendMessage" and c.params["text"] == edit.params["text"], after=mark
        )
        assert buttons(shown) == buttons(edit)
