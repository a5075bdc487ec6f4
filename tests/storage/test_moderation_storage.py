"""Moderation in SQL on SQLite and PostgreSQL: server settings and words, the ladder, bans, the log, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.migrations.config import downgrade, upgrade
from impasto.queue.moderation.policy import load_policy
from impasto.queue.moderation.verdict import check_prompt
from impasto.storage import moderation as mod
from impasto.storage.db import make_engine
from impasto.storage.models import BAN, REFUSED, TIMEOUT, ModerationEvent

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = load_policy()

Sessions = async_sessionmaker[AsyncSession]


async def _people(sessions: Sessions) -> tuple[int, int, int]:
    async with sessions() as session, session.begin():
        user = await mod.user_id_for(session, "discord", "100")
        art = await mod.guild_id_for(session, "discord", "1")
        kids = await mod.guild_id_for(session, "discord", "2")
        assert await mod.user_id_for(session, "discord", "100") == user  # found, not made twice
    return user, art, kids


async def test_server_words_and_choices_apply_to_their_server_only(sessions: Sessions) -> None:
    _, art, kids = await _people(sessions)
    async with sessions() as session, session.begin():
        await mod.set_choice(session, art, "sexual", "allow")
        assert await mod.add_word(session, kids, "custom", "clown")
        assert not await mod.add_word(session, kids, "custom", "clown")  # already there
        assert await mod.remove_word(session, art, "gore") == "removed"
        assert await mod.remove_word(session, art, "gore") == "unchanged"
    async with sessions() as session:
        art_rules = POLICY.rules_for(await mod.server_moderation(session, art))
        kids_rules = POLICY.rules_for(await mod.server_moderation(session, kids))
    assert check_prompt(POLICY, art_rules, "a nude figure", nsfw_channel=False).allowed
    assert check_prompt(POLICY, art_rules, "gore", nsfw_channel=False).allowed
    assert check_prompt(POLICY, art_rules, "a sad clown", nsfw_channel=False).allowed
    assert not check_prompt(POLICY, kids_rules, "a nude figure", nsfw_channel=False).allowed
    assert not check_prompt(POLICY, kids_rules, "a sad clown", nsfw_channel=False).allowed
    assert not check_prompt(POLICY, kids_rules, "gore", nsfw_channel=False).allowed

    async with sessions() as session, session.begin():
        assert await mod.remove_word(session, kids, "clown") == "unadded"  # the server's own word goes
        assert await mod.add_word(session, art, "gore", "gore")  # and a removal is undone by adding it back
        await mod.set_choice(session, art, "sexual", None)
    async with sessions() as session:
        stored = await mod.server_moderation(session, art)
        assert stored.choices == {}
        assert stored.removed == frozenset()
        assert stored.added == {("gore", "gore")}
        assert (await mod.server_moderation(session, kids)).added == frozenset()


async def test_settings_are_validated_and_kept(sessions: Sessions) -> None:
    _, art, _ = await _people(sessions)
    async with sessions() as session, session.begin():
        await mod.update_settings(
            session, art, flagged_output="hold", nsfw_chat=True, mod_channel_id="55", timeout_s=600
        )
        with pytest.raises(ValueError, match="use one of hold, spoiler, remove"):
            await mod.update_settings(session, art, flagged_output="blur")
        with pytest.raises(ValueError, match="strike limit 0: at least 1"):
            await mod.update_settings(session, art, strike_limit=0)
    async with sessions() as session:
        stored = await mod.server_moderation(session, art)
    assert (stored.flagged_output, stored.nsfw_chat, stored.mod_channel_id, stored.timeout_s) == (
        "hold",
        True,
        "55",
        600,
    )
    assert stored.strike_limit == 5  # untouched settings keep their defaults


async def _refuse(sessions: Sessions, user: int, guild: int | None, at: datetime) -> mod.Strike:
    async with sessions() as session, session.begin():
        return await mod.record_refusal(
            session,
            user_id=user,
            guild_id=guild,
            channel_id="9",
            category="sexual",
            rule="word",
            matched=["nude"],
            prompt="a nude figure",
            now=at,
            request='{"entry":"imagine","text":"a nude figure"}',
        )


async def test_the_ladder_warns_then_times_out_then_bans(sessions: Sessions) -> None:
    user, art, kids = await _people(sessions)
    async with sessions() as session, session.begin():
        await mod.update_settings(session, art, strike_limit=3, timeout_s=3600, block_after_timeouts=2)
    at = T0
    strikes = [await _refuse(sessions, user, art, at + timedelta(minutes=i)) for i in range(3)]
    assert [s.refusals for s in strikes] == [1, 2, 3]
    assert strikes[0].timeout_until is None
    assert strikes[2].timeout_until == at + timedelta(minutes=2, hours=1)
    async with sessions() as session:
        timeout = await mod.active_ban(session, user, art, now=at + timedelta(minutes=30))
        assert timeout is not None
        assert (timeout.kind, timeout.everywhere) == (TIMEOUT, False)
        assert await mod.active_ban(session, user, kids, now=at + timedelta(minutes=30)) is None  # other server
        assert await mod.active_ban(session, user, art, now=at + timedelta(hours=2)) is None  # over

    # A timeout starts a fresh count; a refusal outside the window does not count either.
    later = at + timedelta(hours=2)
    assert (await _refuse(sessions, user, art, later)).refusals == 1
    assert (await _refuse(sessions, user, art, later + timedelta(hours=25))).refusals == 1
    await _refuse(sessions, user, art, later + timedelta(hours=25, minutes=1))
    third = await _refuse(sessions, user, art, later + timedelta(hours=25, minutes=2))
    assert third.timeout_until is not None
    assert third.banned  # the second timeout within 30 days: banned
    async with sessions() as session:
        banned = await mod.active_ban(session, user, art, now=later + timedelta(days=300))
        assert banned is not None
        assert (banned.kind, banned.until) == (BAN, None)
    async with sessions() as session, session.begin():
        # The ban and the running timeout (the first timeout ran out by itself).
        assert await mod.unban(session, user, art, now=later + timedelta(hours=25, minutes=10)) == 2
    async with sessions() as session:
        assert await mod.active_ban(session, user, art, now=later + timedelta(days=300)) is None
        kinds = [row.kind for row in await mod.audit_log(session, guild_id=art)]
    assert kinds.count(REFUSED) == 7
    assert kinds.count(TIMEOUT) == 2
    assert kinds[0] == "unban"


async def test_an_operator_ban_holds_everywhere_and_lifts_alone(sessions: Sessions) -> None:
    user, art, kids = await _people(sessions)
    async with sessions() as session, session.begin():
        await mod.ban(session, user, None, reason="spam")
        await mod.ban(session, user, art, reason="art only")
    async with sessions() as session, session.begin():
        for guild in (art, kids, None):
            ban = await mod.active_ban(session, user, guild)
            assert ban is not None
        assert await mod.unban(session, user, None) == 1
    async with sessions() as session:
        assert await mod.active_ban(session, user, kids) is None
        assert await mod.active_ban(session, user, art) is not None  # the server's own ban stays
        log = await mod.audit_log(session)
    assert [(r.kind, r.user, r.guild) for r in log[:2]] == [
        ("unban", "discord:100", None),
        (BAN, "discord:100", "discord:1"),
    ]


async def test_retention_purges_evidence_and_keeps_the_rows(sessions: Sessions) -> None:
    user, art, _ = await _people(sessions)
    await _refuse(sessions, user, art, T0 - timedelta(days=40))
    await _refuse(sessions, user, art, T0 - timedelta(days=5))
    async with sessions() as session, session.begin():
        purged = await mod.purge_evidence(session, retention_days=30, now=T0)
        again = await mod.purge_evidence(session, retention_days=30, now=T0)
    assert purged.rows == 1
    assert again.rows == 0
    async with sessions() as session:
        rows = (await session.scalars(select(ModerationEvent).order_by(ModerationEvent.created_at))).all()
    assert [(r.prompt, r.matched, r.category) for r in rows] == [
        (None, None, "sexual"),
        ("a nude figure", "nude", "sexual"),
    ]
    # The request kept for an appeal's rerun holds the prompt too: it goes with the evidence.
    assert [r.note for r in rows] == ["", mod.REQUEST_NOTE + '{"entry":"imagine","text":"a nude figure"}']
    assert rows[0].evidence_purged_at is not None


async def test_0003_keeps_images_and_its_downgrade_drops_only_moderation(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await upgrade(engine, "0002")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (id, platform, platform_user_id, display_name, created_at, lifetime_images,"
                    " lifetime_gpu_seconds, relaxed_images, relaxed_gpu_seconds)"
                    " VALUES (1, 'discord', '42', 'old', '2026-11-01 10:00:00+00', 0, 0, 0, 0)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, user_id, action, prompt, display, params, input_image_keys, seed, model,"
                    " mode, visibility, status, idempotency_key, request_key, queued_at, gpu_seconds,"
                    " charged_gpu_seconds, reserved_gpu_seconds, cost_multiplier, month_period, attempts,"
                    " cancel_requested, favorite, max_concurrent) VALUES ('old-job', 1, 'imagine', 'a cat', 'a cat',"
                    " '{}', '[]', 1, 'tiny-sd15', 'fast', 'public', 'done', 'k/0', 'k', '2026-11-01 10:00:00+00',"
                    " 0, 0, 0, 1, '2026-11', 1, false, false, 3)"
                )
            )
            await connection.execute(
                text(
                    'INSERT INTO images (job_id, "index", store_key, width_px, height_px)'
                    " VALUES ('old-job', 0, 'k', 8, 8)"
                )
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            row = (await connection.execute(text("SELECT store_key, nsfw_score, moderation FROM images"))).one()
        assert tuple(row) == ("k", None, None)  # checked by no classifier
        await downgrade(engine, "0002")
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await connection.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("images")})
            assert (await connection.execute(text("SELECT count(*) FROM images"))).scalar() == 1
        assert not {n for n in names if n.startswith("moderation")}
        assert "nsfw_score" not in columns
    finally:
        await engine.dispose()


async def test_an_appeal_is_taken_once_and_decided_once(sessions: Sessions) -> None:
    user, art, _ = await _people(sessions)
    await _refuse(sessions, user, art, T0)
    async with sessions() as session, session.begin():
        moderator = await mod.user_id_for(session, "discord", "900")
        stranger = await mod.user_id_for(session, "discord", "901")
        refusal = (await mod.audit_log(session, guild_id=art))[0]
        assert refusal.kind == REFUSED
        assert await mod.appeal(session, refusal.id, stranger) is None  # not their refusal
        appealed = await mod.appeal(session, refusal.id, user, now=T0 + timedelta(minutes=1))
        assert appealed is not None
        assert (appealed.kind, appealed.prompt, appealed.category) == ("appeal", "a nude figure", "sexual")
        assert await mod.appeal(session, refusal.id, user) is None  # the button works once
        assert await mod.decide(session, refusal.id, moderator_id=moderator, approve=True) is None  # not an appeal
        decision = await mod.decide(session, appealed.id, moderator_id=moderator, approve=True)
        assert decision is not None
        assert (decision.kind, decision.user_id, decision.ref_id) == ("approved", user, appealed.id)
        assert await mod.decide(session, appealed.id, moderator_id=moderator, approve=False) is None  # decided


async def test_a_held_result_is_decided_once(sessions: Sessions) -> None:
    user, art, _ = await _people(sessions)
    async with sessions() as session, session.begin():
        from impasto.storage.models import Job

        session.add(Job(id="job-1", user_id=user, action="imagine", idempotency_key="k/0", request_key="k"))
        await session.flush()
        assert not await mod.awaiting_review(session, "job-1")  # never held
        held = await mod.hold(session, job_id="job-1", user_id=user, guild_id=art, channel_id="9", nsfw_score=0.91)
        assert await mod.awaiting_review(session, "job-1")
        moderator = await mod.user_id_for(session, "discord", "900")
        rejected = await mod.decide(session, held.id, moderator_id=moderator, approve=False, note="not here")
        assert not await mod.awaiting_review(session, "job-1")  # decided: no longer waiting
        assert rejected is not None
        assert (rejected.kind, rejected.job_id, rejected.note) == ("rejected", "job-1", "not here")
        assert await mod.decide(session, held.id, moderator_id=moderator, approve=True) is None
        log = await mod.audit_log(session, guild_id=art)
    assert [(r.kind, r.job_id, r.moderator) for r in log] == [
        ("rejected", "job-1", "discord:900"),
        ("held", "job-1", None),
    ]
    assert log[1].note == "image score 0.91"
