"""The platform-neutral delivery core (``bots/service/delivery``) on the real job service, queue and worker, with a
recording surface in place of a chat platform: rate-limited progress, ends posted once, retries from the stored job.

(It lives beside the Discord tests because it shares their stack; nothing in it is Discord's.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from discord_stack import ServiceStack, service_stack

from impasto.bots.service.delivery.core import Deferred, Delivery, End, Step
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView, MessageView
from impasto.queue import events

WHO = Requester(platform="discord", user_id="4000000000000000001", channel_id="77")


@dataclass
class Recording:
    platform: str = "discord"
    steps: list[Step] = field(default_factory=list)
    ends: list[End] = field(default_factory=list)
    defer_ends: int = 0  # refuse this many ends with a short "retry after"

    async def progress(self, shown: MessageView, view: JobView, step: Step) -> MessageView | None:
        self.steps.append(step)
        return None

    async def end(self, shown: MessageView, end: End) -> MessageView | None:
        if self.defer_ends > 0:
            self.defer_ends -= 1
            raise Deferred(0.05, "429")
        self.ends.append(end)
        return MessageView(shown.platform, shown.chat_id, "result-1", "result", shown.created_at)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[ServiceStack]:
    async with service_stack(tmp_path) as stack:
        yield stack


def core(stack: ServiceStack, surface: Recording, **kw: float) -> Delivery:
    return Delivery(stack.service, stack.pool, surface, ns=stack.ns, group=stack.group, block_ms=50, **kw)  # type: ignore[arg-type]


async def rendered_job(stack: ServiceStack, *, record: bool = True) -> str:
    [ticket] = await stack.service.imagine(WHO, "a lighthouse", idempotency_key=f"core-{id(stack)}-{record}")
    if record:
        await stack.service.record_message(ticket.job_id, "discord", "77", "waiting-1", "progress")
    await stack.drain(steps=3)
    return ticket.job_id


async def test_progress_is_rate_limited_and_the_end_always_goes(stack: ServiceStack) -> None:
    surface = Recording()
    delivery = core(stack, surface, edit_interval_s=3600)
    job_id = await rendered_job(stack)
    for event in await events.history(stack.pool, job_id, ns=stack.ns):
        await delivery.handle(event)
    assert len(surface.steps) == 1  # queued, started, 33%, 66%, 100%: one edit per hour per chat
    assert [(e.view.job_id, e.status, e.paints_noise) for e in surface.ends] == [(job_id, "done", True)]
    # The result message is indexed: buttons on it find the job.
    found = await stack.service.find_job_by_message("discord", "77", "result-1")
    assert found is not None
    assert found.job_id == job_id


async def test_an_end_is_posted_once_however_often_it_is_heard(stack: ServiceStack) -> None:
    surface = Recording()
    delivery, other = core(stack, surface, edit_interval_s=0), core(stack, surface, edit_interval_s=0)
    job_id = await rendered_job(stack)
    [done] = [e for e in await events.history(stack.pool, job_id, ns=stack.ns) if e.final]
    await asyncio.gather(
        delivery.handle(done), other.handle(done), delivery.shown(job_id), other.deliver_end(job_id, paints_noise=True)
    )
    assert len(surface.ends) == 1


async def test_an_end_heard_before_its_message_is_posted_when_the_message_is_recorded(stack: ServiceStack) -> None:
    surface = Recording()
    delivery = core(stack, surface, edit_interval_s=0)
    job_id = await rendered_job(stack, record=False)  # a very fast render: done before the adapter recorded
    [done] = [e for e in await events.history(stack.pool, job_id, ns=stack.ns) if e.final]
    await delivery.handle(done)
    assert surface.ends == []
    await stack.service.record_message(job_id, "discord", "77", "waiting-1", "progress")
    await delivery.shown(job_id)
    await delivery.handle(done)  # heard again (a retry): nothing more
    assert len(surface.ends) == 1


async def test_another_platforms_job_is_left_alone(stack: ServiceStack) -> None:
    surface = Recording(platform="telegram")
    delivery = core(stack, surface, edit_interval_s=0)
    job_id = await rendered_job(stack)  # shown on Discord only
    for event in await events.history(stack.pool, job_id, ns=stack.ns):
        await delivery.handle(event)
    assert (surface.steps, surface.ends) == ([], [])


async def test_a_deferred_end_is_retried_from_the_stored_job(stack: ServiceStack) -> None:
    surface = Recording(defer_ends=2)
    delivery = core(stack, surface, edit_interval_s=0, redeliver_every_s=0.02)
    running = asyncio.create_task(delivery.run(consumer="core-test"))
    try:
        job_id = await rendered_job(stack)
        async with asyncio.timeout(20):
            while not surface.ends:  # noqa: ASYNC110 - polls what the core's own tasks append
                await asyncio.sleep(0.02)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert [(e.view.job_id, e.status) for e in surface.ends] == [(job_id, "done")]
    assert surface.defer_ends == 0  # refused twice, then posted
