"""Every slash command, option and choice of the real Discord bot has its description in Chinese for zh-CN users."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from discord import Locale

from impasto.bots.discord.app import BotOptions, build_bot
from impasto.bots.i18n.discord import CatalogTranslator
from impasto.engine.registry import load_registry
from impasto.queue.moderation.policy import load_policy


def _described(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object in a command payload that carries a description or is a choice."""
    found = [payload] if "description" in payload else []
    for option in payload.get("options", []):
        found += _described(option)
    found += list(payload.get("choices", []))
    return found


async def test_the_command_tree_is_translated_for_chinese_clients() -> None:
    # No core is needed to describe the commands: a stand-in with what the bot reads while it is built.
    core = SimpleNamespace(images=None, registry=load_registry(), sessions=None, plans=None)
    bot = build_bot(core, None, BotOptions(sync_commands=False, moderation=load_policy()))  # type: ignore[arg-type]
    await bot.setup_hook()  # adds the cogs; syncs nothing
    translator = CatalogTranslator()
    await bot.tree.set_translator(translator)
    payloads = [await command.get_translated_payload(bot.tree, translator) for command in bot.tree.get_commands()]
    described = [item for payload in payloads for item in _described(payload)]
    assert len(described) > 40
    for item in described:
        localized = item.get("description_localizations") or item.get("name_localizations") or {}
        english = item.get("description") or item["name"]
        assert Locale.chinese.value in localized, f"no Chinese for {english!r}"
        assert Locale.taiwan_chinese.value in localized  # Simplified until a Traditional catalog exists
        assert Locale.american_english.value not in localized  # English users see the English itself
        assert any("\u4e00" <= ch <= "\u9fff" for ch in localized[Locale.chinese.value])
        assert len(localized[Locale.chinese.value]) <= 100
    names = [payload["name"] for payload in payloads]
    assert "imagine" in names
    assert all(not payload.get("name_localizations") for payload in payloads)  # /imagine is typed the same everywhere
    await bot.close()
