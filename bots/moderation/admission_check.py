"""Moderation as one of the admission pipeline's policy checks (``bots/service/checks.py``).

Built once in ``runtime.job_service`` from the operator's policy file and added to the checks, so every way a job is
born — imagine with each permutation, a Remix edit, Custom Zoom, every button re-running a stored prompt, /blend
(no text: the ban check alone) — passes the ban check and the prompt policy with the server's rules before anything
is charged. A refusal is audited (and counts on the warn → timeout → ban ladder) in its own transaction, committed
before the user is answered: no job is made, so nothing else would keep it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.moderation.check import job_texts
from impasto.bots.moderation.gate import admit
from impasto.bots.service.checks import Intent
from impasto.bots.service.context import Context
from impasto.bots.service.errors import PromptRefused
from impasto.bots.service.replay import dumps, recorded, same
from impasto.queue import metrics
from impasto.queue.moderation.policy import Policy

#: The request a moderator approved on appeal (its refusal's record, ``replay.recorded``), while it is made again
#: (``review.Review``): the policy is waived for exactly that request — the same call, by the same user, in the same
#: place — in exactly that call; bans and every other check still apply.
_WAIVED: ContextVar[Mapping[str, Any] | None] = ContextVar("impasto_waived_request", default=None)


@contextlib.contextmanager
def waive_policy(request: Mapping[str, Any]) -> Iterator[None]:
    token = _WAIVED.set(request)
    try:
        yield
    finally:
        _WAIVED.reset(token)


def _waived(ctx: Context, intent: Intent) -> bool:
    waived = _WAIVED.get()
    return waived is not None and intent.request is not None and same(recorded(ctx.who, intent.request), waived)


class ModerationCheck:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: Policy) -> None:
        self.sessions = sessions
        self.policy = policy

    async def __call__(self, ctx: Context, intent: Intent) -> None:
        # What would be painted: every permutation's segments (``--no`` items are steered away from, not painted).
        texts = [text for job in intent.jobs for text in job_texts(job)]
        request = dumps(recorded(ctx.who, intent.request)) if intent.request is not None else None
        async with self.sessions() as session, session.begin():
            admission = await admit(
                session,
                self.policy,
                user_id=ctx.user_id,
                guild_id=ctx.guild_id,
                channel_id=ctx.channel_id,
                texts=texts,
                nsfw_channel=ctx.who.nsfw_channel,
                prompt=intent.text or None,
                check_policy=not _waived(ctx, intent),
                request=request,
            )
        if not admission.allowed:
            if admission.verdict is not None and admission.verdict.category is not None:
                metrics.moderation_refused(admission.verdict.category)
            refusal_id = admission.strike.refusal_id if admission.strike is not None else None
            raise PromptRefused(admission.message or "this prompt is not allowed here", refusal_id=refusal_id)
