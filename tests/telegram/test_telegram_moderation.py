"""/mod in a group: its administrators ban members and add words; the prompt check refuses before anything is made."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from tg_stack import telegram_stack

from impasto.bots.moderation.admission_check import ModerationCheck
from impasto.queue.moderation.policy import load_policy
from impasto.storage.models import Job

GROUP = -100200
ADMIN, MEMBER = 42, 77


async def test_group_administrators_moderate_and_the_prompt_check_applies(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        policy = load_policy()
        stack.moderation = policy
        # The service checks prompts as ``runtime.job_service`` builds it.
        stack.service.admission.checks.append(ModerationCheck(stack.service.sessions, policy))
        await stack.stop_bot()
        await stack.start_bot()
        api.admins.add(ADMIN)

        async def said(text: str, *, user_id: int, reply_to: dict[str, object] | None = None) -> str:
            mark = len(api.calls)
            await api.push(api.message(text, chat_id=GROUP, user_id=user_id, reply_to=reply_to, name=f"u{user_id}"))
            [answer] = await api.wait_for(lambda c: c.method == "sendMessage", after=mark)
            return str(answer.params["text"])

        assert "administrators" in await said("/mod words", user_id=MEMBER)
        # A ban is given as a reply to the member's message.
        their = api.message("hello", chat_id=GROUP, user_id=MEMBER, name="u77")["message"]
        assert "banned" in await said("/mod ban 12h spam", user_id=ADMIN, reply_to=their)
        assert "timed out" in await said("/imagine a quiet harbour", user_id=MEMBER)
        assert "may paint here again" in await said("/mod unban", user_id=ADMIN, reply_to=their)

        assert "lighthouse" in await said("/mod word add lighthouse", user_id=ADMIN)
        refused = await said("/imagine a lighthouse at dusk", user_id=MEMBER)
        assert refused.startswith("⚠️")
        assert "lighthouse" not in refused  # the category is named, never the word
        assert "usage" in await said("/mod frobnicate", user_id=ADMIN)
        async with stack.service.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Job)) == 0  # nothing made or charged
