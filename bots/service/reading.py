"""Looking jobs up: one job, ``/show``, ``/history``, ``/info``."""

from __future__ import annotations

from dataclasses import replace

from impasto.bots.i18n.catalog import t
from impasto.bots.service.admission import next_month
from impasto.bots.service.errors import JobNotFound, NotYourJob
from impasto.bots.service.flagged import FlaggedResults
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import ImageView, InfoView, JobView, Reshown
from impasto.storage import accounts, history, ledger
from impasto.storage.history import JobRecord
from impasto.storage.models import FLAGGED_IMAGE, RUNNING, User, utcnow

MODES = ("fast", "relax", "turbo")


class Reading(FlaggedResults):
    async def job(self, job_id: str) -> JobView:
        """Any job by id, with its images and parameters (buttons on any message resolve through this)."""
        async with self.sessions() as session:
            record = await history.job_record(session, job_id)
        if record is None:
            raise JobNotFound(f"no job {job_id!r}; job ids are the 12 characters shown under each result")
        return view_of(record)

    async def show(self, who: Requester, job_id: str) -> Reshown:
        """``/show JOB_ID``: re-post one of your own jobs with its buttons, as the asker's place has a flagged picture
        (``repost_action``): behind a spoiler, or refused while it waits for review or where it would be held or
        removed (the job's first delivery may have been in a place with other settings)."""
        view = await self._own(who, job_id)
        action = await self.repost_action_for(who, view)
        self.refuse_repost(job_id, action)
        return Reshown(view, spoiler=action == "spoiler")

    async def mailed(self, who: Requester, job_id: str) -> Reshown:
        """✉️ on a job's message: the job, to send to ``who`` by DM (Midjourney's envelope). Anyone may ask for a
        public job, only its owner for a stealth one (``NotYourJob``). Its pictures as ``repost_action`` has them where
        the reaction was, a DM being no NSFW place: behind a spoiler, or left out with the one line saying why."""
        view = await self.job(job_id)
        if view.visibility != "public" and (view.platform, view.user_id) != (who.platform, who.user_id):
            raise NotYourJob(f"job {job_id} is stealth: only its owner gets it by ✉️")
        action = await self.repost_action_for(replace(who, nsfw_channel=False), view)
        if action in ("held", "withheld"):
            line = "repost.refusal.held" if action == "held" else "repost.refusal.flagged"
            return Reshown(view, withheld=t(line, "en", job=job_id))
        return Reshown(view, spoiler=action == "spoiler")

    async def history(self, who: Requester, search: str | None = None, limit: int = 10) -> list[JobView]:
        """Your jobs, newest first; ``search`` matches the prompt text, case-insensitively."""
        async with self.sessions() as session:
            user_id = await accounts.find_user_id(session, who.platform, who.user_id)
            if user_id is None:
                return []
            records = await history.history(session, user_id, search, max(1, min(limit, 100)))
        return [view_of(record) for record in records]

    async def info(self, who: Requester) -> InfoView:
        """``/info``: plan, mode, fast time left this month, lifetime and relaxed usage, queued and running jobs."""
        ctx = await self._context(who)
        now = utcnow()
        async with self.sessions() as session:
            user = await session.get(User, ctx.user_id)
            assert user is not None
            used, reserved = await history.usage(session, ctx.user_id, ledger.month_period(now))
            active = await history.active_jobs(session, ctx.user_id)
        queued: dict[str, int] = dict.fromkeys(MODES, 0)
        running: list[str] = []
        for job_id, status, mode in active:
            if status == RUNNING:
                running.append(job_id)
            else:
                queued[mode] = queued.get(mode, 0) + 1
        return InfoView(
            platform=who.platform,
            user_id=who.user_id,
            plan=ctx.plan.name,
            mode=ctx.prefs.mode,
            visibility=ctx.prefs.visibility,
            remix=ctx.prefs.remix,
            fast_gpu_seconds_limit=ctx.plan.fast_gpu_seconds,
            fast_gpu_seconds_used=used,
            fast_gpu_seconds_reserved=reserved,
            renews_on=next_month(now),
            lifetime_images=user.lifetime_images,
            lifetime_gpu_seconds=user.lifetime_gpu_seconds,
            relaxed_images=user.relaxed_images,
            relaxed_gpu_seconds=user.relaxed_gpu_seconds,
            queued_jobs=queued,
            running_jobs=tuple(running),
        )

    async def _own(self, who: Requester, job_id: str) -> JobView:
        view = await self.job(job_id)
        if (view.platform, view.user_id) != (who.platform, who.user_id):
            raise NotYourJob(f"job {job_id} belongs to someone else; you can only use your own job ids")
        return view


def view_of(record: JobRecord) -> JobView:
    job = record.job
    return JobView(
        job_id=job.id,
        platform=record.owner_platform,
        user_id=record.owner_user_id,
        user_name=record.owner_name,
        guild_id=record.guild_id,
        channel_id=job.channel_id,
        parent_id=job.parent_id,
        action=job.action,
        image_index=job.image_index,
        prompt=job.prompt,
        display=job.display,
        params=dict(job.params),
        seed=job.seed,
        model=job.model,
        mode=job.mode,
        visibility=job.visibility,
        status=job.status,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        gpu_seconds=job.gpu_seconds,
        charged_gpu_seconds=job.charged_gpu_seconds,
        error=job.error,
        attempts=job.attempts,
        favorite=job.favorite,
        cancel_requested=job.cancel_requested,
        images=tuple(
            ImageView(i.index, i.store_key, i.width_px, i.height_px, i.nsfw_score, i.moderation == FLAGGED_IMAGE)
            for i in record.images
        ),
        read_as=job.read_as,
        nsfw_channel=job.nsfw_channel,
        described=tuple(job.described or ()),
        locale=job.locale or "en",
    )
