"""The language a user or server chooses: read by name or tag, stored on both databases, negotiated first."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.i18n.locale import choose_locale, negotiate
from impasto.storage.locales import chosen_locales, set_guild_locale, set_user_locale


@pytest.mark.parametrize(
    ("typed", "locale"),
    [("中文", "zh_Hans"), ("zh-CN", "zh_Hans"), ("English", "en"), ("zh_Hans", "zh_Hans"), ("auto", None)],
)
def test_a_choice_by_name_or_tag(typed: str, locale: str | None) -> None:
    assert choose_locale(typed) == locale


def test_an_unknown_choice_is_named_in_the_users_language() -> None:
    with pytest.raises(ValueError, match=r"^impasto 不支持语言 klingon；请从 English, 简体中文 中选择$"):
        choose_locale("klingon", locale="zh_Hans")
    with pytest.raises(
        ValueError, match=r"^klingon is not a language impasto speaks; choose one of English, 简体中文$"
    ):
        choose_locale("klingon")


async def test_choices_are_stored_and_win_the_negotiation(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        assert await chosen_locales(session, "discord", "7", "g1") == (None, None)
        await set_guild_locale(session, "discord", "g1", "zh_Hans")
    async with sessions() as session:
        mine, server = await chosen_locales(session, "discord", "7", "g1")
    assert negotiate(chosen=mine, platform="fr", server=server) == "zh_Hans"
    assert negotiate(chosen=mine, platform="en-US", server=server) == "en"
    async with sessions() as session, session.begin():
        await set_user_locale(session, "discord", "7", "zh_Hans")
    async with sessions() as session:
        mine, server = await chosen_locales(session, "discord", "7", "g1")
    assert (mine, server) == ("zh_Hans", "zh_Hans")
    assert negotiate(chosen=mine, platform="en-US", server=server) == "zh_Hans"
    async with sessions() as session, session.begin():
        await set_user_locale(session, "discord", "7", None)
        assert await chosen_locales(session, "discord", "7", None) == (None, None)
