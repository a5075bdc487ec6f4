"""The arq job function: one render, from claiming the SQL row to the completion event.

Designed for at-least-once delivery (arq: "jobs may be called more than once"). The SQL row decides: ``claim_job``
returns None for a job already final, ``complete_job``/``fail_job``/``cancel_job`` return False when another delivery
got there first, and only the delivery whose transition succeeded publishes the job's terminal event (and that
publication is itself once-only). A job whose worker was SIGKILLed is re-run by another worker once arq's
in-progress lock, which the live worker keeps renewing, lapses (``WorkerConfig.lease_s``).

A result is settled in one SQL transaction (``storage.lifecycle.finish_job``); when SQL cannot be reached, the worker
keeps the result and the job, and tries again until SQL answers (``queue.settle``); the claim, a failure and a
cancellation wait the same way.

Round trips are counted on this path (``impasto bench-service``): a starting job tells Redis everything in one
pipeline (``_start``), a running render renews its lock and publishes its steps in one per tick (``_tick``), and its
last steps travel with its terminal event (``events.publish_final(before=…)``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.engine.errors import Cancelled, EngineError, EngineOutOfMemory
from impasto.engine.spec import Progress, RenderResult
from impasto.queue import endings, events, fairness, keys, metrics
from impasto.queue.contract import ContractError, RenderRequest
from impasto.queue.renderer import Describes, render_with_oom_retry
from impasto.queue.screening import (
    Place,
    TranslationRefused,
    audit_flagged,
    audit_refused_translation,
    input_refusal,
    place_of,
    translation_screen,
    user_inputs,
)
from impasto.queue.settings import WorkerConfig
from impasto.queue.settle import unreachable, when_sql_answers
from impasto.queue.specs import RenderWork, UnrenderableJob, build_describe, build_work, is_describe
from impasto.queue.state import WorkerState
from impasto.queue.sweep import waited_too_long
from impasto.storage.ledger import Holding
from impasto.storage.lifecycle import ClaimedJob, Completed, NewImage, cancel_requested, claim_job, finish_job
from impasto.storage.models import ACTIVE_STATUSES, CANCELLED, DONE, FAILED, FLAGGED_IMAGE, QUEUED, Job
from impasto.storage.models import Image as ImageRow
from impasto.storage.readings import record_described, record_reading

log = logging.getLogger("impasto.queue")

#: Step events are published at most this often per job (the last step always is).
STEP_EVENT_INTERVAL_S = 0.25


class Stalled(Exception):
    """The render reported no step for too long, or ran past its cap; the message is for the user."""


class GpuStuck(Stalled):
    """A stalled render whose GPU thread did not even stop at a step when told to: the thread is wedged.

    The job is failed and refunded like any stalled one; then the worker process exits (``worker.after_job_end``)
    because every later job would queue behind the wedged thread. Its supervisor (docker-compose's
    ``restart: unless-stopped``) starts a fresh one, and the other workers go on meanwhile.
    """


@dataclass
class _Watch:
    """Shared between the GPU thread (``on_progress``) and the job's coroutine (``supervise``)."""

    job_id: str
    loop: asyncio.AbstractEventLoop
    preview_interval_s: float
    preview_px: int
    cancel: threading.Event = field(default_factory=threading.Event)
    last_step_at: float = field(default_factory=time.monotonic)
    outbox: asyncio.Queue[events.Progress] = field(default_factory=asyncio.Queue)
    _last_event_at: float = 0.0
    _last_preview_at: float = 0.0

    def on_progress(self, progress: Progress) -> None:
        """Runs on the GPU thread after every step: note it, stop if asked, hand a bounded event to the loop."""
        now = time.monotonic()
        self.last_step_at = now
        if self.cancel.is_set():
            raise Cancelled(progress.step, progress.total)
        last = progress.step >= progress.total
        if not last and now - self._last_event_at < STEP_EVENT_INTERVAL_S:
            return
        self._last_event_at = now
        preview_b64 = None
        if progress.preview is not None and now - self._last_preview_at >= self.preview_interval_s:
            self._last_preview_at = now
            preview_b64 = base64.b64encode(_small_png(progress.preview, self.preview_px)).decode()
        event = events.Progress(
            job_id=self.job_id, step=progress.step, total=progress.total, preview_png_b64=preview_b64
        )
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, event)


def _small_png(image: Image.Image, px: int) -> bytes:
    small = image.copy()
    small.thumbnail((px, px))
    buf = io.BytesIO()
    small.convert("RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


async def render_job(ctx: dict[str, Any], payload: Any) -> dict[str, Any]:
    """The arq function registered as ``keys.RENDER_FUNCTION``. Returns a small JSON summary (arq keeps it)."""
    state = WorkerState.of(ctx)
    redis: ArqRedis = ctx["redis"]  # arq's pool: it speaks our JSON serializer, so released jobs can be queued
    job_try: int = ctx["job_try"]
    try:
        request = RenderRequest.from_wire(payload)
    except ContractError as exc:
        job_id = payload.get("job_id") if isinstance(payload, dict) else None
        log.error("rejected queued job %s: %s", job_id, exc)
        if isinstance(job_id, str):
            await _fail(state, redis, job_id, str(exc))
        return {"outcome": "rejected", "error": str(exc)}

    job_id = request.job_id
    ns = state.config.ns
    await _start(redis, state.config, request, score=int(ctx["score"]), first_try=job_try == 1)

    waited_s = time.time() - request.enqueued_at
    if job_try == 1 and waited_s > state.config.max_wait_s:
        message = waited_too_long(waited_s, state.config.max_wait_s)
        return await _fail(state, redis, job_id, message, only_if=(QUEUED,))

    async def claim(session: AsyncSession) -> ClaimedJob | None:
        return await claim_job(session, job_id, worker=state.config.name)

    claimed = await when_sql_answers(
        state.sessions, claim, redis=redis, job_id=job_id, lease_s=state.config.lease_s, doing="claiming it"
    )
    if claimed is None:
        log.info("job %s is already final: duplicate delivery, nothing to render", job_id)
        await _reannounce(state, redis, job_id)
        return {"outcome": "duplicate"}
    if claimed.cancel_requested:
        return await _cancel(state, redis, job_id)
    started = events.Started(job_id=job_id, worker=state.config.name, attempt=claimed.attempt)
    await events.publish(redis, started, ns=ns)
    if is_describe(claimed):
        return await _describe(state, redis, claimed)

    place: Place | None = None
    try:
        work = await asyncio.to_thread(build_work, claimed, state.images.get)
        if state.image_check is not None or state.policy is not None:

            async def where(session: AsyncSession) -> Place | None:
                return await place_of(session, job_id)

            place = await when_sql_answers(
                state.sessions,
                where,
                redis=redis,
                job_id=job_id,
                lease_s=state.config.lease_s,
                doing="reading its place",
            )
        refused = await _screen_inputs(state, redis, claimed, work, place)
        if refused is not None:
            return refused
        if state.policy is not None and place is not None:
            work = replace(work, screen=translation_screen(state.policy, place))
        rendered = await _supervised_render(state, redis, work)
    except Cancelled:
        return await _cancel(state, redis, job_id)
    except TranslationRefused as exc:
        return await _refuse_translation(state, redis, claimed, place, exc)
    except GpuStuck as exc:
        state.gpu_stuck = True  # after_job_end takes this worker down once arq has recorded the job's end
        return await _fail(state, redis, job_id, str(exc))
    except Stalled as exc:
        return await _fail(state, redis, job_id, str(exc))
    except EngineOutOfMemory as exc:
        return await _fail(state, redis, job_id, f"{exc} (a smaller batch did not fit either); nothing was charged")
    except (EngineError, UnrenderableJob) as exc:
        return await _fail(state, redis, job_id, str(exc))
    if rendered.retried:
        log.warning("job %s ran out of memory and was rendered again as two half batches", job_id)
    return await _complete(state, redis, job_id, rendered, place, claimed.holding)


async def _describe(state: WorkerState, redis: ArqRedis, claimed: ClaimedJob) -> dict[str, Any]:
    """/describe: the captioner writes four prompts for the job's image; they are stored with the job (its buttons
    read them) and travel in its completion event. The image the user brought is checked like any input picture;
    a job's own result (``/describe`` of a job) was checked as an output already."""
    job_id = claimed.job_id
    describer = state.renderer
    if not isinstance(describer, Describes):
        return await _fail(state, redis, job_id, "this worker cannot describe images; nothing was charged")
    try:
        work = await asyncio.to_thread(build_describe, claimed, state.images.get)
    except UnrenderableJob as exc:
        return await _fail(state, redis, job_id, str(exc))
    loop = asyncio.get_running_loop()
    check = state.image_check
    if check is not None and claimed.input_image_keys[0] not in claimed.parent_image_keys.values():
        verdicts = await loop.run_in_executor(state.gpu, check.verdicts, [work.image])
        if verdicts[0][1]:
            async with state.sessions() as session:
                place = await place_of(session, job_id)

            async def audit(session: AsyncSession) -> None:
                if place is not None:
                    await audit_flagged(session, job_id, place, "input image", verdicts)

            return await _fail(state, redis, job_id, input_refusal([0], 1), audit=audit)
    started = time.monotonic()
    future = loop.run_in_executor(state.gpu, describer.describe, work)
    while not (await asyncio.wait({future}, timeout=state.config.lease_s / 3))[0]:
        # The first describe loads the captioner (a download on a fresh machine): keep other workers off the job.
        await _renew_lease(redis, job_id, state.config.lease_s)
    try:
        prompts = future.result()
    except EngineError as exc:
        return await _fail(state, redis, job_id, str(exc))
    gpu_seconds = time.monotonic() - started

    async def settle(session: AsyncSession) -> Completed | None:
        # One transaction, as for a picture: done, the four prompts, the charge, the user's held jobs released.
        completed = await finish_job(session, job_id, images=[], gpu_seconds=gpu_seconds)
        if completed is not None:
            await record_described(session, job_id, prompts)
        return completed

    completed = await when_sql_answers(
        state.sessions, settle, redis=redis, job_id=job_id, lease_s=state.config.lease_s, doing="settling its prompts"
    )
    if completed is None:
        log.info("job %s was completed by another delivery; this result is dropped", job_id)
        await _reannounce(state, redis, job_id)
        return {"outcome": "duplicate"}
    done = events.Done(job_id=job_id, image_keys=[], seed=claimed.seed, gpu_seconds=gpu_seconds, prompts=prompts)
    await events.publish_final(redis, done, ns=state.config.ns)
    await endings.enqueue_released(redis, completed.released, ns=state.config.ns)
    return {"outcome": "done", "prompts": prompts, "gpu_seconds": gpu_seconds}


async def _screen_inputs(
    state: WorkerState, redis: ArqRedis, claimed: ClaimedJob, work: RenderWork, place: Place | None
) -> dict[str, Any] | None:
    """Classify the pictures the user brought; a flagged one fails the job (refunded, audited) before rendering."""
    check = state.image_check
    inputs = user_inputs(claimed, work) if check is not None else []
    if check is None or not inputs:
        return None
    loop = asyncio.get_running_loop()
    verdicts = await loop.run_in_executor(state.gpu, check.verdicts, inputs)
    flagged = [i for i, (_, hit) in enumerate(verdicts) if hit]
    if not flagged:
        return None
    message = input_refusal(flagged, len(inputs))

    async def audit(session: AsyncSession) -> None:
        if place is not None:
            await audit_flagged(session, claimed.job_id, place, "input image", verdicts)

    return await _fail(state, redis, claimed.job_id, message, audit=audit)


async def _refuse_translation(
    state: WorkerState, redis: ArqRedis, claimed: ClaimedJob, place: Place | None, exc: TranslationRefused
) -> dict[str, Any]:
    async def audit(session: AsyncSession) -> None:
        if place is not None:
            await audit_refused_translation(session, claimed.job_id, place, exc, claimed.prompt)

    if exc.verdict.category is not None:
        metrics.moderation_refused(exc.verdict.category)
    return await _fail(state, redis, claimed.job_id, str(exc), audit=audit)


@dataclass(frozen=True)
class _Rendered:
    result: RenderResult
    retried: bool  # out of memory once, rendered again as two half batches
    unsent: list[events.Progress]  # the last steps' events, published with the job's end in one round trip


async def _supervised_render(state: WorkerState, redis: Redis, work: RenderWork) -> _Rendered:
    """Run the render on the GPU thread while this coroutine publishes progress, renews the lease, polls for
    cancellation (at most every ``cancel_poll_s``) and enforces the step and total timeouts."""
    config = state.config
    loop = asyncio.get_running_loop()
    watch = _Watch(work.job_id, loop, config.preview_interval_s, config.preview_px)
    future = loop.run_in_executor(state.gpu, render_with_oom_retry, state.renderer, work, watch.on_progress)
    state.render = future  # on_shutdown waits for it
    started = time.monotonic()
    tick_s = min(config.lease_s / 3, config.cancel_poll_s, 0.5)
    last_cancel_check = started
    stop_reason: str | None = None
    stopped_at = 0.0
    while True:
        try:
            done, _ = await asyncio.wait({future}, timeout=tick_s)
        except asyncio.CancelledError:
            # The worker is shutting down (arq re-queues the job): stop the GPU thread at its next step too.
            watch.cancel.set()
            raise
        if done:
            break
        now = time.monotonic()
        await _tick(redis, watch, config.ns, config.lease_s)
        if stop_reason is None:
            if now - last_cancel_check >= config.cancel_poll_s:
                last_cancel_check = now
                try:
                    async with state.sessions() as session:
                        if await cancel_requested(session, work.job_id):
                            watch.cancel.set()
                except Exception as exc:
                    if not unreachable(exc):
                        raise
                    # SQL is away: the render goes on (its result is kept until SQL answers, ``queue.settle``).
                    log.debug("job %s: cannot ask SQL whether it was cancelled (%s)", work.job_id, exc)
            if now - watch.last_step_at > config.step_timeout_s:
                stop_reason = f"the render made no progress for {config.step_timeout_s:.0f} s and was stopped"
            elif now - started > config.max_run_s:
                stop_reason = f"the render ran longer than the {config.max_run_s:.0f} s limit and was stopped"
            if stop_reason is not None:
                stopped_at = now
                watch.cancel.set()
        elif now - stopped_at > config.step_timeout_s:
            # The GPU thread did not even reach its next step: give up on it (see GpuStuck).
            log.critical("job %s: the GPU thread did not stop within %.0f s", work.job_id, config.step_timeout_s)
            raise GpuStuck(stop_reason)
    try:
        result, retried = future.result()
    except Cancelled:
        if stop_reason is not None:
            raise Stalled(stop_reason) from None
        raise
    return _Rendered(result, retried, _drain(watch))


def _drain(watch: _Watch) -> list[events.Progress]:
    unsent = []
    while not watch.outbox.empty():
        unsent.append(watch.outbox.get_nowait())
    return unsent


async def _tick(redis: Redis, watch: _Watch, ns: keys.Namespace, lease_s: float) -> None:
    """One round trip while a render runs: renew its lock (``_renew_lease``) and publish the steps made since."""
    pipe = redis.pipeline(transaction=False)
    pipe.pexpire(in_progress_key_prefix + watch.job_id, int(lease_s * 1000))
    for event in _drain(watch):
        events.add(pipe, event, ns=ns)
    await pipe.execute()


async def _renew_lease(redis: Redis, job_id: str, lease_s: float) -> None:
    # arq's in-progress key keeps other workers off this job; ours lapses soon after this worker dies.
    await redis.pexpire(in_progress_key_prefix + job_id, int(lease_s * 1000))


async def _start(redis: Redis, config: WorkerConfig, request: RenderRequest, *, score: int, first_try: bool) -> None:
    """What a starting job tells Redis, in one round trip: renew its lock (``_renew_lease``), advance its lane's fair
    clock (``fairness``), and tell the first waiting jobs how many jobs are ahead of them."""
    ns = config.ns
    pipe = redis.pipeline(transaction=False)
    pipe.pexpire(in_progress_key_prefix + request.job_id, int(config.lease_s * 1000))
    fairness.add_job_started(pipe, request, score=score, first_try=first_try, ns=ns)
    events.add_positions(
        pipe,
        config.positions_announced,
        starting=request.job_id,
        held_prefix=in_progress_key_prefix,
        interval_s=config.positions_interval_s,
        ns=ns,
    )
    await pipe.execute()


async def _complete(
    state: WorkerState,
    redis: ArqRedis,
    job_id: str,
    rendered: _Rendered,
    place: Place | None,
    holding: Holding | None = None,
) -> dict[str, Any]:
    result = rendered.result
    verdicts: list[tuple[float, bool]] = []
    if state.image_check is not None:
        # Every output, before anything is stored or announced: the verdicts travel with the images.
        loop = asyncio.get_running_loop()
        try:
            verdicts = await loop.run_in_executor(state.gpu, state.image_check.verdicts, list(result.images))
        except Exception:
            # Fail closed: an unchecked picture is never delivered, and a retry would most likely fail the same way.
            log.exception("job %s: the image check could not run on its result", job_id)
            return await _fail(state, redis, job_id, "the image check could not run on the result; nothing was charged")
    try:
        singles, grid_key = await asyncio.to_thread(_store, state, result)  # one trip to a thread for all
    except OSError as exc:
        # Disk full or a read-only store: a retry would fail the same way, so fail the job (refunded) and stay up.
        log.error(
            "job %s: cannot write its images to the store at %s (%s); the job fails and is refunded",
            job_id,
            state.images.root,
            exc.strerror or type(exc).__name__,
        )
        return await _fail(state, redis, job_id, "the server could not save the images; nothing was charged")
    scored: list[tuple[float | None, bool]] = list(verdicts) or [(None, False)] * len(singles)
    new_images = [
        NewImage(index=i, key=key, width_px=result.width, height_px=result.height, nsfw_score=score, flagged=hit)
        for i, (key, (score, hit)) in enumerate(zip(singles, scored, strict=True), start=1)
    ]
    flagged = [image.index for image in new_images if image.flagged]
    if result.grid is not None and grid_key is not None:
        # The grid shows the singles: it scores as its worst one.
        worst = max((s for s, _ in verdicts), default=None)
        with Image.open(io.BytesIO(result.grid)) as grid:
            new_images.insert(
                0,
                NewImage(
                    index=0,
                    key=grid_key,
                    width_px=grid.width,
                    height_px=grid.height,
                    nsfw_score=worst,
                    flagged=bool(flagged),
                ),
            )

    async def settle(session: AsyncSession) -> Completed | None:
        # One transaction: done, images, charge, the user's next held jobs released (``queue.settle``).
        completed = await finish_job(
            session, job_id, images=new_images, gpu_seconds=result.gpu_seconds, holding=holding
        )
        if completed is not None:
            await record_reading(session, job_id, read_as=result.read_as, translate_seconds=result.translate_s)
            if flagged and place is not None:
                await audit_flagged(session, job_id, place, "image", verdicts)
        return completed

    completed = await when_sql_answers(
        state.sessions, settle, redis=redis, job_id=job_id, lease_s=state.config.lease_s, doing="settling its result"
    )
    if completed is None:
        log.info("job %s was completed by another delivery; this result is dropped", job_id)
        # Or this worker's own commit reached SQL just before the connection broke: say so from what the row says.
        await _reannounce(state, redis, job_id)
        return {"outcome": "duplicate"}
    await events.publish_final(
        redis,
        events.Done(
            job_id=job_id,
            image_keys=list(singles),
            grid_key=grid_key,
            seed=result.seed,
            gpu_seconds=result.gpu_seconds,
            paints_noise=result.paints_noise,
            read_as=result.read_as,
            flagged=flagged,
        ),
        ns=state.config.ns,
        before=rendered.unsent,
    )
    await endings.enqueue_released(redis, completed.released, ns=state.config.ns)
    return {"outcome": "done", "images": list(singles), "grid": grid_key, "gpu_seconds": result.gpu_seconds}


def _store(state: WorkerState, result: RenderResult) -> tuple[list[str], str | None]:
    singles = [state.images.put(png) for png in result.images]
    return singles, state.images.put(result.grid) if result.grid is not None else None


async def _reannounce(state: WorkerState, redis: Redis, job_id: str) -> None:
    """Publish a final job's terminal event if nobody did: covers a worker that died between its SQL commit and
    its event, a commit that reached SQL just before the connection broke, and a job cancelled while it waited.
    ``publish_final`` is once-only, so this never duplicates. The read waits for SQL (``queue.settle``)."""

    async def final_event(session: AsyncSession) -> events.Event | None:
        job = await session.get(Job, job_id)
        if job is None:
            return None
        if job.status == DONE:
            rows = (await session.scalars(select(ImageRow).where(ImageRow.job_id == job_id))).all()
            by_index = {row.index: row.store_key for row in rows}
            return events.Done(
                job_id=job_id,
                image_keys=[by_index[i] for i in sorted(by_index) if i >= 1],
                grid_key=by_index.get(0),
                seed=job.seed,
                gpu_seconds=job.gpu_seconds,
                read_as=job.read_as,
                flagged=sorted(row.index for row in rows if row.index >= 1 and row.moderation == FLAGGED_IMAGE),
                prompts=list(job.described or ()),
            )
        if job.status == FAILED:
            return events.Failed(job_id=job_id, message=job.error or "failed", refunded=True)
        if job.status == CANCELLED:
            return events.Cancelled(job_id=job_id, refunded=True)
        return None

    event = await when_sql_answers(
        state.sessions, final_event, redis=redis, job_id=job_id, lease_s=state.config.lease_s, doing="reading its end"
    )
    if event is not None:
        await events.publish_final(redis, event, ns=state.config.ns)


async def _fail(
    state: WorkerState,
    redis: ArqRedis,
    job_id: str,
    message: str,
    *,
    only_if: tuple[str, ...] = ACTIVE_STATUSES,
    audit: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    # While SQL is away the worker keeps the job (its lock renewed) and fails it once SQL answers (``queue.settle``).
    wait = endings.SqlWait(redis, state.config.lease_s)
    failed = await endings.fail(
        state.sessions, redis, job_id, message, ns=state.config.ns, only_if=only_if, audit=audit, wait=wait
    )
    if not failed:  # another delivery ended it, or this one's commit reached SQL before the connection broke
        await _reannounce(state, redis, job_id)
    return {"outcome": "failed" if failed else "duplicate", "error": message}


async def _cancel(state: WorkerState, redis: ArqRedis, job_id: str) -> dict[str, Any]:
    wait = endings.SqlWait(redis, state.config.lease_s)
    cancelled = await endings.cancel(state.sessions, redis, job_id, ns=state.config.ns, wait=wait)
    if not cancelled:
        await _reannounce(state, redis, job_id)
    return {"outcome": "cancelled" if cancelled else "duplicate"}
