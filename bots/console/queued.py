"""The console through the queue: with ``IMPASTO_REDIS_URL`` set, ``impasto imagine`` (and the actions on job ids)
submit through the job service as the local operator, wait on the event stream with a progress bar, and copy the
results out of the image store.

``render.py`` calls ``run_queued(args)``. For actions, ``args.file`` holds a job id, optionally with the image number:
``impasto upscale JOB_ID:2`` (or an ``args.index``). On a 2×2 grid an action first picks that image (U1–U4, free),
then acts on it, as on Midjourney.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from impasto.bots.config import Settings
from impasto.bots.service.requester import Requester
from impasto.queue.actions import Action

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from impasto.bots.service.jobs import JobService
    from impasto.bots.service.views import JobView
    from impasto.queue.keys import Namespace
    from impasto.storage.images import ImageStore

#: How long a job may wait with no worker taking any job before the console says so (IMPASTO_NO_WORKER_WARN_S).
NO_WORKER_WARN_S = 30.0


def no_worker_line(seconds: float) -> str:
    return f"no worker has taken a job for {seconds:g} s; is `impasto worker` running?"


_JOB_REF = re.compile(r"^(?P<job>[A-Za-z0-9_-]{4,64})(?:[:/#](?P<index>[1-4]))?$")


def console_requester() -> Requester:
    """The local operator: one console identity per installation (the operator plan applies)."""
    return Requester(platform="console", user_id="operator", display_name=getpass.getuser())


@dataclass
class ConsoleService:
    service: JobService
    images: ImageStore
    pool: ArqRedis | None
    settings: Settings
    ns: Namespace  # IMPASTO_QUEUE_NAMESPACE: where the workers queue and announce


@asynccontextmanager
async def console_service(settings: Settings, *, with_queue: bool) -> AsyncIterator[ConsoleService]:
    """The job service on the configured database (and the queue when ``with_queue``), closed afterwards."""
    from impasto.bots.service.jobs import JobService
    from impasto.queue.client import open_pool, service_enqueue
    from impasto.queue.keys import namespace_from_env
    from impasto.storage.db import make_engine, require_migrated, session_factory
    from impasto.storage.plans import load_plans, plans_path_from_env

    db = make_engine(settings.database_url_or_default)
    ns = namespace_from_env()
    pool = None
    try:
        await require_migrated(db)
        if with_queue:
            if not settings.redis_url:
                raise SystemExit("IMPASTO_REDIS_URL is not set: this command needs the queue")
            pool = await open_pool(settings.redis_url, ns=ns)

        async def no_queue(_request: object) -> None:
            raise RuntimeError("this console command does not queue jobs")

        images = settings.image_store()
        service = JobService(
            session_factory(db),
            images,
            settings.registry,
            load_plans(plans_path_from_env()),
            service_enqueue(pool, ns=ns) if pool is not None else no_queue,
        )
        yield ConsoleService(service=service, images=images, pool=pool, settings=settings, ns=ns)
    finally:
        if pool is not None:
            await pool.aclose()
        await db.dispose()


def run_queued(args: argparse.Namespace) -> int:
    """Entry point from ``render.py`` for imagine/upscale/vary/zoom/pan/square when the queue is configured."""
    from impasto.bots.language.errors import PromptError
    from impasto.bots.service.errors import ServiceError
    from impasto.storage.db import DatabaseError

    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    try:
        return asyncio.run(_run(args, settings))
    except (PromptError, ServiceError, DatabaseError, UsageError) as exc:
        print(exc, file=sys.stderr)
        return 2


class UsageError(Exception):
    """A console argument the queue mode cannot honour; the text says what to write instead."""


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "model", None):
        raise UsageError(
            "--model applies to inline renders; through the queue choose the model in the prompt (--v 6, --niji 6)"
        )
    async with console_service(settings, with_queue=True) as console:
        assert console.pool is not None
        from impasto.queue import events

        who = console_requester()
        since = await events.last_id(console.pool, ns=console.ns)
        if args.command == "imagine":
            tickets = await console.service.imagine(who, args.prompt, idempotency_key=f"console:{uuid.uuid4()}")
            job_ids = [t.job_id for t in tickets]
            for ticket in tickets:
                if ticket.notice:
                    print(ticket.notice, file=sys.stderr)
        else:
            job_id = await _press(console, who, args)
            if job_id is None:  # a U1–U4 pick: done, nothing to wait for
                return 0
            job_ids = [job_id]
        return await _wait(console, who, job_ids, since, _out_dir(args, settings))


async def _press(console: ConsoleService, who: Requester, args: argparse.Namespace) -> str | None:
    """Apply a console action to a job id; the new job's id, or None when the result is already there (a pick)."""
    ref = str(args.file)
    match = _JOB_REF.match(ref)
    if match is None:
        raise UsageError(
            f"{ref!r} is not a job id: with IMPASTO_REDIS_URL set, {args.command} takes JOB_ID or JOB_ID:N "
            "(see `impasto history`); unset IMPASTO_REDIS_URL to act on an image file"
        )
    job_id = match["job"]
    index = getattr(args, "index", None) or (int(match["index"]) if match["index"] else None)
    view = await console.service.job(job_id)
    key = f"console:{uuid.uuid4()}"
    if view.image(0) is not None:  # a grid: first pick the single image, as U1–U4 do
        if index is None:
            raise UsageError(f"job {job_id} is a 2×2 grid: name the image, e.g. `impasto {args.command} {job_id}:2`")
        picked = await console.service.press(who, job_id, Action.UPSCALE, index, idempotency_key=key + ":pick")
        plain_pick = not getattr(args, "creative", False) and getattr(args, "scale", 2) == 2
        if args.command == "upscale" and plain_pick:
            _save(console, picked.view, _out_dir(args, console.settings))
            return None
        view = picked.view
    action = _action_for(args)
    pressed = await console.service.press(who, view.job_id, action, None, idempotency_key=key)
    if pressed.kind == "remix":
        raise UsageError(f"Remix mode is on: turn it off with /settings to use {args.command} from the console")
    return pressed.view.job_id


def _action_for(args: argparse.Namespace) -> Action:
    command = args.command
    if command == "upscale":
        creative = getattr(args, "creative", False)
        if getattr(args, "scale", 2) == 4:
            return Action.UPSCALE_CREATIVE_4X if creative else Action.UPSCALE_SUBTLE_4X
        return Action.UPSCALE_CREATIVE if creative else Action.UPSCALE_SUBTLE
    if command == "vary":
        return Action.VARY_STRONG if getattr(args, "strong", False) else Action.VARY_SUBTLE
    if command == "zoom":
        factor = float(getattr(args, "factor", 2.0))
        if factor == 2.0:
            return Action.ZOOM_OUT_2
        if factor == 1.5:
            return Action.ZOOM_OUT_1_5
        raise UsageError(f"zoom factor {factor:g} through the queue: use 1.5 or 2")
    if command == "pan":
        return {"left": Action.PAN_LEFT, "right": Action.PAN_RIGHT, "up": Action.PAN_UP, "down": Action.PAN_DOWN}[
            args.direction
        ]
    if command == "square":
        return Action.MAKE_SQUARE
    raise UsageError(f"`impasto {command}` does not run through the queue yet; unset IMPASTO_REDIS_URL to run it here")


def _out_dir(args: argparse.Namespace, settings: Settings) -> Path:
    out = getattr(args, "out", None)
    return Path(out) if out else settings.data_dir / "renders"


async def _wait(console: ConsoleService, who: Requester, job_ids: list[str], since: str, out: Path) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from impasto.queue import events

    assert console.pool is not None
    failed = 0
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    tasks = {job_id: bar.add_task(f"{job_id} queued", total=None) for job_id in job_ids}
    finals: dict[str, events.Event] = {}
    started: set[str] = set()
    watch = asyncio.create_task(_warn_if_no_worker(console.pool, job_ids, started))
    try:
        with bar:
            async for event in events.listen(console.pool, job_ids=job_ids, since=since, ns=console.ns):
                task = tasks[event.job_id]
                if isinstance(event, events.Queued):
                    bar.update(task, description=f"{event.job_id} queued, {event.position} ahead")
                elif isinstance(event, events.Started):
                    started.add(event.job_id)
                    bar.update(task, description=f"{event.job_id} painting")
                elif isinstance(event, events.Progress):
                    bar.update(task, completed=event.step, total=event.total)
                elif event.final:
                    finals[event.job_id] = event
                    bar.update(task, description=f"{event.job_id} {event.kind}")
    except (KeyboardInterrupt, asyncio.CancelledError):
        for job_id in job_ids:
            if job_id not in finals:
                await console.service.cancel(who, job_id)
        print("cancelled; nothing is charged for unfinished jobs", file=sys.stderr)
        return 130
    finally:
        watch.cancel()
    for job_id in job_ids:
        final = finals[job_id]
        if isinstance(final, events.Done):
            _save(console, await console.service.job(job_id), out)
            if final.paints_noise:
                print("NOTE: a built-in tiny model painted this: it is NOISE by design", file=sys.stderr)
        elif isinstance(final, events.Failed):
            failed += 1
            print(f"job {job_id} failed: {final.message}", file=sys.stderr)
        else:
            failed += 1
            print(f"job {job_id} was cancelled", file=sys.stderr)
    return 1 if failed else 0


async def _warn_if_no_worker(pool: ArqRedis, job_ids: list[str], started: set[str]) -> None:
    """Say once if none of ``job_ids`` started and no worker of this deployment took any job for the whole wait."""
    from impasto.queue.keys import namespace_from_env
    from impasto.queue.stalled import nothing_taken_since, waiting_jobs

    seconds = float(os.environ.get("IMPASTO_NO_WORKER_WARN_S") or NO_WORKER_WARN_S)
    ns = namespace_from_env()
    before = await waiting_jobs(pool, ns)
    await asyncio.sleep(seconds)
    if not started.issuperset(job_ids) and await nothing_taken_since(pool, ns, before):
        print(no_worker_line(seconds), file=sys.stderr)


def _save(console: ConsoleService, view: JobView, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for image in sorted(view.images, key=lambda i: i.index):
        name = f"{view.job_id}-grid.png" if image.index == 0 else f"{view.job_id}-{image.index}.png"
        path = out / name
        path.write_bytes(console.images.get(image.key))
        print(path)
    print(f"job {view.job_id}: {view.display or view.prompt} (seed {view.seed}, {view.status})")
