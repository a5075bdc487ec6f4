"""Replies in the user's language on Telegram: the real PTB client against the fake Bot API, on the real core. A
``zh-hans`` app gets Chinese for /imagine's progress and result, a refusal, /info, /settings and /help; the
language chosen in /settings beats the app's; a group's default (/language, by its administrators) serves a user
whose app sends no language. Each wait names the exact text it waits for."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_botapi import Call
from test_telegram_flows import buttons, is_result, recorded, settle
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.i18n.catalog import t
from impasto.queue import events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]
ZH = "zh_Hans"
GROUP = -100777


def said(call: Call) -> str:
    return str(call.params.get("text") or call.params.get("caption") or "")


async def reply(stack: TelegramStack, text: str, expected: str, **message: object) -> Call:
    """Send ``text`` and wait for the bot's message that holds ``expected``."""
    api = stack.api
    mark = len(api.calls)
    await api.push(api.message(text, **message))  # type: ignore[arg-type]
    [call] = await api.wait_for(lambda c: c.method == "sendMessage" and expected in said(c), after=mark)
    return call


async def test_a_chinese_app_gets_chinese_everywhere(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        mark = len(api.calls)
        progress = await reply(stack, "/imagine a red fox", "⏳ 等待开始", language_code="zh-hans")
        assert said(progress).startswith("<b>a red fox</b> - ")
        assert "(快速)\n⏳ 等待开始" in said(progress)
        assert buttons(progress) == {"❌ 取消": buttons(progress)["❌ 取消"]}
        job = await recorded(stack, str(progress.params["chat_id"]), progress.result["message_id"])
        assert job.locale == ZH  # recorded at admission: whichever process delivers writes Chinese
        # A progress event, as the worker publishes it: the delivery core edits the message in Chinese.
        await events.publish(stack.redis, ns=stack.ns, event=events.Progress(job_id=job.job_id, step=5, total=10))
        [edit] = await api.wait_for(
            lambda c: c.method == "editMessageText" and said(c).endswith("(快速)\n🎨 50%"), after=mark
        )
        assert said(edit).startswith("<b>a red fox</b> - ")
        [result] = await settle(stack, mark)
        caption = said(result)
        assert "(快速)" in caption
        assert t("tg.noise_note", ZH) in caption
        assert {"U1", "V4", "📄 原图文件"} <= set(buttons(result))

        refused = await reply(stack, "/imagine a fox --chaos 200", "超出范围", language_code="zh-hans")
        assert said(refused) == "⚠️ --chaos 200 超出范围；允许 0–100"

        info = await reply(stack, "/info", "<b>你的信息</b>", language_code="zh-hans")
        assert "<b>任务模式</b>: 快速" in said(info)
        assert "Job Mode" not in said(info)

        panel = await reply(stack, "/settings", "<b>设置</b>", language_code="zh-hans")
        assert "回复语言：简体中文" in said(panel)
        labels = set(buttons(panel))
        assert {"📷 RAW 模式", "✅ 🐇 快速", "重置设置", "✅ 🌐 自动", "English", "简体中文"} <= labels

        help_reply = await reply(stack, "/help", "<b>impasto —— 提示词速览</b>", language_code="zh-hans")
        assert said(help_reply) == t("help.telegram", ZH)

        # The same user's app switched to English: English again (nothing was chosen in /settings).
        await reply(stack, "/info", "<b>Job Mode</b>: Fast", language_code="en")


async def test_the_settings_choice_beats_the_app_language(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        panel = await reply(stack, "/settings", "<b>设置</b>", language_code="zh-hans")
        mark = len(api.calls)
        await api.push(api.callback(buttons(panel)["English"], panel.result, language_code="zh-hans"))
        [answer] = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
        assert answer.params["text"] == "Settings saved"
        [edited] = await api.wait_for(
            lambda c: c.method == "editMessageText" and "<b>Settings</b> — they apply" in said(c), after=mark
        )
        assert "Reply language: English" in said(edited)
        assert "✅ English" in buttons(edited)

        await reply(stack, "/info", "<b>Job Mode</b>: Fast", language_code="zh-hans")
        mark = len(api.calls)
        progress = await reply(stack, "/imagine a quiet harbour", "⏳ Waiting to start", language_code="zh-hans")
        assert "(fast)" in said(progress)
        [result] = await settle(stack, mark)
        assert "(fast)" in said(result)
        assert "U1" in buttons(result)
        assert (await stack.service.job(said(result).rsplit("<code>", 1)[1][:12])).locale == "en"


async def test_the_group_default_serves_an_app_without_a_language(tmp_path: Path) -> None:
    async with telegram_stack(tmp_path) as stack:
        api = stack.api
        api.admins.add(7)
        await reply(stack, "/info", "<b>Job Mode</b>: Fast", chat_id=GROUP, user_id=8)  # no default yet: English
        refused = await reply(stack, "/language 中文", "administrators", chat_id=GROUP, user_id=8)
        assert said(refused) == "⚠️ Only this group&#x27;s administrators can set its language."
        await reply(stack, "/language 中文", "本群的默认回复语言：简体中文", chat_id=GROUP, user_id=7)

        await reply(stack, "/info", "<b>任务模式</b>: 快速", chat_id=GROUP, user_id=8)
        mark = len(api.calls)
        await reply(stack, "/imagine pines in snow", "⏳ 等待开始", chat_id=GROUP, user_id=8)
        [result] = await settle(stack, mark)
        assert "(快速)" in said(result)
        # An app that says English beats the group's default; in a private chat the default does not apply.
        await reply(stack, "/info", "<b>Job Mode</b>: Fast", chat_id=GROUP, user_id=9, language_code="en")
        await reply(stack, "/info", "<b>Job Mode</b>: Fast", chat_id=8, user_id=8)
        await reply(stack, "/language auto", "their own app", chat_id=GROUP, user_id=7)
        await reply(stack, "/info", "<b>Job Mode</b>: Fast", chat_id=GROUP, user_id=8)
        assert is_result(result)
