"""One delivery core for every chat platform: job events in, messages out, each job's end posted exactly once.

Each platform runs ``Delivery`` in every bot process with the platform's ``Surface`` (the only delivery code a chat
adapter has). All processes of a platform read the namespace's event stream through one consumer group named for the
platform, so each event is handled by one process; what a process read and did not acknowledge comes back to it
after a restart, or to another process once it has been idle a while (``events.consume``).

- Which message shows a job is the job service's message index (SQL, ``record_message`` / ``messages``): the
  adapter records the "Waiting to start" message it posted, the core records the result it posts. Nothing else
  remembers it.
- Progress edits are rate-limited per chat across processes (a Redis gate), and skipped once the job has ended.
- A job's end is claimed (``SET NX``) before it is posted, so it is posted once however many processes hear it: the
  event's reader, a retry, or ``shown`` (the adapter recording its message after the job had already ended).
- A post the platform defers (a 429, a network error) is retried later from the stored job, by whichever process
  is alive: the end is re-read from SQL and the image store, never from memory.
- Moderation is decided here, once for every platform (``bots/moderation/outputs.py``): a result the worker's
  classifier flagged is posted as is, behind a spoiler, held for review (one line, nothing posted; ``on_held`` tells
  the review queue, ``release_held`` posts it on approval) or removed (one line), by the server's settings and the
  place's NSFW flag; progress previews outside NSFW places are blurred. The surface only renders ``End``/``Step``.

Every Redis key here starts with the deployment's namespace (``IMPASTO_QUEUE_NAMESPACE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from impasto.bots.moderation.outputs import blur_previews, blurred_png, output_action
from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import JobView, MessageView
from impasto.queue import events, metrics
from impasto.queue.keys import DEFAULT, Namespace

log = logging.getLogger(__name__)

FINAL_STATUSES = ("done", "failed", "cancelled")
CLAIM_TTL_S = 7 * 24 * 3600
POSTING_TTL_S = 120  # a process posting an end holds it this long at most (it may die mid-way)
STOP_GRACE_S = 10.0  # a stopping process finishes an end it is posting for this long at most
EARLY_END_RETRIES = 5  # an end heard before its message was recorded: look again this often, a second apart
#: What a held or removed result says instead of its picture (one line; never a black square).
HELD_LINE = "your result is held for review by this server's moderators (the image check flagged it)"
REMOVED_LINE = "your result was removed: the image check flagged it, and this server does not allow that here"

#: ``Delivery(on_held=…)``: told about each result held for review, after its one line was posted.
OnHeld = Callable[[JobView], Awaitable[None]]


class Deferred(Exception):
    """The platform asked us to wait (rate limit) or could not be reached: post again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float, reason: str, *, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s
        self.rate_limited = rate_limited  # the platform said "slow down" (a 429), not "unreachable"


class Gone(Exception):
    """The message or the chat is gone (deleted, bot removed): nothing to retry."""


@dataclass(frozen=True)
class Step:
    """What a progress edit shows: the queue position while waiting, the percentage and preview while painting."""

    percent: int | None = None  # None: not started yet
    position: int | None = None  # jobs ahead, while waiting
    preview_png: bytes | None = None  # already blurred where previews must be (``blurred``)
    blurred: bool = False


@dataclass(frozen=True)
class End:
    """A job's end as a message shows it: the job (with its images once done) and what to say about it."""

    view: JobView
    paints_noise: bool = False  # a built-in tiny model made it: say the picture is noise
    spoiler: bool = False  # post the picture behind a spoiler (Discord ``SPOILER_`` file, Telegram ``has_spoiler``)
    withheld: str | None = None  # held for review or removed: show this one line instead (no picture, no buttons)

    @property
    def status(self) -> str:
        return self.view.status


#: The message index's kind for "this job answers that message": the command that asked for it, the message whose
#: button was pressed, or, for a job born on the web, where its message is to be opened (as a reply). The row's
#: message id is ``reply_to_row(job_id, id)``, not the id itself: the index maps one message to one job, and the
#: pressed message keeps showing (and serving the buttons of) the job it shows while several jobs answer it.
REPLY_TO = "reply_to"
_REPLY_PREFIX = "reply-to:"


def reply_to_row(job_id: str, message_id: str) -> str:
    return f"{_REPLY_PREFIX}{job_id}:{message_id}"


def replied_to(row_message_id: str) -> str:
    """The message id a ``reply_to`` row names (rows from before the job id was part of it hold the id alone)."""
    return row_message_id.removeprefix(_REPLY_PREFIX).rpartition(":")[2]


class Surface(Protocol):
    """What a chat platform does for the core: edit a job's message with its progress, and show its end (the
    result with its buttons, or why it failed). Raise ``Deferred`` or ``Gone`` for the platform's refusals."""

    platform: str

    async def progress(self, shown: MessageView, view: JobView, step: Step) -> MessageView | None:
        """Edit the message; return the message now showing the job if it changed (e.g. replaced by a photo)."""
        ...

    async def end(self, shown: MessageView, end: End) -> MessageView | None:
        """Show the end on (or under) ``shown``; return the message now showing the result, to index it."""
        ...

    async def open(self, reply_to: MessageView, view: JobView) -> MessageView:
        """Post a new message for a job born off the chat (the web editor), replying to ``reply_to``: the message
        whose button started it. Later progress and the end edit it as usual."""
        ...


class Delivery:
    def __init__(
        self,
        service: JobService,
        redis: Redis,
        surface: Surface,
        *,
        ns: Namespace = DEFAULT,
        group: str | None = None,
        edit_interval_s: float = 2.0,
        redeliver_every_s: float = 1.0,
        reclaim_idle_ms: int = events.RECLAIM_IDLE_MS,
        block_ms: int = 5000,
        on_held: OnHeld | None = None,
    ) -> None:
        self.service = service
        self.redis = redis
        self.surface = surface
        self.platform = surface.platform
        self.ns = ns
        self.group = group or surface.platform  # one consumer group per platform
        self.edit_interval_s = edit_interval_s
        self.redeliver_every_s = redeliver_every_s
        self.reclaim_idle_ms = reclaim_idle_ms
        self.block_ms = block_ms
        self.reconnect_s = 1.0
        self.on_held = on_held  # the review queue (moderators' channel), when the platform has one

    # -- keys (all under the namespace) -------------------------------------------------------------------------

    def _key(self, *parts: object) -> str:
        return f"{self.ns.prefix}delivery:{self.platform}:" + ":".join(str(p) for p in parts)

    # -- the loops ----------------------------------------------------------------------------------------------

    async def run(self, *, consumer: str) -> None:
        """Handle the platform's events and the retry schedule until cancelled."""
        retries = asyncio.create_task(self._retry_loop())
        try:
            while True:
                try:
                    await self._consume(consumer)
                except RedisError as exc:
                    # Redis restarted: the group is re-created on the next read, and what we had not acknowledged
                    # comes back to us.
                    log.warning("event stream unavailable (%s); retrying in %.0f s", exc, self.reconnect_s)
                    await asyncio.sleep(self.reconnect_s)
        finally:
            retries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retries

    async def _consume(self, consumer: str) -> None:
        async for delivery in events.consume(
            self.redis,
            group=self.group,
            consumer=consumer,
            block_ms=self.block_ms,
            reclaim_idle_ms=self.reclaim_idle_ms,
            ns=self.ns,
        ):
            try:
                await self.handle(delivery.event)
            except RedisError:
                raise
            except Exception:
                log.exception(
                    "%s: event %s of job %s not handled", self.platform, delivery.event.kind, delivery.event.job_id
                )
            await events.ack(self.redis, self.group, delivery.entry_id, ns=self.ns)

    async def _retry_loop(self) -> None:
        while True:
            try:
                due = await self._due()
            except RedisError as exc:
                log.warning("%s: retry schedule unavailable: %s", self.platform, exc)
                due = []
            for job_id, noise in due:
                try:
                    await self.deliver_end(job_id, paints_noise=noise)
                except Exception:
                    log.exception("%s: retrying the end of job %s failed", self.platform, job_id)
            await asyncio.sleep(self.redeliver_every_s)

    # -- one event ----------------------------------------------------------------------------------------------

    async def handle(self, event: events.Event) -> None:
        if event.final:
            noise = isinstance(event, events.Done) and event.paints_noise
            if await self.deliver_end(event.job_id, paints_noise=noise) is None:
                await self._early_end(event.job_id, noise)
            return
        if await self.redis.exists(self._key("ended", event.job_id), self._key("posting", event.job_id)):
            return  # a late progress event must not turn a result back into a progress bar
        shown = await self._shown(event.job_id)
        if shown is None:
            return  # another platform's job, or its message is not recorded yet (the next event will find it)
        if not await self._gate(shown.chat_id):
            return  # lossy on purpose: the next event carries the newer state
        step = _step(event)
        if step is None:
            return
        view = await self.service.job(event.job_id)
        if step.preview_png is not None:
            stored = await self.service.output_settings(view.job_id)
            if blur_previews(stored, nsfw_channel=view.nsfw_channel):
                blurred = await asyncio.to_thread(blurred_png, step.preview_png)
                step = replace(step, preview_png=blurred, blurred=True)
        try:
            moved = await self.surface.progress(shown, view, step)
        except (Deferred, Gone) as exc:
            if isinstance(exc, Deferred) and exc.rate_limited:
                metrics.rate_limited(self.platform)
            log.info("%s: progress of job %s skipped: %s", self.platform, event.job_id, exc)
            return
        if moved is not None:
            await self.service.record_message(view.job_id, self.platform, moved.chat_id, moved.message_id, moved.kind)

    async def shown(self, job_id: str) -> None:
        """The adapter recorded the job's message: if the job already ended (a very fast render, or the end was
        heard first), post its end now. Claimed like any other end, so it is never posted twice."""
        view = await self.service.job(job_id)
        if view.status in FINAL_STATUSES:
            await self.deliver_end(job_id, paints_noise=self._paints_noise(view))

    async def announce_cancelled(self, job_id: str) -> None:
        """A waiting job is cancelled at once, but its final event would wait until a worker dequeues it (a held one
        never is): announce it now, at most once per job, so its message says so right away."""
        await events.publish_final(self.redis, events.Cancelled(job_id=job_id, refunded=True), ns=self.ns)

    # -- ends ---------------------------------------------------------------------------------------------------

    async def deliver_end(self, job_id: str, *, paints_noise: bool) -> bool | None:
        """Post the job's end once. True: posted (now or before); False: deferred; None: no message shows it."""
        if await self.redis.exists(self._key("ended", job_id)):
            return True
        shown = await self._shown(job_id)
        if shown is None:
            return None
        posting = asyncio.ensure_future(self._post_end(job_id, shown, paints_noise))
        try:
            return await asyncio.shield(posting)
        except asyncio.CancelledError:
            # The process is stopping: finish an end already under way. A post cannot be taken back once sent, and
            # one sent but not yet marked "ended" would be posted again by the process that takes over.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(posting, STOP_GRACE_S)
            raise

    async def _post_end(self, job_id: str, shown: MessageView, paints_noise: bool) -> bool:
        # One process posts at a time; the hold expires if it dies mid-way, and "ended" makes it once for good.
        if not await self.redis.set(self._key("posting", job_id), "1", nx=True, ex=POSTING_TTL_S):
            return True
        try:
            if await self.redis.exists(self._key("ended", job_id)):
                return True
            view = await self.service.job(job_id)
            end = await self._moderated(End(view, paints_noise=paints_noise))
            try:
                posted = await self.surface.end(shown, end)
            except Deferred as exc:
                log.warning("%s: end of job %s deferred %.1f s: %s", self.platform, job_id, exc.retry_after_s, exc)
                await self._schedule(job_id, paints_noise, max(exc.retry_after_s, 0.1))
                metrics.delivered(self.platform, "retried")
                if exc.rate_limited:
                    metrics.rate_limited(self.platform)
                return False
            except Gone as exc:
                log.info("%s: end of job %s dropped: %s", self.platform, job_id, exc)
                posted = None
                metrics.delivered(self.platform, "failed")
            else:
                metrics.delivered(self.platform, "ok")
            await self.redis.set(self._key("ended", job_id), "1", ex=CLAIM_TTL_S)
            if posted is not None:
                await self.service.record_message(job_id, self.platform, posted.chat_id, posted.message_id, "result")
            if end.withheld == HELD_LINE and self.on_held is not None:
                try:
                    await self.on_held(view)
                except Exception:
                    log.exception("%s: the review queue was not told about held job %s", self.platform, job_id)
            return True
        finally:
            await self.redis.delete(self._key("posting", job_id))

    async def _moderated(self, end: End) -> End:
        """The end as the server's moderation has it here: a flagged result delivered, spoilered, held or removed."""
        view = end.view
        if view.status != "done" or not view.flagged:
            return end
        stored = await self.service.output_settings(view.job_id)
        action = output_action(stored, flagged=True, nsfw_channel=view.nsfw_channel)
        if action == "spoiler":
            return replace(end, spoiler=True)
        if action == "hold":
            await self.service.hold_result(view.job_id)  # the review queue's record, before the user is told
            return replace(end, withheld=HELD_LINE)
        if action == "remove":
            return replace(end, withheld=REMOVED_LINE)
        return end

    async def release_held(self, job_id: str) -> bool:
        """A moderator approved a held result: post it where it was asked, on the message that said it was held.

        Once per job (across processes); False when the job's result was not held, its message is unknown, it was
        released already, or the platform deferred it (call again later).
        """
        if await self.service.held_id(job_id) is None:
            return False
        shown = await self._shown(job_id)
        if shown is None:
            return False
        released = self._key("released", job_id)
        if not await self.redis.set(released, "1", nx=True, ex=CLAIM_TTL_S):
            return False
        view = await self.service.job(job_id)
        try:
            posted = await self.surface.end(shown, End(view, paints_noise=self._paints_noise(view)))
        except Deferred as exc:
            log.warning("%s: release of held job %s deferred: %s", self.platform, job_id, exc)
            await self.redis.delete(released)
            return False
        except Gone as exc:
            log.info("%s: release of held job %s dropped: %s", self.platform, job_id, exc)
            return True
        if posted is not None:
            await self.service.record_message(job_id, self.platform, posted.chat_id, posted.message_id, "result")
        return True

    async def withhold(self, job_id: str, line: str) -> bool:
        """Say ``line`` on the message that shows a withheld result (a moderator rejected it); False when no message
        of this platform shows the job or the platform refused (the decision stands either way)."""
        shown = await self._shown(job_id)
        if shown is None:
            return False
        view = await self.service.job(job_id)
        try:
            await self.surface.end(shown, End(view, withheld=line))
        except (Deferred, Gone) as exc:
            log.info("%s: could not say job %s was rejected: %s", self.platform, job_id, exc)
            return False
        return True

    async def _early_end(self, job_id: str, noise: bool) -> None:
        """An end with no recorded message: this platform's adapter may not have recorded it yet, or the job is
        another platform's. Look again a few times (the adapter's ``shown`` usually gets there first)."""
        key = self._key("early", job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 60)
            count, _ = await pipe.execute()
        if int(count) <= EARLY_END_RETRIES:
            await self._schedule(job_id, noise, 1.0)

    async def _schedule(self, job_id: str, noise: bool, delay_s: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key("retry-noise"), job_id, "1" if noise else "0")
            pipe.zadd(self._key("retry"), {job_id: time.time() + delay_s})
            await pipe.execute()

    async def _due(self, limit: int = 20) -> list[tuple[str, bool]]:
        """Retries whose time has come; each is taken by the one process that removes it from the schedule."""
        due: list[tuple[str, bool]] = []
        for raw in await self.redis.zrangebyscore(self._key("retry"), 0, time.time(), start=0, num=limit):
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if await self.redis.zrem(self._key("retry"), job_id):
                noise = await cast(Awaitable[bytes | None], self.redis.hget(self._key("retry-noise"), job_id))
                due.append((job_id, noise in (b"1", "1")))
        return due

    # -- helpers ------------------------------------------------------------------------------------------------

    async def _shown(self, job_id: str) -> MessageView | None:
        """The newest message of this platform showing the job (the message index, SQL). A job born off the chat
        (the web editor) has only a ``reply_to`` row: its message is opened there, once, by one process."""
        mine = [m for m in await self.service.messages(job_id) if m.platform == self.platform]
        showing = [m for m in mine if m.kind != REPLY_TO]
        origin = next((m for m in mine if m.kind == REPLY_TO), None)
        if showing:
            shown = showing[-1]
            if origin is not None and origin.chat_id == shown.chat_id:
                shown = replace(shown, reply_to=replied_to(origin.message_id))
            return shown
        if origin is None or not await self.redis.set(self._key("opening", job_id), "1", nx=True, ex=CLAIM_TTL_S):
            return None
        target = replace(origin, message_id=replied_to(origin.message_id))
        try:
            opened = await self.surface.open(target, await self.service.job(job_id))
        except (Deferred, Gone) as exc:
            log.warning("%s: could not open a message for job %s: %s", self.platform, job_id, exc)
            await self.redis.delete(self._key("opening", job_id))
            return None
        await self.service.record_message(job_id, self.platform, opened.chat_id, opened.message_id, "progress")
        return replace(opened, reply_to=target.message_id)

    async def _gate(self, chat_id: str) -> bool:
        """True at most once per ``edit_interval_s`` per chat, across every process of the platform."""
        if self.edit_interval_s <= 0:
            return True
        interval_ms = max(1, int(self.edit_interval_s * 1000))
        return bool(await self.redis.set(self._key("gate", chat_id), "1", nx=True, px=interval_ms))

    def _paints_noise(self, view: JobView) -> bool:
        try:
            return self.service.registry.get(view.model).is_tiny
        except Exception:
            return False


def _step(event: events.Event) -> Step | None:
    if isinstance(event, events.Queued):
        return Step(position=event.position)
    if isinstance(event, events.Started):
        return Step(percent=0)
    if isinstance(event, events.Progress):
        percent = event.step * 100 // event.total if event.total else 0
        return Step(percent=percent, preview_png=event.preview_png)
    return None
