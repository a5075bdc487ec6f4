"""Vary (Region) on Telegram: offered only with the web front door; a Mini App in private chats, a private link from
groups, each signed for the presser and the pressed image."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fake_botapi import Call
from PIL import Image, ImageDraw
from test_telegram_flows import buttons, imagine, is_result, press, recorded
from tg_stack import telegram_stack

from impasto.bots.web.app import WebDeps, build_app
from impasto.bots.web.guards import Guards, ReplyTargets
from impasto.bots.web.links import verify
from impasto.engine.registry import load_registry
from impasto.queue.renderer import EngineRenderer

LABEL = "🖌️ Vary (Region)"


@dataclass(frozen=True)
class WebFrontDoor:
    web_url: str | None = "https://impasto.example"
    web_secret_value: str | None = "s3cret"


def grant_of(url: str, *, webapp: bool) -> tuple[str, str | None, bool]:
    grant = verify("s3cret", parse_qs(urlparse(url).query)["t"][0], "edit")
    assert grant.webapp is webapp
    return grant.user_id, grant.job_id, grant.webapp


async def test_region_is_absent_without_the_web_front_door(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        _progress, grid = await imagine(stack, "/imagine a tower")
        mark, _ = await press(stack, grid, "U2")
        [single] = await stack.api.wait_for(is_result, after=mark)
        assert LABEL not in buttons(single)


async def test_region_opens_the_editor_privately(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        stack.web = WebFrontDoor()
        await stack.stop_bot()
        await stack.start_bot()
        api = stack.api

        # A private chat: the editor opens as a Mini App, in the chat.
        _progress, grid = await imagine(stack, "/imagine a tower")
        mark, _ = await press(stack, grid, "U2")
        [single] = await api.wait_for(is_result, after=mark)
        mark, answer = await press(stack, single, LABEL)
        assert "editor" in answer.params["text"]
        [sent] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        [[opener]] = sent.params["reply_markup"]["inline_keyboard"]
        assert sent.params["chat_id"] == 42
        user_id, job_id, _ = grant_of(opener["web_app"]["url"], webapp=True)
        assert user_id == "42"
        picked = await recorded(stack, "42", single.result["message_id"])
        assert job_id == picked.job_id

        # A group: the link goes to the presser privately, never to the group.
        _progress, grid = await imagine(stack, "/imagine a bridge", chat_id=-100, group=True)
        mark, _ = await press(stack, grid, "U1")
        [single] = await api.wait_for(is_result, after=mark)
        mark, answer = await press(stack, single, LABEL)
        assert "privately" in answer.params["text"]
        [sent] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
        assert sent.params["chat_id"] == 42  # the presser's private chat, not -100
        [[opener]] = sent.params["reply_markup"]["inline_keyboard"]
        assert grant_of(opener["url"], webapp=False)[0] == "42"


def mask_data_url(width: int, height: int) -> str:
    """A drawn mask as the editor submits it: white where to repaint (the upper-left quarter), black elsewhere."""
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, width // 2, height // 2), fill=255)
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.mark.slow
async def test_a_region_drawn_on_the_web_is_posted_in_the_group_as_a_reply(tmp_path: Path) -> None:
    """Editor submit → a region job on the real core → a real worker painting with the tiny SD 1.5 model → the
    result posted in the group, as a reply to the message whose Vary (Region) was pressed, with its buttons."""
    renderer = EngineRenderer.load(
        load_registry(default="tiny-sd15"), cache_dir=tmp_path / "models", lora_dir=None, model="tiny-sd15"
    )
    async with telegram_stack(tmp_path) as stack:
        stack.web = WebFrontDoor()
        await stack.stop_bot()
        await stack.start_bot()
        api = stack.api
        mark = len(api.calls)
        await api.push(api.message("/imagine a bridge at dawn", chat_id=-100, group=True))
        await api.wait_for(lambda c: c.method == "sendMessage", after=mark)  # queued: a burst worker finds it
        await stack.drain(renderer=renderer)
        [grid] = await api.wait_for(is_result, after=mark)
        mark, _ = await press(stack, grid, "U1")
        [single] = await api.wait_for(is_result, after=mark)
        pressed = single.result["message_id"]
        mark, _ = await press(stack, single, LABEL)
        [sent] = await api.wait_for(lambda c: c.method == "sendMessage" and "reply_markup" in c.params, after=mark)
        [[opener]] = sent.params["reply_markup"]["inline_keyboard"]
        token = parse_qs(urlparse(opener["url"]).query)["t"][0]
        single_job = (await recorded(stack, "-100", pressed)).job_id
        source = (await stack.service.job(single_job)).image(1)
        assert source is not None

        prefix = stack.ns.prefix + "web:"  # removed with the stack's namespace
        web = WebDeps(
            stack.service, Guards(stack.redis, prefix=prefix), ReplyTargets(stack.redis, prefix=prefix), "s3cret"
        )
        form = {
            "t": token,
            "prompt": "a bridge at dawn, red sails",
            "mask": mask_data_url(source.width_px, source.height_px),
        }
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(web)), base_url="http://web"
        ) as client:
            submitted = await client.post("/edit", data=form)
        assert submitted.status_code == 200, submitted.text

        mark = len(api.calls)
        await stack.drain(renderer=renderer)

        def replies_to_pressed(call: Call) -> bool:
            reply = call.params.get("reply_parameters") or {}
            return call.params.get("chat_id") == -100 and reply.get("message_id") == pressed

        [opened] = await api.wait_for(lambda c: c.method == "sendMessage" and replies_to_pressed(c), after=mark)
        assert "Waiting to start" in opened.params["text"]
        [result] = await api.wait_for(lambda c: is_result(c) and replies_to_pressed(c), after=mark, timeout_s=60)
        region = await recorded(stack, "-100", result.result["message_id"])
        assert (region.action, region.parent_id, region.status) == ("vr", single_job, "done")
        assert "red sails" in result.params["caption"]
        assert "U1" in buttons(result)  # a 2×2 grid of variations, with its buttons
