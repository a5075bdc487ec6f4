"""Vary (Region) on Telegram: offered only with the web front door; a Mini App in private chats, a private link from
groups, each signed for the presser and the pressed image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from test_telegram_flows import buttons, imagine, is_result, press, recorded
from tg_stack import telegram_stack

from impasto.bots.web.links import verify

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
