"""The evidence purge deletes the stored images of refused and flagged jobs past retention, on both databases.

Audit rows stay; a result a moderator approved stays; a picture another job still shows (the store is
content-addressed: the same bytes are one file) stays.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.storage import moderation as mod
from impasto.storage.images import ImageStore
from impasto.storage.models import APPROVED, FLAGGED, HELD, Image, Job, ModerationEvent, User, utcnow

Sessions = async_sessionmaker[AsyncSession]
OLD = timedelta(days=40)


async def _job(session: AsyncSession, user: User, name: str, outputs: list[str], inputs: list[str]) -> str:
    job = Job(
        user_id=user.id,
        action="imagine",
        mode="fast",
        idempotency_key=f"k/{name}",
        request_key=f"k/{name}",
        input_image_keys=inputs,
        status="done",
    )
    session.add(job)
    await session.flush()
    for index, key in enumerate(outputs, start=1):
        session.add(Image(job_id=job.id, index=index, store_key=key, width_px=8, height_px=8))
    await session.flush()
    return job.id


async def test_purge_deletes_the_images_of_old_flagged_jobs_and_keeps_the_rest(
    sessions: Sessions, tmp_path: Path
) -> None:
    store = ImageStore(tmp_path / "images")
    flagged_out = store.put(b"flagged output")
    flagged_in = store.put(b"flagged input", ext="jpg")
    shared = store.put(b"the same bytes another job shows")
    approved_out = store.put(b"approved result")
    recent_out = store.put(b"recent flagged output")
    then = utcnow() - OLD
    async with sessions() as session, session.begin():
        user = User(platform="discord", platform_user_id="9", display_name="eve")
        session.add(user)
        await session.flush()
        flagged = await _job(session, user, "flagged", [flagged_out, shared], [flagged_in])
        await _job(session, user, "innocent", [], [shared])  # reads the shared picture as its input
        approved = await _job(session, user, "approved", [approved_out], [])
        recent = await _job(session, user, "recent", [recent_out], [])
        await mod.record(session, FLAGGED, user_id=user.id, job_id=flagged, note="output 1: 0.99", now=then)
        held = await mod.hold(
            session, job_id=approved, user_id=user.id, guild_id=None, channel_id=None, nsfw_score=0.9, now=then
        )
        await mod.decide(session, held.id, moderator_id=user.id, approve=True, now=then)
        await mod.record(session, FLAGGED, user_id=user.id, job_id=recent, note="output 1: 0.99")

    async with sessions() as session, session.begin():
        purged = await mod.purge_evidence(session, retention_days=30)
        doomed = await mod.evidence_image_keys(session, purged.job_ids)
    assert sorted(purged.job_ids) == sorted([flagged, approved])
    assert doomed == sorted([flagged_out, flagged_in])
    assert [store.delete(key) for key in doomed] == [True, True]
    assert not store.exists(flagged_out)
    assert not store.exists(flagged_in)
    for kept in (shared, approved_out, recent_out):
        assert store.exists(kept)
    assert store.delete(flagged_out) is False  # already gone: nothing to do
    async with sessions() as session:
        kinds = sorted(
            (await session.scalars(ModerationEvent.__table__.select().with_only_columns(ModerationEvent.kind))).all()
        )
    assert kinds == sorted([FLAGGED, FLAGGED, HELD, APPROVED])  # the audit rows stay
    async with sessions() as session, session.begin():
        again = await mod.purge_evidence(session, retention_days=30)
    assert again.job_ids == ()  # each row's evidence goes once
