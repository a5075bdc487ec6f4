"""Replies in the user's language, through the real discord.py client against the fake Discord, on the real core:
a zh-CN client gets Chinese for /imagine's progress and result, a refusal, /info, /settings and /help; a language
chosen in /settings beats the client's; a server's default (/server language) serves a client impasto does not
speak. Each wait names the exact text it waits for."""

from __future__ import annotations

import asyncio
from typing import Any

from discord_stack import ServiceStack
from fake_discord import ALICE, BOB, CHANNEL_ID, MANAGER_PERMISSIONS, FakeDiscord

from impasto.bots.i18n.catalog import t
from impasto.bots.service.views import JobView
from impasto.queue import events

Json = dict[str, Any]
ZH = "zh_Hans"


def imagine(prompt: str) -> list[Json]:
    return [{"name": "prompt", "type": 3, "value": prompt}]


async def answered(fake: FakeDiscord, record: Any, text: str) -> Json:
    """The command's own response once it holds ``text``."""
    original = await fake.wait_for(lambda: record.original_id)
    return await fake.wait_message(lambda m: m["id"] == original and text in m["content"])


async def recorded(stack: ServiceStack, message_id: str) -> JobView:
    """The job a message shows, from the message index: the bot records it just after the edit, so poll (bounded)."""
    for _ in range(500):
        found = await stack.service.find_job_by_message("discord", CHANNEL_ID, message_id)
        if found is not None:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} was never recorded")


def select(message: Json, custom_id: str) -> Json:
    for row in message["components"]:
        for item in row["components"]:
            if item.get("custom_id") == custom_id:
                return dict(item)
    raise AssertionError(f"no {custom_id} on the message")


async def test_a_chinese_client_gets_chinese_everywhere(fake: FakeDiscord, start_bot: Any, stack: ServiceStack) -> None:
    await start_bot()
    fake.user_locales[ALICE] = "zh-CN"

    record = await fake.slash("imagine", imagine("a lighthouse at dusk"))
    waiting = await answered(fake, record, f"({t('status.waiting', ZH)})")
    assert waiting["content"] == f"**a lighthouse at dusk** - <@{ALICE}> (等待开始)"
    job = await recorded(stack, waiting["id"])
    assert job.locale == ZH  # recorded at admission: whichever process delivers writes Chinese
    # A progress event, as the worker publishes it: the delivery core edits the message in Chinese.
    await events.publish(stack.pool, ns=stack.ns, event=events.Progress(job_id=job.job_id, step=5, total=10))
    progress = f"**a lighthouse at dusk** - <@{ALICE}> (50%) (快速)"
    await fake.wait_message(lambda m: m["id"] == waiting["id"] and m["content"] == progress)
    await stack.drain(steps=3)
    grid = await fake.wait_message(lambda m: m["id"] == waiting["id"] and bool(m["components"]))
    caption, note = grid["content"].split("\n")
    assert caption == f"**a lighthouse at dusk** - <@{ALICE}> (快速)"
    assert note == f"-# {t('caption.noise_note', ZH)}"

    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(
        lambda m: m.get("message_reference", {}).get("message_id") == grid["id"] and "图片 #2" in m["content"]
    )
    assert fake.button(single, "放大（细微）")
    assert fake.button(single, "变化（强烈）")

    record = await fake.slash("imagine", imagine("a cat --chaos 200"))
    await answered(fake, record, "⚠️ \\--chaos 200 超出范围；允许 0–100")  # markdown-escaped, as in English

    record = await fake.slash("info")
    info = await answered(fake, record, "**任务模式**: 快速")
    assert "**剩余快速时间**" in info["content"]
    assert "Job Mode" not in info["content"]

    record = await fake.slash("settings")
    panel = await answered(fake, record, "**设置** —— 调整你的默认值")
    assert "回复语言：简体中文" in panel["content"]
    assert fake.button(panel, "RAW 模式")
    assert fake.button(panel, "重置设置")
    language = select(panel, "imp:set:language")
    assert language["placeholder"] == "回复语言"
    assert [o["label"] for o in language["options"]] == ["自动（跟随你的应用语言）", "English", "简体中文"]

    record = await fake.slash("help")
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["data"]["content"] == t("help.discord", ZH)

    # Bob's client is English: the same server, English replies.
    record = await fake.slash("info", user_id=BOB)
    await answered(fake, record, "**Job Mode**: Fast")


async def test_the_settings_choice_beats_the_client_language(
    fake: FakeDiscord, start_bot: Any, stack: ServiceStack
) -> None:
    await start_bot()
    fake.user_locales[ALICE] = "zh-CN"
    record = await fake.slash("settings")
    panel = await answered(fake, record, "**设置**")
    await fake.press(panel["id"], "imp:set:language", values=["en"])
    english = await fake.wait_message(lambda m: m["id"] == panel["id"] and "**Settings** — adjust" in m["content"])
    assert "Reply language: English" in english["content"]
    assert fake.button(english, "RAW Mode")
    assert next(o for o in select(english, "imp:set:language")["options"] if o.get("default"))["value"] == "en"

    record = await fake.slash("info")
    await answered(fake, record, "**Job Mode**: Fast")
    record = await fake.slash("imagine", imagine("a quiet harbour"))
    waiting = await answered(fake, record, "(Waiting to start)")
    await stack.drain(steps=2)
    grid = await fake.wait_message(lambda m: m["id"] == waiting["id"] and bool(m["components"]))
    assert grid["content"].startswith(f"**a quiet harbour** - <@{ALICE}> (fast)")

    # "Automatic" again: the client's Chinese is back.
    await fake.press(panel["id"], "imp:set:language", values=["auto"])
    await fake.wait_message(lambda m: m["id"] == panel["id"] and "回复语言：简体中文" in m["content"])


async def test_the_server_default_serves_a_client_language_impasto_lacks(
    fake: FakeDiscord, start_bot: Any, stack: ServiceStack
) -> None:
    await start_bot()
    fake.user_locales[ALICE] = "fr"  # a language impasto does not speak: no client language
    record = await fake.slash("info")
    await answered(fake, record, "**Job Mode**: Fast")  # no server default yet: English

    options = [{"name": "language", "type": 1, "options": [{"name": "language", "type": 3, "value": "zh_Hans"}]}]
    record = await fake.slash("server", options, permissions=MANAGER_PERMISSIONS)
    await answered(fake, record, "**默认语言**: 简体中文")  # Alice's server now answers her in Chinese

    record = await fake.slash("info")
    await answered(fake, record, "**任务模式**: 快速")
    record = await fake.slash("imagine", imagine("snow on pines --chaos 500"))
    await answered(fake, record, "⚠️ \\--chaos 500 超出范围；允许 0–100")
    record = await fake.slash("info", user_id=BOB)  # Bob's client says English: it beats the server's default
    await answered(fake, record, "**Job Mode**: Fast")
