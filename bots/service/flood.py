"""The admission pipeline's flood check: one call before a command or a button press is admitted.

    await admit_rate(redis, plan, plans.rate_limits, who)                       # a command
    await admit_rate(redis, plan, plans.rate_limits, who, button=f"{job_id}:{action}")  # a press

Raises ``RateLimited`` (a ``ServiceError``: the bots already print its one line) when a bucket is empty; returns
quietly otherwise. Buckets and limits: ``queue.ratelimit``, ``plans.toml``.
"""

from __future__ import annotations

from redis.asyncio import Redis

from impasto.bots.service.actions import Requester
from impasto.bots.service.errors import RateLimited
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
