"""The admission gate and the moderators' commands, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageStat
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.moderation import commands
from impasto.bots.moderation.gate import admit
from impasto.bots.moderation.outputs import blur_previews, blurred_png, output_action
from impasto.queue.moderation.policy import Policy
from impasto.storage import moderation as mod
from impasto.storage.models import REFUSED

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


async def _setup(sessions: Sessions) -> tuple[int, int, int, int]:
    async with sessions() as session, session.begin():
        user = await mod.user_id_for(session, "discord", "100")
        moderator = await mod.user_id_for(session, "discord", "900")
        guild = await mod.guild_id_for(session, "discord", "1")
        other = await mod.guild_id_for(session, "discord", "2")
    return user, moderator, guild, other


async def test_refusals_are_audited_and_climb_the_ladder(sessions: Sessions, policy: Policy) -> None:
    user, _, guild, _ = await _setup(sessions)
    async with sessions() as session, session.begin():
        await mod.update_settings(session, guild, strike_limit=2)

    strike_id = None

    async def ask(text: str, at: datetime, *, nsfw: bool = False) -> tuple[bool, str | None]:
        nonlocal strike_id
        async with sessions() as session, session.begin():
            admission = await admit(
                session, policy, user_id=user, guild_id=guild, channel_id="7", texts=[text], nsfw_channel=nsfw, now=at
            )
        if admission.strike is not None:
            strike_id = admission.strike.refusal_id
        return admission.allowed, admission.message

    assert await ask("a lighthouse", T0) == (True, None)
    assert await ask("a nude figure", T0, nsfw=True) == (True, None)
    assert await ask("a nude figure", T0) == (
        False,
        "this prompt was refused: sexual content is only allowed in channels marked NSFW (warning 1 of 2)",
    )
    allowed, message = await ask("g0re", T0 + timedelta(minutes=1))
    assert not allowed
    assert message == (
        "this prompt was refused: gore is only allowed in channels marked NSFW; "
        "you are timed out here until 2026-12-01 13:01 UTC"
    )
    # Timed out: even an innocent prompt is refused, with when it ends; the policy does not run.
    assert await ask("a lighthouse", T0 + timedelta(minutes=2)) == (
        False,
        "you are timed out on this server until 2026-12-01 13:01 UTC (after refused prompts)",
    )
    assert (await ask("a lighthouse", T0 + timedelta(hours=2)))[0]
    async with sessions() as session:
        log = await mod.audit_log(session, guild_id=guild)
    refused = [r for r in log if r.kind == REFUSED]
    assert refused[0].id == strike_id  # the row an Appeal button would carry
    assert [(r.category, r.prompt, r.matched, r.channel_id) for r in refused] == [
        ("gore", "g0re", "gore", "7"),
        ("sexual", "a nude figure", "nude", "7"),
    ]


async def test_a_telegram_chat_that_allows_nsfw_counts_as_an_nsfw_channel(sessions: Sessions, policy: Policy) -> None:
    user, _, guild, _ = await _setup(sessions)
    async with sessions() as session, session.begin():
        await mod.update_settings(session, guild, nsfw_chat=True)
        here = await admit(
            session, policy, user_id=user, guild_id=guild, channel_id=None, texts=["nude"], nsfw_channel=False
        )
        dm = await admit(
            session, policy, user_id=user, guild_id=None, channel_id=None, texts=["nude"], nsfw_channel=False
        )
    assert here.allowed
    assert not dm.allowed


async def test_moderator_commands(sessions: Sessions, policy: Policy) -> None:
    user, moderator, guild, other = await _setup(sessions)
    async with sessions() as session, session.begin():
        assert (
            await commands.add_word(session, policy, guild_id=guild, moderator_id=moderator, word=" clown ")
            == "'clown' now counts as a word this server does not allow here"
        )
        assert (
            await commands.add_word(session, policy, guild_id=guild, moderator_id=moderator, word="clown")
            == "'clown' already counts as a word this server does not allow here"
        )
        with pytest.raises(commands.ModerationCommandError, match="no category 'jokes'"):
            await commands.add_word(session, policy, guild_id=guild, moderator_id=moderator, word="x", category="jokes")
        assert (
            await commands.remove_word(session, policy, guild_id=guild, moderator_id=moderator, word="naked")
        ).startswith("'naked' no longer refuses prompts here (words of sexual content involving minors stay")
        assert await commands.list_words(session, policy, guild_id=guild) == (
            "a word this server does not allow: clown\nremoved from the policy's lists: naked"
        )
        assert await commands.list_words(session, policy, guild_id=other) == (
            "this server has no words of its own (the policy's lists apply)"
        )
        assert (
            await commands.set_policy(
                session, policy, guild_id=guild, moderator_id=moderator, category="gore", choice="allow"
            )
            == "gore: allowed here"
        )
        with pytest.raises(commands.ModerationCommandError, match="sexual content involving minors is locked"):
            await commands.set_policy(
                session, policy, guild_id=guild, moderator_id=moderator, category="minors", choice="allow"
            )
        with pytest.raises(commands.ModerationCommandError, match="choose one of block, nsfw, allow or default"):
            await commands.set_policy(
                session, policy, guild_id=guild, moderator_id=moderator, category="gore", choice="maybe"
            )
        shown = (await commands.show_policy(session, policy, guild_id=guild)).splitlines()
        assert shown[0] == "sexual content involving minors: blocked everywhere (locked)"
        assert "gore: allowed" in shown
        assert "sexual content: only in NSFW channels (default)" in shown
        assert (
            await commands.ban_user(
                session, guild_id=guild, moderator_id=moderator, user_id=user, user_name="@ann", duration="2h", now=T0
            )
            == "@ann is banned from painting here until 2026-12-01 14:00 UTC"
        )
        with pytest.raises(commands.ModerationCommandError, match="duration 'soon'"):
            await commands.ban_user(
                session, guild_id=guild, moderator_id=moderator, user_id=user, user_name="@ann", duration="soon"
            )
        refused = await admit(
            session, policy, user_id=user, guild_id=guild, channel_id="7", texts=["a cat"], nsfw_channel=False, now=T0
        )
        elsewhere = await admit(
            session, policy, user_id=user, guild_id=other, channel_id="7", texts=["a cat"], nsfw_channel=False, now=T0
        )
        assert refused.message == "you are timed out on this server until 2026-12-01 14:00 UTC (by a moderator)"
        assert elsewhere.allowed
        assert (
            await commands.unban_user(
                session, guild_id=guild, moderator_id=moderator, user_id=user, user_name="@ann", now=T0
            )
            == "@ann may paint here again"
        )
        assert (
            await commands.unban_user(
                session, guild_id=guild, moderator_id=moderator, user_id=user, user_name="@ann", now=T0
            )
            == "@ann was not banned here"
        )
        log = await mod.audit_log(session, guild_id=guild)
    assert {r.kind for r in log} >= {"word+", "word-", "policy", "ban", "unban"}
    assert all(r.moderator == "discord:900" for r in log)


def test_flagged_outputs_follow_the_server_and_the_channel() -> None:
    defaults = mod.ServerModeration(choices={}, added=frozenset(), removed=frozenset())
    held = mod.ServerModeration(choices={}, added=frozenset(), removed=frozenset(), flagged_output="hold")
    telegram_nsfw = mod.ServerModeration(choices={}, added=frozenset(), removed=frozenset(), nsfw_chat=True)
    assert output_action(defaults, flagged=False, nsfw_channel=False) == "deliver"
    assert output_action(defaults, flagged=True, nsfw_channel=False) == "spoiler"
    assert output_action(defaults, flagged=True, nsfw_channel=True) == "deliver"
    assert output_action(held, flagged=True, nsfw_channel=False) == "hold"
    assert output_action(telegram_nsfw, flagged=True, nsfw_channel=False) == "deliver"
    assert blur_previews(defaults, nsfw_channel=False)
    assert not blur_previews(defaults, nsfw_channel=True)


def test_a_blurred_preview_keeps_its_size_and_loses_its_detail() -> None:
    image = Image.new("RGB", (64, 64), "white")
    for x in range(0, 64, 2):
        for y in range(64):
            image.putpixel((x, y), (0, 0, 0))  # one-pixel stripes: all detail
    data = io.BytesIO()
    image.save(data, format="PNG")
    with Image.open(io.BytesIO(blurred_png(data.getvalue()))) as out:
        assert out.size == (64, 64)
        before = ImageStat.Stat(image.convert("L")).stddev[0]
        after = ImageStat.Stat(out.convert("L")).stddev[0]
    assert before > 120
    assert after < before / 5  # the stripes are gone
