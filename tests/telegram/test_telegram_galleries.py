"""Gallery links on Telegram: /history sends the user's own gallery privately (or says how to let the bot write);
/gallery links the group's public gallery."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fake_botapi import Call
from test_telegram_flows import imagine
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.web.links import Pass, Purpose, verify

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]
GROUP = -100555


@dataclass(frozen=True)
class WebFrontDoor:
    web_url: str | None = "https://impasto.example"
    web_secret_value: str | None = "s3cret"


def link_of(call: Call, purpose: Purpose) -> Pass:
    [[button]] = call.params["reply_markup"]["inline_keyboard"]
    return verify("s3cret", parse_qs(urlparse(button["url"]).query)["t"][0], purpose)


async def ask(stack: TelegramStack, text: str, count: int, **message: Any) -> list[Call]:
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.message(text, **message))
    return await stack.api.wait_for(lambda c: c.method == "sendMessage", after=mark, count=count)


async def with_web(stack: TelegramStack) -> None:
    stack.web = WebFrontDoor()
    await stack.stop_bot()
    await stack.start_bot()


async def test_history_sends_the_gallery_link_privately(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        await with_web(stack)
        await imagine(stack, "/imagine a harbour in a group", chat_id=GROUP, group=True)

        # In a group: the link goes to the user's private chat; the group reads only where it went.
        link, reply = await ask(stack, "/history", 2, chat_id=GROUP, group=True)
        assert link.params["chat_id"] == 42
        grant = link_of(link, "gallery")
        assert (grant.platform, grant.user_id) == ("telegram", "42")
        assert reply.params["chat_id"] == GROUP
        assert "a harbour in a group" in reply.params["text"]
        assert "sent you your gallery link privately" in reply.params["text"]
        assert "https://" not in reply.params["text"]

        # A user who never started the bot privately is told how, in one line; nothing else is sent.
        stack.api.fail("sendMessage", 403, "Forbidden: bot can't initiate conversation with a user")
        mark = len(stack.api.calls)
        await stack.api.push(stack.api.message("/history", chat_id=GROUP, group=True, user_id=77))
        [_refused, reply] = await stack.api.wait_for(lambda c: c.method == "sendMessage", after=mark, count=2)
        assert reply.params["chat_id"] == GROUP
        assert "open a private chat with me" in reply.params["text"]


async def test_gallery_links_the_groups_public_gallery(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        [refused] = await ask(stack, "/gallery", 1, chat_id=GROUP, group=True)
        assert "web front door" in refused.params["text"]  # none configured yet: said, not a broken link
        await with_web(stack)
        [reply] = await ask(stack, "/gallery", 1, chat_id=GROUP, group=True)
        assert reply.params["chat_id"] == GROUP
        grant = link_of(reply, "public")
        assert (grant.platform, grant.guild_id) == ("telegram", str(GROUP))
        [private] = await ask(stack, "/gallery", 1)
        assert private.params["text"].startswith("⚠️")
        assert "group" in private.params["text"]


async def test_a_gallery_link_records_the_users_language(tmp_path: Path) -> None:
    # The web page opens in the language the user reads the bot in (README "Languages"): it rides in the link.
    async with telegram_stack(tmp_path) as stack:
        await with_web(stack)
        [chinese] = await ask(stack, "/gallery", 1, chat_id=GROUP, group=True, language_code="zh-hans")
        assert link_of(chinese, "public").lang == "zh_Hans"
        [english] = await ask(stack, "/gallery", 1, chat_id=GROUP, group=True, user_id=43, language_code="en")
        assert link_of(english, "public").lang == "en"
