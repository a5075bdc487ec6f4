"""From the queue's event stream to what a Discord message must show: progress, the finished images, or the failure.

Two readers share the work. The process that posted a job's message follows that job's events from just before it
was submitted (``follow``), so its progress edits come from memory. Every process also reads the ``discord``
consumer group (``orphans``) for the ends of jobs nobody here follows: a job that finished while its bot restarted.
Both claim a job's end before posting it, so it is posted once however many processes hear it. Which message shows
a job comes from the job service's message index (SQL), the one record of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import JobView
from impasto.queue import events
from impasto.queue.keys import DEFAULT, Namespace

log = logging.getLogger(__name__)

RECONNECT_S = 0.5
EVENT_GROUP = "discord"  # one consumer group for every Discord bot process of a deployment
CLAIM_TTL_S = 7 * 24 * 3600
NOISE_NOTE = "made by a built-in tiny test model: the picture is noise"
PLATFORM = "discord"
_FINAL = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class Progress:
    percent: int
    preview_png: bytes | None = None


@dataclass(frozen=True)
class Finished:
    grid_png: bytes | None  # a grid job's 2×2 image; None for a single-image job
    images_png: tuple[bytes, ...] = ()
    flagged: bool = False  # moderation flagged it: shown as a spoiler outside NSFW channels
    note: str = ""  # a line under the caption ("the built-in tiny model paints noise")


@dataclass(frozen=True)
class Failed:
    reason: str
    cancelled: bool = False


Event = Progress | Finished | Failed


@dataclass(frozen=True)
class Orphan:
    """A job that ended while no process was following its message (the bot restarted meanwhile)."""

    view: JobView
    channel_id: str
    message_id: str
    event: Finished | Failed


class Follower:
    """Reads job events for the Discord adapter; holds nothing a restart would lose."""

    def __init__(self, service: JobService, redis: Redis, *, ns: Namespace = DEFAULT, group: str = EVENT_GROUP) -> None:
        self.service = service
        self.redis = redis
        self.ns = ns
        self.group = group

    def _claim_key(self, job_id: str) -> str:
        return f"{self.ns.prefix}discord:delivered:{job_id}"

    async def position(self) -> str:
        """The stream's newest entry: take it before submitting a job, follow from it, and miss none of its events."""
        return await events.last_id(self.redis)

    def finished(self, view: JobView) -> Finished:
        store = self.service.images
        grid = view.image(0)
        singles = tuple(store.get(i.key) for i in sorted(view.images, key=lambda i: i.index) if i.index > 0)
        return Finished(grid_png=store.get(grid.key) if grid is not None else None, images_png=singles)

    def _final_from_view(self, view: JobView) -> Finished | Failed:
        if view.status == "done":
            return self.finished(view)
        return Failed(view.error or view.status, cancelled=view.status == "cancelled")

    async def _translate(self, job_id: str, event: events.Event) -> Event | None:
        if isinstance(event, events.Started):
            return Progress(0)
        if isinstance(event, events.Progress):
            return Progress(event.step * 100 // max(1, event.total), event.preview_png)
        if isinstance(event, events.Done):
            finished = self.finished(await self.service.job(job_id))
            return replace(finished, note=NOISE_NOTE) if event.paints_noise else finished
        if isinstance(event, events.Failed):
            return Failed(event.message)
        if isinstance(event, events.Cancelled):
            return Failed("cancelled", cancelled=True)
        return None

    async def follow(self, job_id: str, since: str) -> AsyncIterator[Event]:
        """The job's progress, then its end (only if this process won the claim to post it)."""
        view = await self.service.job(job_id)
        if view.status in _FINAL:
            if await self.claim(job_id):
                yield self._final_from_view(view)
            return
        while True:
            try:
                async for event in events.listen(self.redis, job_ids=[job_id], since=since):
                    translated = await self._translate(job_id, event)
                    if isinstance(translated, Progress):
                        yield translated
                    elif translated is not None:
                        if await self.claim(job_id):
                            yield translated
                        return
                return
            except RedisConnectionError:
                # Redis went away mid-read: wait, then look at the job row (the truth) before listening again.
                log.warning("job %s: lost the event stream; reconnecting", job_id)
                await asyncio.sleep(RECONNECT_S)
                view = await self.service.job(job_id)
                if view.status in _FINAL:
                    if await self.claim(job_id):
                        yield self._final_from_view(view)
                    return

    async def claim(self, job_id: str) -> bool:
        """Win the right to post a job's end. Several bot processes may hear the same final event (the follower in
        one, the catch-up consumer in another); only the first to claim edits the message, so it changes once."""
        return bool(await self.redis.set(self._claim_key(job_id), "1", nx=True, ex=CLAIM_TTL_S))

    async def remember(self, job_id: str, channel_id: str, message_id: str) -> None:
        """Index the message that shows the job (any process finds it there after a restart)."""
        await self.service.record_message(job_id, PLATFORM, channel_id, message_id, "result")

    async def message_of(self, job_id: str) -> tuple[str, str] | None:
        """The newest Discord message showing the job: (channel id, message id)."""
        shown = [m for m in await self.service.messages(job_id) if m.platform == PLATFORM]
        if not shown:
            return None
        newest = max(shown, key=lambda m: m.created_at)
        return newest.chat_id, newest.message_id

    async def announce_cancelled(self, job_id: str) -> None:
        """A queued job is cancelled at once, but its final event would wait until a worker dequeues it: announce
        it now (at most once per job) so every message showing it says "Stopped" right away."""
        await events.publish_final(self.redis, events.Cancelled(job_id=job_id, refunded=True))

    async def orphans(self, *, consumer: str, is_followed: Callable[[str], bool]) -> AsyncIterator[Orphan]:
        """Final events of jobs with a Discord message that no follower in this process is updating."""
        async for delivery in events.consume(self.redis, group=self.group, consumer=consumer):
            event = delivery.event
            try:
                if not event.final or is_followed(event.job_id):
                    continue
                where = await self.message_of(event.job_id)
                if where is None:
                    continue  # not a Discord job
                view = await self.service.job(event.job_id)
                final = self._final_from_view(view)
                if isinstance(final, Finished) and isinstance(event, events.Done) and event.paints_noise:
                    final = replace(final, note=NOISE_NOTE)
                if not await self.claim(event.job_id):
                    continue  # the process following the job (or another catching up) posts it
                yield Orphan(view, where[0], where[1], final)
            finally:
                await events.ack(self.redis, self.group, delivery.entry_id)
