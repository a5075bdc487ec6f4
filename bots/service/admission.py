"""The one admission pipeline every job goes through, whichever way it is born.

    context (who, where, plan, preferences)           ``context.load_context``
    → policy checks (closed channel, moderation, …)   ``checks.POLICY_CHECKS``
    → what the engine can do                          ``capabilities.check_capabilities``
    → quota and concurrency hold                      here, ``_admit``: atomic per user
    → job rows (``queued``, or held past the plan's concurrency limit)
    → enqueue on arq, by lane                         here, ``announce``

Entry points (``JobService.imagine``/``blend``/``press``) build the ``Intent`` and the drafts; this module owns
the order and the transaction. Admission is atomic per user: the user's row is locked (``SELECT … FOR UPDATE`` on
PostgreSQL; every SQLite transaction is a ``BEGIN IMMEDIATE`` writer), then the idempotency key, the queue limit and
the balance are checked and the reservation written in the same transaction as the job rows. So 50 concurrent
requests never spend past the balance, and a double click (the same interaction or callback id) makes one job.
The queue is told only after the commit; a repeated request re-announces its still-queued jobs, which the queue
ignores for a job id it already holds (arq ``_job_id``), so a crash between commit and enqueue heals on retry.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.capabilities import check_capabilities
from impasto.bots.service.checks import Intent, PolicyCheck, run_checks
from impasto.bots.service.context import Context, load_context
from impasto.bots.service.drafts import Draft
from impasto.bots.service.errors import (
    CreditsExhausted,
    DailyCapReached,
    InvalidRequest,
    QueueFull,
    QueueUnavailable,
    RelaxNotAllowed,
)
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import Enqueue, JobTicket, QueuedRender
from impasto.engine.registry import Registry
from impasto.queue import metrics
from impasto.storage import admission as sql
from impasto.storage import history, ledger
from impasto.storage.admission import NewJob
from impasto.storage.lifecycle import Released, fail_job, lock_user, release_held
from impasto.storage.models import QUEUED, Job, utcnow
from impasto.storage.plans import Plan, Plans

log = logging.getLogger(__name__)

HELD_NOTICE = (
    "Job queued: you have reached the maximum allowed number of concurrent jobs; "
    "this job will start as soon as another one finishes"
)


class Admission:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        plans: Plans,
        enqueue: Enqueue,
        checks: Sequence[PolicyCheck],
        registry: Registry | None = None,
    ) -> None:
        self.registry = registry  # what each model can do, for the capability step
        self.sessions = sessions
        self.plans = plans
        self.enqueue = enqueue
        self.checks = list(checks)

    async def context(self, who: Requester) -> Context:
        async with self.sessions() as session, session.begin():
            return await load_context(session, who, self.plans)

    async def submit(
        self,
        ctx: Context,
        intent: Intent,
        drafts: Sequence[Draft],
        request_key: str,
        *,
        looked_up: bool = False,
    ) -> list[JobTicket]:
        """Policy checks, capability check, hold, rows, enqueue. ``request_key`` (from ``request_key()``) makes it
        idempotent: a request already admitted under it is answered with its jobs, and checked no further.
        ``looked_up``: the caller has just called ``replay`` itself (before fetching links) and found nothing, so the
        lookup is not repeated; a racing twin is still caught by the unique index below."""
        replay = None if looked_up else await self.replay(request_key)
        if replay is not None:
            return replay
        await run_checks(self.checks, ctx, replace(intent, jobs=tuple(d.job for d in drafts if d.renders)))
        for draft in drafts:
            if draft.renders:
                check_capabilities(draft.action, draft.job, self.registry)
                if draft.mode == "relax" and not ctx.plan.relax:
                    raise relax_refusal(self.plans, ctx.plan)
        try:
            tickets, released = await self._admit(ctx, drafts, request_key)
        except IntegrityError:
            # Another request with this key won the race on the unique index: answer with its jobs.
            replay = await self.replay(request_key)
            if replay is None:
                raise
            return replay
        await self.announce(released, failing=tickets)
        for draft, made in zip(drafts, tickets, strict=True):
            if not made.duplicate:
                metrics.job_admitted(draft.action.value, draft.mode)
        return tickets

    async def check(self, ctx: Context, intent: Intent) -> None:
        """The policy checks alone, for a request answered without a new job (U pressed again on a picked image):
        a closed channel, a ban or a flood refuses it as it would refuse a new job."""
        await run_checks(self.checks, ctx, intent)

    async def replay(self, request_key: str) -> list[JobTicket] | None:
        """The tickets of an earlier request with this key (re-announcing its released, still-queued jobs), or None."""
        async with self.sessions() as session:
            rows = await sql.jobs_for_request(session, request_key)
            if not rows:
                return None
            tickets, released = await _replayed(session, rows)
        await self.announce(released)
        return tickets

    async def start(self, who: Requester, request_key: str) -> Context | list[JobTicket]:
        """``replay``, then ``context`` when nothing was found, in one transaction: the tickets of an earlier request
        with this key (its released, still-queued jobs re-announced), or who is asking."""
        async with self.sessions() as session, session.begin():
            rows = await sql.jobs_for_request(session, request_key)
            if not rows:
                return await load_context(session, who, self.plans)
            tickets, released = await _replayed(session, rows)
        await self.announce(released)
        return tickets

    async def announce(self, released: Sequence[Released], *, failing: Sequence[JobTicket] | None = None) -> None:
        """Hand released jobs to the queue.

        If that fails, the request's own queued jobs (``failing``) are failed, refunding, and the user is told. Without
        ``failing`` (a replay of an earlier request, a job released by a cancel) a failure is only logged: the jobs
        stay released in SQL and the queue's sweep puts them on the queue once it is reachable again.
        """
        for job in released:
            request = QueuedRender(
                job_id=job.job_id,
                lane=job.mode,  # type: ignore[arg-type]  # modes and lanes share names: fast, relax, turbo
                user_key=job.user_key,
                guild_key=job.guild_key,
                enqueued_at=time.time(),
            )
            try:
                await self.enqueue(request)
            except Exception as exc:
                if failing is None:
                    log.warning("queueing job %s failed (the sweep will retry): %s", job.job_id, exc)
                    continue
                async with self.sessions() as session, session.begin():
                    for other in failing:
                        if other.status == QUEUED:
                            await fail_job(session, other.job_id, error=f"could not be queued: {exc}")
                raise QueueUnavailable(
                    "the job queue is not reachable right now; nothing was charged, try again in a minute"
                ) from exc

    async def _admit(
        self, ctx: Context, drafts: Sequence[Draft], request_key: str
    ) -> tuple[list[JobTicket], list[Released]]:
        now = utcnow()
        month = ledger.month_period(now)
        costs = self.plans.costs
        async with self.sessions() as session, session.begin():
            # The per-user lock: every admission and release for this user queues here.
            await lock_user(session, ctx.user_id)
            mine = await sql.user_jobs(session, ctx.user_id, request_key)
            if mine.admitted:
                existing = await sql.jobs_for_request(session, request_key)
                return [ticket(row, duplicate=True) for row in existing], []
            renders = [d for d in drafts if d.renders]
            day: str | None = None
            if renders:
                self._hold_queue_room(ctx, mine.active, len(renders))
                cost = sum(d.estimate_gpu_seconds * costs.multiplier(d.mode) for d in renders)
                if cost > 0:
                    day = await self._hold_credits(session, ctx, now, month, cost)
            new = [
                NewJob(
                    action=d.action.value,
                    prompt=d.prompt,
                    display=d.job.display,
                    params=dict(d.params),
                    seed=d.seed,
                    model=d.job.model,
                    mode=d.mode,
                    visibility=d.job.visibility,
                    reserved_gpu_seconds=d.estimate_gpu_seconds * (costs.multiplier(d.mode) if d.renders else 0.0),
                    cost_multiplier=costs.multiplier(d.mode) if d.renders else 0.0,
                    parent_id=d.parent_id,
                    image_index=d.image_index,
                    input_image_keys=list(d.input_image_keys),
                    done_images=list(d.done_images),
                )
                for d in drafts
            ]
            # Jobs past the plan's concurrency limit stay held in SQL; the rest go to the queue after the commit. With
            # none of the user's jobs held already, the new ones are the only candidates: the first that fit under
            # the limit are written released (what ``release_held`` would do next, oldest first, without the three
            # statements). Otherwise older held jobs go first: ``release_held`` chooses.
            limit = ctx.plan.max_concurrent_jobs
            release = max(0, limit - mine.in_flight) if mine.held == 0 else 0
            rows = await sql.add_jobs(
                session,
                new,
                user_id=ctx.user_id,
                guild_id=ctx.guild_id,
                channel_id=ctx.channel_id,
                nsfw_channel=ctx.who.nsfw_channel,
                locale=ctx.locale,
                request_key=request_key,
                max_concurrent=limit,
                now=now,
                month=month,
                day=day,
                release=release,
            )
            if mine.held == 0:
                released = [
                    Released(job_id=row.id, mode=row.mode, user_key=ctx.user_key, guild_key=ctx.guild_key)
                    for row in rows
                    if row.status == QUEUED and row.released_at is not None
                ]
            else:
                released = await release_held(session, ctx.user_id, locked=True)
                stamped = {job.job_id for job in released}
                for row in rows:
                    if row.id in stamped:
                        row.released_at = now  # the rows are not in the session: show the release on them
            return [ticket(row) for row in rows], released

    def _hold_queue_room(self, ctx: Context, active: int, count: int) -> None:
        plan = ctx.plan
        room = plan.max_concurrent_jobs + plan.max_queued_jobs - active
        if count > room:
            raise QueueFull(
                f"your job queue is full ({active} jobs waiting or running, {plan.name} plan allows "
                f"{plan.max_concurrent_jobs} running + {plan.max_queued_jobs} queued); "
                "wait for a job to finish, then resubmit" + (f" (this prompt makes {count} jobs)" if count > 1 else "")
            )

    async def _hold_credits(
        self, session: AsyncSession, ctx: Context, now: datetime, month: str, cost: float
    ) -> str | None:
        """Reserve ``cost`` against the month's fast time and the server's daily cap; the day period, if capped."""
        if not await ledger.try_reserve(session, ctx.user_id, month, cost, ctx.plan.fast_gpu_seconds):
            used, reserved = await history.usage(session, ctx.user_id, month)
            left = max(0.0, ctx.plan.fast_gpu_seconds - used - reserved) / 3600
            remedy = (
                "switch to relax with /relax (or add --relax) to keep going"
                if ctx.plan.relax
                else f"fast time renews on {next_month(now).isoformat()}"
            )
            raise CreditsExhausted(
                f"you have {left:.2f} of {ctx.plan.fast_gpu_hours:.1f} fast hours left this month and this needs "
                f"about {cost / 3600:.2f}; {remedy}"
            )
        if ctx.daily_cap_gpu_seconds is None or ctx.guild_key is None:
            return None
        day = ledger.day_period(now, ctx.guild_key)
        if not await ledger.try_reserve(session, ctx.user_id, day, cost, ctx.daily_cap_gpu_seconds):
            raise DailyCapReached(
                f"this server allows {ctx.daily_cap_gpu_seconds / 60:.1f} fast GPU-minutes per member "
                "per day and this job would pass it; try tomorrow, or use /relax"
            )
        return day


async def _replayed(session: AsyncSession, rows: Sequence[Job]) -> tuple[list[JobTicket], list[Released]]:
    """An earlier request's tickets, and its jobs to announce again (released and still queued)."""
    tickets = [ticket(row, duplicate=True) for row in rows]
    user_key, guild_key = await sql.owner_keys(session, rows[0].id)
    released = [
        Released(job_id=t.job_id, mode=t.mode, user_key=user_key, guild_key=guild_key)
        for t in tickets
        if t.status == QUEUED and not t.waiting
    ]
    return tickets, released


def relax_refusal(plans: Plans, plan: Plan) -> RelaxNotAllowed:
    with_relax = sorted(p.name for p in plans.plans.values() if p.relax)
    return RelaxNotAllowed(
        f"relax mode is not part of the {plan.name} plan"
        + (f"; plans with relax: {', '.join(with_relax)}" if with_relax else "")
    )


def ticket(row: Job, *, duplicate: bool = False) -> JobTicket:
    waiting = row.status == QUEUED and row.released_at is None
    return JobTicket(
        job_id=row.id,
        status=row.status,
        mode=row.mode,
        display=row.display,
        seed=row.seed,
        reserved_gpu_seconds=row.reserved_gpu_seconds,
        duplicate=duplicate,
        waiting=waiting,
        notice=HELD_NOTICE if waiting else None,
    )


def request_key(key: str) -> str:
    """Idempotency keys are platform ids (short); a longer one is hashed to fit its column, keeping it unique."""
    if not key:
        raise InvalidRequest("a request needs an idempotency key (the interaction or callback id)")
    return key if len(key) <= 120 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def next_month(now: datetime) -> date:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return date(year, month, 1)
