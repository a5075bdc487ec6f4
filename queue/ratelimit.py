"""Flood control: token buckets in Redis, checked before a command or a button press is admitted.

Three buckets guard one request, all checked and spent together in one Lua script (atomic across bot processes):

* the user's bucket: ``commands_per_minute`` sustained, ``command_burst`` at once (per plan, ``plans.toml``);
* the server's bucket: ``guild_commands_per_minute`` / ``guild_burst`` (``[rate_limits]``), shared by its members;
* for a button press, the bucket of that one button for that user: one press per ``same_button_s`` — 50 presses
  of U1 in a second make one job, and 49 polite refusals.

A request is admitted only if every bucket it touches holds a token; a refused one spends nothing, so a flood of
refusals never pushes the user's next allowed moment further away. Buckets refill continuously and expire once full
(an idle user costs no memory). The clock is Redis's own (``TIME``), so bot hosts with skewed clocks agree.

Why not a library: the Redis rate-limit packages on PyPI are fixed-window counters or bind one key per call; the
atomic "all buckets or none" across user, server and button needs the script anyway, and it is twenty lines.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from impasto.queue import keys
from impasto.storage.plans import Plan, RateLimits

log = logging.getLogger("impasto.queue.ratelimit")

# KEYS: the buckets. ARGV: capacity and refill (tokens per millisecond) for each, in order.
# Returns {1, 0} (admitted, one token spent from every bucket) or {0, ms until every bucket has a token}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = {}
local wait = 0
local worst = 0
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local held = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local have = tonumber(held[1]) or cap
  local at = tonumber(held[2]) or now
  have = math.min(cap, have + math.max(0, now - at) * rate)
  tokens[i] = have
  if have < 1 then
    local need = math.ceil((1 - have) / rate)
    if need > wait then
      wait = need
      worst = i
    end
  end
end
if wait > 0 then
  return {0, wait, worst}
end
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i] - 1), 'at', tostring(now))
  -- Once refilled the bucket is the same as no bucket: let it go.
  redis.call('PEXPIRE', KEYS[i], math.ceil((cap - tokens[i] + 1) / rate) + 1000)
end
return {1, 0, 0}
"""


@dataclass(frozen=True)
class Bucket:
    key: str
    capacity: float  # tokens when full: the burst
    per_second: float  # refill rate

    @property
    def args(self) -> tuple[str, str]:
        return repr(float(self.capacity)), repr(self.per_second / 1000)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: float = 0.0  # when refused: how long until the request would be admitted
    scope: str = ""  # when refused: "user", "server" or "button" — whichever bucket was empty longest

    @property
    def message(self) -> str:
        """The one line a refused user sees."""
        seconds = max(1, math.ceil(self.retry_after_s))
        if self.scope == "button":
            return f"that button was just pressed; try again in {seconds} s"
        if self.scope == "server":
            return f"this server is sending commands faster than impasto takes them; try again in {seconds} s"
        return f"you are sending commands faster than impasto takes them; try again in {seconds} s"


ADMITTED = RateDecision(True)


def buckets_for(
    plan: Plan,
    limits: RateLimits,
    *,
    ns: keys.Namespace,
    platform: str,
    user_id: str,
    guild_id: str | None = None,
    button: str | None = None,
) -> list[tuple[str, Bucket]]:
    """The (scope, bucket) pairs one request touches; a rate of 0 means "no limit" and adds no bucket."""
    found: list[tuple[str, Bucket]] = []
    if plan.commands_per_minute > 0:
        found.append(
            (
                "user",
                Bucket(
                    ns.rate_bucket("user", platform, user_id), max(1, plan.command_burst), plan.commands_per_minute / 60
                ),
            )
        )
    if guild_id and limits.guild_commands_per_minute > 0:
        found.append(
            (
                "server",
                Bucket(
                    ns.rate_bucket("guild", platform, guild_id),
                    max(1, limits.guild_burst),
                    limits.guild_commands_per_minute / 60,
                ),
            )
        )
    if button and plan.same_button_s > 0:
        found.append(("button", Bucket(ns.rate_bucket("button", platform, user_id, button), 1, 1 / plan.same_button_s)))
    return found


async def check_rate(
    redis: Redis,
    plan: Plan,
    limits: RateLimits,
    *,
    platform: str,
    user_id: str,
    guild_id: str | None = None,
    button: str | None = None,
    ns: keys.Namespace = keys.DEFAULT,
) -> RateDecision:
    """Admit one command (``button=None``) or one press of ``button`` (say ``"<job id>:U1"``), or say how long to wait.

    Spends one token from each bucket when admitted, none when refused. If Redis cannot be asked the request is
    admitted (and logged): the rate limit protects the queue, and the queue's own errors answer a Redis outage.
    """
    touched = buckets_for(plan, limits, ns=ns, platform=platform, user_id=user_id, guild_id=guild_id, button=button)
    if not touched:
        return ADMITTED
    argv: list[str] = []
    for _scope, bucket in touched:
        argv.extend(bucket.args)
    try:
        allowed, wait_ms, worst = cast(
            "list[Any]",
            await redis.eval(_TAKE, len(touched), *(b.key for _s, b in touched), *argv),  # type: ignore[misc]
        )
    except RedisError as exc:
        log.warning("rate limit not checked (Redis: %s); admitting", type(exc).__name__)
        return ADMITTED
    if int(allowed):
        return ADMITTED
    return RateDecision(False, retry_after_s=int(wait_ms) / 1000, scope=touched[int(worst) - 1][0])
