"""``impasto info`` and ``impasto history``: the local operator's account, as /info and /history show it in chat."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from impasto.bots.config import Settings
from impasto.queue.actions import label_of


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("info", help="your plan, fast time left, usage, queued and running jobs")
    p.set_defaults(handler=run_info)
    p = subparsers.add_parser("history", help="your recent jobs, newest first (job ids for upscale/vary/...)")
    p.add_argument("search", nargs="?", default=None, help="only jobs whose prompt contains this text")
    p.add_argument("--limit", type=int, default=20, help="how many jobs (1–100, default 20)")
    p.set_defaults(handler=run_history)


def run_info(args: argparse.Namespace) -> int:
    return _run(_info())


def run_history(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        print(f"--limit {args.limit}: use 1 to 100", file=sys.stderr)
        return 2
    return _run(_history(args.search, args.limit))


def _run(coro: Coroutine[Any, Any, int]) -> int:
    from impasto.bots.service.errors import ServiceError
    from impasto.storage.db import DatabaseError

    try:
        return asyncio.run(coro)
    except (ServiceError, DatabaseError) as exc:
        print(exc, file=sys.stderr)
        return 2


async def _info() -> int:
    from impasto.bots.console.queued import console_requester, console_service

    async with console_service(Settings(), with_queue=False) as console:  # type: ignore[call-arg]
        info = await console.service.info(console_requester())
    queued = ", ".join(f"{n} {lane}" for lane, n in info.queued_jobs.items() if n) or "none"
    print(f"Plan:              {info.plan}")
    print(f"Mode:              {info.mode} ({info.visibility}{', remix' if info.remix else ''})")
    print(
        f"Fast time left:    {info.fast_remaining_hours:.2f} / {info.fast_limit_hours:.2f} h "
        f"({info.fast_remaining_percent:.0f}%), renews {info.renews_on.isoformat()}"
    )
    print(f"Lifetime usage:    {info.lifetime_images} images ({info.lifetime_gpu_seconds / 3600:.2f} h)")
    print(f"Relaxed usage:     {info.relaxed_images} images ({info.relaxed_gpu_seconds / 3600:.2f} h)")
    print(f"Queued jobs:       {queued}")
    print(f"Running jobs:      {', '.join(info.running_jobs) or 'none'}")
    return 0


async def _history(search: str | None, limit: int) -> int:
    from impasto.bots.console.queued import console_requester, console_service

    async with console_service(Settings(), with_queue=False) as console:  # type: ignore[call-arg]
        views = await console.service.history(console_requester(), search, limit)
    if not views:
        print("no jobs yet" if search is None else f"no jobs matching {search!r}")
        return 0
    for view in views:
        when = view.queued_at.strftime("%Y-%m-%d %H:%M")
        what = view.display or view.prompt
        action = label_of(view.action).replace("#", str(view.image_index or ""))
        print(f"{view.job_id}  {when}  {view.status:<9}  {action:<18}  {what}")
    return 0
