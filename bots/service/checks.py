"""Step 2 of admission: policy checks, the rules a server or the operator sets on who may make what, where.

Every way a job is born (imagine, blend, each button, remix, custom zoom) runs every check, once the request is read
(so a check sees the parsed prompts: ``--no`` items are not words to paint) and before anything is priced or
charged: ``Admission.submit`` runs them first, so no entry point can skip one. ``tests/service/
test_admission_checks.py`` proves it for each pair of entry point and check. A check is one small callable with one
signature: it returns quietly, or raises a ``ServiceError`` whose one-line message the user sees. Adding one is
writing it and one line where the list is built (``POLICY_CHECKS`` for checks without dependencies,
``runtime.job_service`` for those built from settings: moderation, rate limits).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from impasto.bots.language.job import Job
from impasto.bots.service.context import Context
from impasto.bots.service.errors import ChannelNotAllowed
from impasto.queue.actions import Action

Entry = Literal["imagine", "blend", "press", "describe"]


@dataclass(frozen=True)
class Intent:
    """What the requester is about to make, as the checks see it (before parsing: nothing is priced yet)."""

    entry: Entry
    action: Action
    text: str  # what the user typed (the prompt, a Remix edit), or the parent's prompt for a plain button
    parent_id: str | None = None  # the job a button was pressed on
    jobs: tuple[Job, ...] = ()  # the command language's reading: every permutation × repeat that would be painted
    # The call as it can be made again (``replay.py``): what a refusal keeps for an approved appeal to rerun.
    request: Mapping[str, Any] | None = None


PolicyCheck = Callable[[Context, Intent], Awaitable[None]]


async def channel_allowed(ctx: Context, intent: Intent) -> None:
    """A server that named its impasto channels (``/server allow``) gets impasto only there, buttons included."""
    if ctx.allowed_channels and ctx.channel_id not in ctx.allowed_channels:
        raise ChannelNotAllowed("impasto is not enabled in this channel; ask a server admin where to use it")


POLICY_CHECKS: Sequence[PolicyCheck] = (channel_allowed,)


async def run_checks(checks: Sequence[PolicyCheck], ctx: Context, intent: Intent) -> None:
    for check in checks:
        await check(ctx, intent)
