"""Step 2 of admission: policy checks, the rules a server or the operator sets on who may make what, where.

Every way a job is born (imagine, blend, each button, remix, custom zoom) runs every check in ``POLICY_CHECKS``
before anything is parsed, priced or charged; ``tests/service/test_admission_checks.py`` proves it for each pair of
entry point and check. A check is one small function with one signature: it returns quietly, or raises a
``ServiceError`` whose one-line message the user sees. Adding one is writing the function and one line below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from impasto.bots.service.context import Context
from impasto.bots.service.errors import ChannelNotAllowed
from impasto.queue.actions import Action

Entry = Literal["imagine", "blend", "press", "describe"]


@dataclass(frozen=True)
class Intent:
    """What the requester is about to make, as the checks see it (before parsing: nothing is priced yet)."""

    entry: Entry
    action: Action
    text: str  # the prompt that would be painted (typed, remixed, or the parent's); "" for image-only requests
    parent_id: str | None = None  # the job a button was pressed on


PolicyCheck = Callable[[Context, Intent], Awaitable[None]]


async def channel_allowed(ctx: Context, intent: Intent) -> None:
    """A server that named its impasto channels (``/server allow``) gets impasto only there, buttons included."""
    if ctx.allowed_channels and ctx.channel_id not in ctx.allowed_channels:
        raise ChannelNotAllowed("impasto is not enabled in this channel; ask a server admin where to use it")


POLICY_CHECKS: Sequence[PolicyCheck] = (channel_allowed,)


async def run_checks(checks: Sequence[PolicyCheck], ctx: Context, intent: Intent) -> None:
    for check in checks:
        await check(ctx, intent)


__all__ = ["POLICY_CHECKS", "Intent", "PolicyCheck", "run_checks"]
