"""The admission pipeline's flood check: one call before a command or a button press is admitted.

    await admit_rate(redis, plan, plans.rate_limits, who)                       # a command
    await admit_rate(redis, plan, plans.rate_limits, who, button=f"{job_id}:{action}")  # a press

Raises ``RateLimited`` (a ``ServiceError``: the bots already print its one line) when a bucket is empty; returns
quietly otherwise. Buckets and limits: ``queue.ratelimit``, ``plans.toml``.
"""

from __future__ import annotations

from redis.asyncio import Redis

from impasto.bots.service.checks import Intent
from impasto.bots.service.context import Context
from impasto.bots.service.errors import RateLimited
from impasto.bots.service.requester import Requester
from impasto.queue import keys
from impasto.queue.ratelimit import check_rate
from impasto.storage.plans import Plan, RateLimits


async def admit_rate(
    redis: Redis,
    plan: Plan,
    limits: RateLimits,
    who: Requester,
    *,
    button: str | None = None,
    ns: keys.Namespace = keys.DEFAULT,
) -> None:
    """Spend one token of ``who``'s buckets (user, server, and the button's if ``button``), or raise RateLimited."""
    decision = await check_rate(
        redis, plan, limits, platform=who.platform, user_id=who.user_id, guild_id=who.guild_id, button=button, ns=ns
    )
    if not decision.allowed:
        raise RateLimited(decision.message, decision.retry_after_s)


class RateCheck:
    """``admit_rate`` as one of the admission pipeline's policy checks (``checks.py``): a command spends a token of
    the user's and the server's buckets; a button press also one of that button's (50 presses of one button in a
    second make one job and polite refusals)."""

    def __init__(self, redis: Redis, limits: RateLimits, *, ns: keys.Namespace = keys.DEFAULT) -> None:
        self.redis = redis
        self.limits = limits
        self.ns = ns

    async def __call__(self, ctx: Context, intent: Intent) -> None:
        button = f"{intent.parent_id}:{intent.action.value}" if intent.entry == "press" else None
        await admit_rate(self.redis, ctx.plan, self.limits, ctx.who, button=button, ns=self.ns)
