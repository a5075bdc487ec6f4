"""Results the worker's image classifier flagged: the server's settings for them, and the review-queue record.

Delivery (``delivery/core.py``) asks what a flagged result becomes where it was asked (``moderation/outputs.py``
decides from these settings), and records a hold: one ``HELD`` audit row per job, which the moderators' Approve or
Reject answers (``storage.moderation.decide``).
"""

from __future__ import annotations

from sqlalchemy import select

from impasto.bots.service.base import ServiceBase
from impasto.bots.service.errors import InvalidRequest
from impasto.storage import moderation as mod
from impasto.storage.models import HELD, Image, Job, ModerationEvent


class FlaggedResults(ServiceBase):
    async def output_settings(self, job_id: str) -> mod.ServerModeration:
        """The moderation settings of the server the job was asked in (a DM or the console: the defaults)."""
        async with self.sessions() as session:
            guild_id = await session.scalar(select(Job.guild_id).where(Job.id == job_id))
            return await mod.server_moderation(session, guild_id)

    async def held_id(self, job_id: str) -> int | None:
        """The ``HELD`` audit row of a result waiting for review, if the job's result was held."""
        async with self.sessions() as session:
            return await session.scalar(
                select(ModerationEvent.id).where(ModerationEvent.job_id == job_id, ModerationEvent.kind == HELD)
            )

    async def awaiting_review(self, job_id: str) -> bool:
        """The job's result is held and no moderator has decided: nothing may show its pictures yet."""
        async with self.sessions() as session:
            return await mod.awaiting_review(session, job_id)

    async def hold_result(self, job_id: str) -> int:
        """Put a flagged result in the review queue (once per job: a repeat returns the first row's id)."""
        async with self.sessions() as session, session.begin():
            job = await session.get(Job, job_id, with_for_update=True)  # two processes holding at once: one row
            if job is None:
                raise InvalidRequest(f"no job {job_id}")
            earlier = await session.scalar(
                select(ModerationEvent.id).where(ModerationEvent.job_id == job_id, ModerationEvent.kind == HELD)
            )
            if earlier is not None:
                return earlier
            scores = await session.scalars(
                select(Image.nsfw_score).where(Image.job_id == job_id, Image.nsfw_score.is_not(None))
            )
            held = await mod.hold(
                session,
                job_id=job_id,
                user_id=job.user_id,
                guild_id=job.guild_id,
                channel_id=job.channel_id,
                nsfw_score=max((s for s in scores if s is not None), default=0.0),
            )
            return held.id
