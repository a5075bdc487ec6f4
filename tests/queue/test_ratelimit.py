"""Flood control on the real Redis: one button pressed 50 times at once makes one admission; bursts and servers."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from impasto.bots.service.errors import RateLimited, ServiceError
from impasto.bots.service.flood import admit_rate
from impasto.bots.service.requester import Requester
from impasto.queue import keys
from impasto.queue.ratelimit import check_rate
from impasto.storage.plans import PlanError, RateLimits, load_plans, parse_plans

PLANS = load_plans()
BASIC = PLANS.get("basic")  # 20 a minute, 5 at once, one press of a button per 2 s
NO_GUILD_LIMIT = RateLimits(guild_commands_per_minute=0)


async def test_fifty_presses_of_one_button_in_a_second_admit_one(pool: ArqRedis, ns: keys.Namespace) -> None:
    presses = await asyncio.gather(
        *(
            check_rate(
                pool, BASIC, PLANS.rate_limits, platform="discord", user_id="u1", guild_id="g1", button="J1:U1", ns=ns
            )
            for _ in range(50)
        )
    )
    admitted = [p for p in presses if p.allowed]
    refused = [p for p in presses if not p.allowed]
    assert len(admitted) == 1
    assert len(refused) == 49
    assert {p.scope for p in refused} == {"button"}
    assert all(0 < p.retry_after_s <= BASIC.same_button_s for p in refused)
    assert {p.message for p in refused} == {"that button was just pressed; try again in 2 s"}
    # Refusals spent nothing: the user still has the rest of their burst for other buttons and commands.
    others = [
        await check_rate(
            pool, BASIC, PLANS.rate_limits, platform="discord", user_id="u1", guild_id="g1", button=f"J1:V{i}", ns=ns
        )
        for i in range(1, 5)
    ]
    assert all(p.allowed for p in others)


async def test_a_user_gets_their_burst_then_a_polite_wait(pool: ArqRedis, ns: keys.Namespace) -> None:
    decisions = [
        await check_rate(pool, BASIC, NO_GUILD_LIMIT, platform="telegram", user_id="u2", ns=ns) for _ in range(8)
    ]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    refused = decisions[-1]
    assert refused.scope == "user"
    assert 0 < refused.retry_after_s <= 60 / BASIC.commands_per_minute  # one token: 3 s at 20 a minute
    assert refused.message.startswith("you are sending commands faster than impasto takes them; try again in ")
    # Another user, and the same user id on another platform, have buckets of their own.
    assert (await check_rate(pool, BASIC, NO_GUILD_LIMIT, platform="telegram", user_id="u3", ns=ns)).allowed
    assert (await check_rate(pool, BASIC, NO_GUILD_LIMIT, platform="discord", user_id="u2", ns=ns)).allowed


async def test_a_server_shares_one_bucket(pool: ArqRedis, ns: keys.Namespace) -> None:
    limits = RateLimits(guild_commands_per_minute=60, guild_burst=3)
    decisions = [
        await check_rate(pool, BASIC, limits, platform="discord", user_id=f"m{i}", guild_id="busy", ns=ns)
        for i in range(5)
    ]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[-1].scope == "server"
    assert "this server is sending commands" in decisions[-1].message
    # Direct messages (no server) and other servers are not held back by it.
    assert (await check_rate(pool, BASIC, limits, platform="discord", user_id="m9", ns=ns)).allowed
    assert (await check_rate(pool, BASIC, limits, platform="discord", user_id="m9", guild_id="calm", ns=ns)).allowed


async def test_buckets_refill_and_expire(pool: ArqRedis, ns: keys.Namespace) -> None:
    fast = dataclasses.replace(BASIC, commands_per_minute=600, command_burst=1)  # one token per 0.1 s
    assert (await check_rate(pool, fast, NO_GUILD_LIMIT, platform="discord", user_id="u4", ns=ns)).allowed
    refused = await check_rate(pool, fast, NO_GUILD_LIMIT, platform="discord", user_id="u4", ns=ns)
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.1
    await asyncio.sleep(refused.retry_after_s + 0.01)  # the wait the refusal named (Redis's clock) has passed
    assert (await check_rate(pool, fast, NO_GUILD_LIMIT, platform="discord", user_id="u4", ns=ns)).allowed
    key = ns.rate_bucket("user", "discord", "u4")
    assert 0 < await pool.pttl(key) <= 1100 + 100  # refilled within 0.1 s; gone a second after that


async def test_zero_turns_a_limit_off(pool: ArqRedis, ns: keys.Namespace) -> None:
    free = dataclasses.replace(BASIC, commands_per_minute=0, same_button_s=0)
    decisions = [
        await check_rate(pool, free, NO_GUILD_LIMIT, platform="discord", user_id="op", button="J:U1", ns=ns)
        for _ in range(30)
    ]
    assert all(d.allowed for d in decisions)
    assert [k async for k in pool.scan_iter(match=ns.prefix + "rate:*")] == []


async def test_redis_away_admits() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    try:
        assert (await check_rate(dead, BASIC, PLANS.rate_limits, platform="discord", user_id="u5")).allowed
    finally:
        await dead.aclose()


def test_plans_file_rate_limits() -> None:
    assert (BASIC.commands_per_minute, BASIC.command_burst, BASIC.same_button_s) == (20, 5, 2)
    assert PLANS.rate_limits == RateLimits(guild_commands_per_minute=300, guild_burst=60)
    raw = {"plans": {"a": {"commands_per_minute": 5}}, "rate_limits": {"guild_burst": 2}}
    plans = parse_plans(raw)
    assert plans.get("a").commands_per_minute == 5
    assert plans.rate_limits.guild_burst == 2
    with pytest.raises(PlanError, match=r"rate_limits\] has unknown keys guild_rate"):
        parse_plans({"plans": {"a": {}}, "rate_limits": {"guild_rate": 1}})
    with pytest.raises(PlanError, match="commands_per_minute must be a number >= 0"):
        parse_plans({"plans": {"a": {"commands_per_minute": -1}}})


async def test_the_admission_check_raises_a_service_error(pool: ArqRedis, ns: keys.Namespace) -> None:
    who = Requester(platform="telegram", user_id="u6", guild_id="-100")
    results = await asyncio.gather(
        *(admit_rate(pool, BASIC, PLANS.rate_limits, who, button="J6:reroll", ns=ns) for _ in range(50)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert results.count(None) == 1
    assert len(refused) == 49
    assert isinstance(refused[0], ServiceError)
    assert refused[0].message == "that button was just pressed; try again in 2 s"
    assert 0 < refused[0].retry_after_s <= 2
