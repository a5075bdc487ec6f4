"""Results the worker's image classifier flagged: the server's settings for them, and the review-queue record.

Delivery (``delivery/core.py``) asks what a flagged result becomes where it was asked (``moderation/outputs.py``
decides from these settings), and records a hold: one ``HELD`` audit row per job, which the moderators' Approve or
Reject answers (``storage.moderation.decide``).
"""

from __future__ import annotations

from sqlalchemy import select

from impasto.bots.i18n.catalog import t
from impasto.bots.moderation.outputs import RepostAction, repost_action
from impasto.bots.service.base import ServiceBase
from impasto.bots.service.errors import InvalidRequest, JobNotReady
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView
from impasto.queue.actions import Action
from impasto.storage import moderation as mod
from impasto.storage.models import FLAGGED_IMAGE, HELD, Image, Job, ModerationEvent


class FlaggedResults(ServiceBase):
    async def output_settings(self, job_id: str) -> mod.ServerModeration:
        """The moderation settings of the server the job was asked in (a DM or the console: the defaults)."""
        async with self.sessions() as session:
            guild_id = await session.scalar(select(Job.guild_id).where(Job.id == job_id))
            return await mod.server_moderation(session, guild_id)

    async def repost_action(
        self, view: JobView, *, guild_id: int | None, nsfw_channel: bool, index: int | None = None
    ) -> RepostAction:
        """What the job's pictures (``index``: that one only) become when posted again in a place (``guild_id``: its
        server's SQL id, None for a DM; ``nsfw_channel``: that channel's flag, False for a DM or the web): the worker
        does not check a finished job's pictures again, so ``/show``, ``/describe`` of a job, U1–U4, ✉️, Telegram's
        file button and the web's ``/img`` and ``/download`` ask this before they post them. A U1–U4 pick holds its
        grid's picture: it is judged as that picture (the grid's verdict, the grid's review)."""
        image = view.image(index) if index is not None else None
        flagged = view.flagged if index is None else image is not None and image.flagged
        reviewed = view.job_id
        async with self.sessions() as session:
            if not flagged and view.action == Action.UPSCALE.value and view.parent_id is not None:
                keys = [image.key] if image is not None else [i.key for i in view.images]
                same = await session.scalar(
                    select(Image.id).where(
                        Image.job_id == view.parent_id, Image.store_key.in_(keys), Image.moderation == FLAGGED_IMAGE
                    )
                )
                flagged, reviewed = same is not None, view.parent_id
            if not flagged:
                return "deliver"
            review = await mod.review_of(session, reviewed)
            stored = await mod.server_moderation(session, guild_id)
        return repost_action(stored, flagged=True, review=review, nsfw_channel=nsfw_channel)

    async def repost_action_for(self, who: Requester, view: JobView, index: int | None = None) -> RepostAction:
        """``repost_action`` where ``who`` asks (their server, their channel's NSFW flag)."""
        ctx = await self._context(who)
        return await self.repost_action(view, guild_id=ctx.guild_id, nsfw_channel=who.nsfw_channel, index=index)

    async def web_action(self, view: JobView, index: int | None = None) -> RepostAction:
        """``repost_action`` on the web front door (``/img``, ``/download``): no NSFW place, under the settings of the
        server the job was asked in (a DM's job: the defaults)."""
        async with self.sessions() as session:
            guild_id = await session.scalar(select(Job.guild_id).where(Job.id == view.job_id))
        return await self.repost_action(view, guild_id=guild_id, nsfw_channel=False, index=index)

    async def flagged_picture(self, key: str) -> tuple[str, int] | None:
        """A flagged picture stored under ``key``: its job and index (None: no job's flagged picture is stored there;
        a U1–U4 pick shares its grid's key, and the grid's row carries the verdict)."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(Image.job_id, Image.index)
                    .where(Image.store_key == key, Image.moderation == FLAGGED_IMAGE)
                    .limit(1)
                )
            ).first()
        return (row[0], row[1]) if row is not None else None

    @staticmethod
    def refuse_repost(job_id: str, action: RepostAction) -> None:
        """A repost the decision refuses, as one line: held for review (not ready yet), or flagged and not posted."""
        if action == "held":
            raise JobNotReady(t("repost.refusal.held", "en", job=job_id))
        if action == "withheld":
            raise InvalidRequest(t("repost.refusal.flagged", "en", job=job_id))

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
