"""More flows on the real stack: every button, a restart, remix, settings, /info, photos, albums, 429s, HTML."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from test_telegram_flows import buttons, imagine, is_result, press, settle
from tg_stack import telegram_stack

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]


def png(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_every_grid_and_single_button_after_a_restart(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        _progress, grid = await imagine(stack, "/imagine a tower")
        # Restart: a new Application and delivery core; the old message's buttons must still work.
        await stack.stop_bot()
        await stack.start_bot()
        for label in ["U1", "U3", "U4"]:
            mark, answer = await press(stack, grid, label)
            [single] = await api.wait_for(is_result, after=mark)
            assert f"Image #{label[1]}" in single.params["caption"]
        mark, _ = await press(stack, grid, "U2")
        [single] = await api.wait_for(is_result, after=mark)
        # Every render button, three at a time (the basic plan runs 3 jobs at once and queues a few more).
        pressed = [(grid, label) for label in ["🔄", "V2", "V3", "V4"]]
        pressed += [
            (single, label)
            for label in [
                "Upscale (Creative)",
                "🪄 Vary (Subtle)",
                "🪄 Vary (Strong)",
                "🔍 Zoom Out 2x",
                "🔍 Zoom Out 1.5x",
                "↔️ Make Square",
                "⬅️",
                "➡️",
                "⬆️",
                "⬇️",
            ]
        ]
        captions: list[str] = []
        for start in range(0, len(pressed), 3):
            batch = pressed[start : start + 3]
            mark = len(api.calls)
            for message, label in batch:
                before, answer = await press(stack, message, label)
                assert answer.params["text"]
                [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=before)
                assert "Waiting to start" in progress.params["text"]
            results = await settle(stack, mark, count=len(batch))
            captions += [r.params["caption"] for r in results]
        assert len(captions) == len(pressed)
        for word in [
            "Variations (Strong)",
            "Upscaled (Creative)",
            "Variations (Subtle)",
            "Zoom Out 2x",
            "Zoom Out 1.5x",
            "Make Square",
            "Pan Left",
            "Pan Right",
            "Pan Up",
            "Pan Down",
        ]:
            assert any(word in caption for caption in captions), word

        # ❤️ toggles and answers with the outcome; details come privately; the file comes as a document.
        _mark, answer = await press(stack, single, "❤️")
        assert "favourites" in answer.params["text"]
        mark, answer = await press(stack, single, "✉️ Details")
        [dm] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        assert dm.chat_id == 42
        assert "Seed" in dm.params["text"]
        mark, _ = await press(stack, grid, "📄 Full-res file")
        [document] = await api.wait_method("sendDocument", after=mark)
        assert document.files["document"].startswith(b"\x89PNG")


async def test_remix_asks_for_the_edited_prompt(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        mark = len(api.calls)
        await api.push(api.message("/prefer remix"))
        [reply] = await api.wait_method("sendMessage", after=mark)
        assert "Remix mode on" in reply.params["text"]
        _progress, grid = await imagine(stack, "/imagine a quiet harbour")
        mark, _answer = await press(stack, grid, "V3")
        [question] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        assert "Remix" in question.params["text"]
        assert question.params["reply_markup"]["force_reply"] is True
        mark = len(api.calls)
        await api.push(api.message("a stormy harbour at night", reply_to=question.result))
        [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        assert "a stormy harbour at night" in progress.params["text"]
        [result] = await settle(stack, mark)
        assert "stormy" in result.params["caption"]


async def test_settings_panel_changes_the_next_job_and_info(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        mark = len(api.calls)
        await api.push(api.message("/settings"))
        [panel] = await api.wait_method("sendMessage", after=mark)
        mark = len(api.calls)
        await api.push(api.callback(buttons(panel)["⚡ Turbo"], panel.result))
        [edit] = await api.wait_method("editMessageText", after=mark)
        assert "✅ ⚡ Turbo" in buttons(edit)
        mark = len(api.calls)
        await api.push(api.callback(buttons(edit)["🖌️ Stylize high"], panel.result))
        [edit] = await api.wait_method("editMessageText", after=mark)
        assert "--s 250" in edit.params["text"] or "--stylize 250" in edit.params["text"]
        _progress, grid = await imagine(stack, "/imagine a turbo cat")
        assert "(turbo)" in grid.params["caption"]
        assert "--stylize 250" in grid.params["caption"]
        mark = len(api.calls)
        await api.push(api.message("/info"))
        [info] = await api.wait_method("sendMessage", after=mark)
        assert "<b>Job Mode</b>: Turbo" in info.params["text"]
        assert "Fast Time Remaining" in info.params["text"]
        mark = len(api.calls)
        await api.push(api.message("/relax"))
        [reply] = await api.wait_method("sendMessage", after=mark)
        assert reply.params["text"].startswith("⚠️")  # the basic plan has no relax: one line, not silence


async def test_photo_prompt_and_blend_album_and_bad_file(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        file_id = api.add_file(png(), "photos/a.png")
        mark = len(api.calls)
        await api.push(api.message(photo_file_id=file_id, caption="/imagine in this style"))
        [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        assert "🖼️ in this style" in progress.params["text"]
        assert "telegram.invalid" not in progress.params["text"]
        assert api.sent("getFile")

        ids = [api.add_file(png(32 + i), f"photos/b{i}.png") for i in range(3)]
        mark = len(api.calls)
        for i, fid in enumerate(ids):
            caption = "/blend --dimensions landscape" if i == 0 else None
            await api.push(api.message(photo_file_id=fid, caption=caption, media_group_id="album1"))
        [progress] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        results = await settle(stack, mark, count=2)  # the photo prompt's grid and the blend
        [result] = [r for r in results if "Blend" in r.params["caption"]]
        assert list(buttons(result))[:4] == ["U1", "U2", "U3", "U4"]
        assert len(api.sent("sendMessage")) == 2  # one progress per request, not one per album part

        bad = api.add_file(b"%PDF-1.4 this is not an image", "photos/c.png")
        mark = len(api.calls)
        await api.push(api.message(photo_file_id=bad, caption="/imagine oops"))
        [reply] = await api.wait_method("sendMessage", after=mark)
        assert reply.params["text"] == "⚠️ That file is not an image; send a PNG, JPEG or WebP photo."


async def test_rate_limited_grid_and_html_prompt(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        api.rate_limit("sendPhoto", retry_after=1)
        api.rate_limit("sendPhoto", retry_after=1)
        _progress, grid = await imagine(stack, '/imagine <a href="https://evil.example">win</a> <b>bold</b> & co')
        assert [c.result for c in api.sent("sendPhoto")][:2] == [{"error": 429}, {"error": 429}]
        caption = grid.params["caption"]
        assert "&lt;a href=&quot;https://evil.example&quot;&gt;win&lt;/a&gt;" in caption
        assert "<b>bold</b>" not in caption
