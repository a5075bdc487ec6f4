"""Lanes and fair shares: the order arq starts jobs in (lowest score first), and a real worker following it."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import pytest
from arq.connections import ArqRedis
from queue_helpers import Stack
from sqlalchemy import select

from impasto.bots.service.requester import Requester
from impasto.queue import fairness, keys
from impasto.queue.client import enqueue
from impasto.queue.contract import Lane, RenderRequest
from impasto.storage.models import Job


@dataclass
class Queue:
    """The test's own queue. Job ids get a per-test suffix: arq remembers ids, and db 15 is shared."""

    pool: ArqRedis
    ns: keys.Namespace
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))

    async def put(self, job_id: str, user: str, *, lane: Lane = "fast", guild: str | None = None) -> None:
        request = RenderRequest(
            job_id=f"{job_id}-{self.suffix}", lane=lane, user_key=user, guild_key=guild, enqueued_at=time.time()
        )
        assert (await enqueue(self.pool, request, ns=self.ns)).created

    async def order(self) -> list[str]:
        return [raw.decode().rsplit("-", 1)[0] for raw in await self.pool.zrange(self.ns.queue, 0, -1)]


@pytest.fixture
def queue(pool: ArqRedis, ns: keys.Namespace) -> Queue:
    return Queue(pool, ns)


async def test_one_users_forty_jobs_do_not_starve_anothers_single_job(queue: Queue) -> None:
    for i in range(40):
        await queue.put(f"a{i:02}", "discord:a")
    await queue.put("b00", "discord:b")
    order = await queue.order()
    assert order.index("b00") <= 1
    # A's own jobs keep their order.
    assert [j for j in order if j.startswith("a")] == [f"a{i:02}" for i in range(40)]


async def test_relax_waits_behind_fast_and_turbo_goes_first(queue: Queue) -> None:
    await queue.put("r1", "discord:r", lane="relax")
    await queue.put("f1", "discord:f", lane="fast")
    await queue.put("t1", "discord:t", lane="turbo")
    await queue.put("f2", "discord:r", lane="fast")
    order = await queue.order()
    assert order[0] == "t1"
    assert set(order[1:3]) == {"f1", "f2"}
    assert order[3] == "r1"


async def test_a_busy_guild_shares_the_lane_with_a_small_one(queue: Queue) -> None:
    # Guild 1 has three busy members, guild 2 one; jobs arrive interleaved.
    for i in range(6):
        for user in ("a", "b", "c"):
            await queue.put(f"{user}{i}", f"discord:{user}", guild="discord:g1")
        await queue.put(f"d{i}", "discord:d", guild="discord:g2")
    first = (await queue.order())[:8]
    # Fair between users alone would give d 2 of the first 8; fair between guilds gives it about half.
    assert sum(1 for j in first if j.startswith("d")) >= 3


async def test_a_new_user_is_not_ordered_behind_work_already_started(queue: Queue) -> None:
    for i in range(5):
        await queue.put(f"a{i}", "discord:a")
    # The lane clock moves as jobs start: a late user's job starts next, not behind a's whole backlog.
    a3 = f"a3-{queue.suffix}"
    score = int(await queue.pool.zscore(queue.ns.queue, a3) or 0)
    started = RenderRequest(job_id=a3, lane="fast", user_key="discord:a", enqueued_at=time.time())
    await fairness.job_started(queue.pool, started, score=score, first_try=True, ns=queue.ns)
    await queue.put("b0", "discord:b")
    order = await queue.order()
    assert order.index("b0") < order.index("a4")


async def test_a_real_worker_serves_the_single_job_early(stack: Stack) -> None:
    heavy = Requester(platform="discord", user_id="3001", display_name="heavy", guild_id="g1")
    light = Requester(platform="discord", user_id="3002", display_name="light", guild_id="g1")
    tickets = await stack.service.imagine(heavy, "a boat --repeat 4", idempotency_key="f-1")
    tickets += await stack.service.imagine(heavy, "a ship --repeat 4", idempotency_key="f-2")
    [single] = await stack.service.imagine(light, "a canoe", idempotency_key="f-3")
    assert len(tickets) == 8
    await stack.drain()
    async with stack.sessions() as session:
        rows = (await session.execute(select(Job.id, Job.started_at, Job.status))).all()
    assert {status for _id, _at, status in rows} == {"done"}
    started = [job_id for job_id, _at, _status in sorted(rows, key=lambda r: r[1])]
    assert started.index(single.job_id) <= 1
