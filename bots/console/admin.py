"""``impasto admin …``: the operator's hand on the service, without SQL by hand.

Amounts are fast GPU hours, the unit of ``plans.toml`` and ``/info``:

    impasto admin credits grant discord:1234 2.5 --note "contest winner"
    impasto admin credits revoke telegram:42 1
    impasto admin plan set discord:1234 pro          (``default`` gives the user back to server roles)
    impasto admin cap set discord:5678 0.5           (per member per UTC day; ``off`` lifts it)
    impasto admin cancel JOB_ID
    impasto admin user show discord:1234 [--json]
    impasto admin log [PLATFORM:ID | JOB_ID]         (every change above, who made it and when)

Grants go through the ledger (``impasto.storage.admin``); a cancel goes the way the owner's ❌ goes: a queued job is
cancelled and refunded at once (and, with Redis, its chat hears it and the user's next held job is queued), a
painting one is flagged and its worker stops it at the next step and refunds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from impasto.bots.config import Settings

log = logging.getLogger("impasto.admin")

SECONDS_PER_HOUR = 3600.0
MAX_HOURS = 100_000.0  # a typo guard: more than eleven years of one GPU


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "admin",
        help="grant or revoke fast hours, set a user's plan or a server's daily cap, cancel a job, show a user",
        description="Operator commands on the database (IMPASTO_DATABASE_URL) and, for cancel, the queue "
        "(IMPASTO_REDIS_URL). Amounts are fast GPU hours, as in plans.toml and /info.",
    )
    groups = p.add_subparsers(dest="admin_command", metavar="WHAT", required=True)

    credits = groups.add_parser("credits", help="grant or revoke fast GPU hours for this month")
    credits_actions = credits.add_subparsers(dest="credits_action", metavar="ACTION", required=True)
    for name, help_text in (("grant", "add fast hours to a user's month"), ("revoke", "take fast hours back")):
        action = credits_actions.add_parser(name, help=help_text)
        action.add_argument("account", metavar="PLATFORM:USER", help="e.g. discord:123456789012345678, telegram:42")
        action.add_argument("hours", metavar="HOURS", help="fast GPU hours, e.g. 2 or 0.5")
        action.add_argument("--note", default="", help="why (kept in the ledger, up to 200 characters)")
        action.set_defaults(handler=run_credits)

    plan = groups.add_parser("plan", help="give a user a plan of their own")
    plan_actions = plan.add_subparsers(dest="plan_action", metavar="ACTION", required=True)
    plan_set = plan_actions.add_parser("set", help="set the user's plan (default: back to server roles)")
    plan_set.add_argument("account", metavar="PLATFORM:USER")
    plan_set.add_argument("plan", metavar="PLAN", help="a plan of the plans file (IMPASTO_PLANS), or 'default'")
    plan_set.set_defaults(handler=run_plan_set)

    cap = groups.add_parser("cap", help="a server's daily fast-time cap per member")
    cap_actions = cap.add_subparsers(dest="cap_action", metavar="ACTION", required=True)
    cap_set = cap_actions.add_parser("set", help="set the cap in fast GPU hours per member per UTC day")
    cap_set.add_argument("account", metavar="PLATFORM:GUILD", help="e.g. discord:5678 or telegram:-100123")
    cap_set.add_argument("hours", metavar="N", help="fast GPU hours per member per day, or 'off'")
    cap_set.set_defaults(handler=run_cap_set)

    cancel = groups.add_parser("cancel", help="cancel anyone's job (refunded)")
    cancel.add_argument("job_id", metavar="JOB_ID", help="a job id; one that starts with '-' goes after '--'")
    cancel.set_defaults(handler=run_cancel)

    log_parser = groups.add_parser("log", help="what operators changed with impasto admin, newest first")
    log_parser.add_argument(
        "target", nargs="?", default=None, metavar="TARGET", help="only about PLATFORM:ID or JOB_ID"
    )
    log_parser.add_argument("--limit", type=int, default=20, help="how many lines (1–500, default 20)")
    log_parser.set_defaults(handler=run_log)

    user = groups.add_parser("user", help="a user's account")
    user_actions = user.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    show = user_actions.add_parser("show", help="plan, balance, usage and recent jobs")
    show.add_argument("account", metavar="PLATFORM:USER")
    show.add_argument("--limit", type=int, default=10, help="how many recent jobs and grants (1–100, default 10)")
    show.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    show.set_defaults(handler=run_user_show)


# ---------------------------------------------------------------------------------------------------- handlers


def run_credits(args: argparse.Namespace) -> int:
    from impasto.storage import admin

    sign = 1.0 if args.credits_action == "grant" else -1.0

    async def go(session: Any, out: list[str]) -> int:
        hours = _hours(args.hours, allow_zero=False)
        platform, ident = admin.parse_account(args.account)
        user = await admin.ensure_user(session, platform, ident)
        used = await admin.grant(session, user, sign * hours * SECONDS_PER_HOUR, note=args.note)
        await admin.record_action(
            session,
            operator=operator_name(),
            command=f"credits {args.credits_action}",
            target=f"{platform}:{ident}",
            detail={"hours": hours, "note": args.note},
        )
        verb = "granted" if sign > 0 else "revoked"
        out.append(f"{verb} {hours:g} fast hours {'to' if sign > 0 else 'from'} {platform}:{ident}")
        out.append(f"this month's fast time used is now {used / SECONDS_PER_HOUR:.2f} h (negative: credit to spend)")
        log.info("admin credits %s %s:%s %s h", args.credits_action, platform, ident, hours)
        return 0

    return _run(go)


def run_plan_set(args: argparse.Namespace) -> int:
    from impasto.storage import admin
    from impasto.storage.plans import load_plans, plans_path_from_env

    async def go(session: Any, out: list[str]) -> int:
        plans = load_plans(plans_path_from_env())
        name: str | None = None if args.plan.lower() in ("default", "none") else args.plan
        if name is not None:
            plans.get(name)  # PlanError names the plans that exist
        platform, ident = admin.parse_account(args.account)
        user = await admin.ensure_user(session, platform, ident)
        previous = user.plan
        await admin.set_plan(session, user, name)
        await admin.record_action(
            session,
            operator=operator_name(),
            command="plan set",
            target=f"{platform}:{ident}",
            detail={"plan": name, "was": previous},
        )
        if name is None:
            out.append(f"{platform}:{ident} has no plan of their own now: server roles, else {plans.default!r}")
        else:
            out.append(
                f"{platform}:{ident} is on plan {name!r} ({plans.get(name).fast_gpu_hours:g} fast hours a month)"
            )
        log.info("admin plan set %s:%s %s", platform, ident, name or "default")
        return 0

    return _run(go)


def run_cap_set(args: argparse.Namespace) -> int:
    from impasto.storage import admin

    async def go(session: Any, out: list[str]) -> int:
        off = args.hours.strip().lower() in ("off", "none")
        hours = None if off else _hours(args.hours, allow_zero=True)
        platform, ident = admin.parse_account(args.account, what="server")
        if platform == "console":
            raise admin.AdminError("the console has no servers: use discord:GUILD_ID or telegram:CHAT_ID")
        guild = await admin.ensure_guild(session, platform, ident)
        previous = guild.daily_cap_gpu_seconds
        await admin.set_daily_cap(session, guild, None if hours is None else hours * SECONDS_PER_HOUR)
        await admin.record_action(
            session,
            operator=operator_name(),
            command="cap set",
            target=f"{platform}:{ident}",
            detail={"hours": hours, "was_hours": None if previous is None else previous / SECONDS_PER_HOUR},
        )
        if hours is None:
            out.append(f"{platform}:{ident}: no daily cap")
        else:
            out.append(f"{platform}:{ident}: each member may spend {hours:g} fast hours per UTC day")
        log.info("admin cap set %s:%s %s", platform, ident, "off" if hours is None else hours)
        return 0

    return _run(go)


def run_cancel(args: argparse.Namespace) -> int:
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    return _run_async(lambda: _cancel(settings, args.job_id))


async def _cancel(settings: Settings, job_id: str) -> int:
    from sqlalchemy import select

    from impasto.storage import admin
    from impasto.storage.db import make_engine, require_migrated, session_factory
    from impasto.storage.lifecycle import request_cancel
    from impasto.storage.models import ACTIVE_STATUSES, CANCELLED, Job

    db = make_engine(settings.database_url_or_default)
    try:
        await require_migrated(db)
        sessions = session_factory(db)
        async with sessions() as session, session.begin():
            before = await session.scalar(select(Job.status).where(Job.id == job_id))
            if before is None:
                print(f"no job {job_id!r}", file=sys.stderr)
                return 2
            if before not in ACTIVE_STATUSES:
                print(f"job {job_id} is already {before}: nothing to cancel")
                return 0
            after = await request_cancel(session, job_id)
            await admin.record_action(
                session, operator=operator_name(), command="cancel", target=job_id, detail={"was": before, "now": after}
            )
        log.info("admin cancel %s: %s → %s", job_id, before, after)
        if after != CANCELLED:
            print(f"job {job_id} is {after}: its worker stops it at the next step and refunds it")
            return 0
        print(f"job {job_id} cancelled and refunded")
        if settings.redis_url:
            await _announce_cancel(settings.redis_url, sessions, job_id)
        else:
            print("IMPASTO_REDIS_URL is not set: its chat was not told, and the user's held jobs wait for the sweep")
        return 0
    finally:
        await db.dispose()


async def _announce_cancel(redis_url: str, sessions: Any, job_id: str) -> None:
    """Tell the job's chat (the terminal event) and queue the user's next held job, as the owner's ❌ does."""
    from impasto.queue import endings, events
    from impasto.queue.client import open_pool
    from impasto.queue.keys import namespace_from_env

    ns = namespace_from_env()
    pool = await open_pool(redis_url, ns=ns)
    try:
        await events.publish_final(pool, events.Cancelled(job_id=job_id, refunded=True))
        await endings.release_after(sessions, pool, job_id, ns=ns)
    finally:
        await pool.aclose()


def run_log(args: argparse.Namespace) -> int:
    from impasto.storage import admin

    if not 1 <= args.limit <= 500:
        print(f"--limit {args.limit}: use 1 to 500", file=sys.stderr)
        return 2

    async def go(session: Any, out: list[str]) -> int:
        actions = await admin.recent_actions(session, target=args.target, limit=args.limit)
        if not actions:
            out.append("no operator actions yet" if args.target is None else f"no operator actions on {args.target}")
        for action in actions:
            detail = json.dumps(action.detail, ensure_ascii=False, sort_keys=True)
            out.append(
                f"{action.at:%Y-%m-%d %H:%M:%S}  {action.operator:<12} {action.command:<14} {action.target}  {detail}"
            )
        return 0

    return _run(go)


def run_user_show(args: argparse.Namespace) -> int:
    from impasto.storage import admin
    from impasto.storage.plans import load_plans, plans_path_from_env

    if not 1 <= args.limit <= 100:
        print(f"--limit {args.limit}: use 1 to 100", file=sys.stderr)
        return 2

    async def go(session: Any, out: list[str]) -> int:
        plans = load_plans(plans_path_from_env())
        platform, ident = admin.parse_account(args.account)
        user = await admin.find_user(session, platform, ident)
        if user is None:
            raise admin.AdminError(f"{platform}:{ident} has never used impasto")
        report = await admin.user_report(session, user, limit=args.limit)
        plan = plans.plans.get(report.plan_override) if report.plan_override else None
        if args.json:
            body = dataclasses.asdict(report)
            body["plan_fast_hours"] = plan.fast_gpu_hours if plan else None
            out.append(json.dumps(body, default=str, sort_keys=True, ensure_ascii=False))
        else:
            out.extend(_report_lines(report, plan_hours=plan.fast_gpu_hours if plan else None, plans=plans))
        return 0

    return _run(go)


def _report_lines(report: Any, *, plan_hours: float | None, plans: Any) -> list[str]:
    hours = SECONDS_PER_HOUR
    who = f"{report.platform}:{report.platform_user_id}"
    lines = [f"user:           {who}{f' ({report.display_name})' if report.display_name else ''}"]
    if report.plan_override:
        lines.append(f"plan:           {report.plan_override} (set by an operator)")
    else:
        default_hours = plans.get(plans.default).fast_gpu_hours
        lines.append(f"plan:           by server roles, else {plans.default} ({default_hours:g} fast h)")
    limit_h = plan_hours if plan_hours is not None else plans.get(plans.default).fast_gpu_hours
    left_h = limit_h - (report.used_gpu_seconds + report.reserved_gpu_seconds) / hours
    lines += [
        f"fast time {report.period}: used {report.used_gpu_seconds / hours:.2f} h, "
        f"held {report.reserved_gpu_seconds / hours:.2f} h, "
        f"left {left_h:.2f} of {limit_h:g} h" + ("" if report.plan_override else " (on the default plan)"),
        f"images {report.period}: {report.month_images}",
        f"lifetime:       {report.lifetime_images} images, {report.lifetime_gpu_seconds / hours:.2f} GPU h "
        f"({report.relaxed_images} relaxed)",
        f"active jobs:    {report.active_jobs}",
    ]
    for period, used in sorted(report.daily.items()):
        lines.append(f"daily cap use:  {period}: {used / hours:.2f} h")
    for g in report.grants:
        note = f"  ({g.note})" if g.note else ""
        lines.append(f"{g.kind + ':':<16}{g.created_at:%Y-%m-%d %H:%M}  {g.gpu_seconds / hours:g} h{note}")
    lines.append("recent jobs:" if report.jobs else "recent jobs:    none")
    for j in report.jobs:
        lines.append(
            f"  {j.job_id}  {j.queued_at:%Y-%m-%d %H:%M}  {j.status:<9} {j.action:<7} {j.mode:<5} "
            f"{j.charged_gpu_seconds:7.1f} s  {j.prompt[:60]}"
        )
    return lines


# ------------------------------------------------------------------------------------------------------ helpers


def operator_name() -> str:
    """Who is at the console, for the audit trail: IMPASTO_OPERATOR, else the OS user."""
    import getpass
    import os

    try:
        fallback = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        fallback = "unknown"
    return os.environ.get("IMPASTO_OPERATOR") or fallback


def _hours(text: str, *, allow_zero: bool) -> float:
    from impasto.storage.admin import AdminError

    try:
        value = float(text)
    except ValueError:
        raise AdminError(f"{text!r} is not a number of hours: write e.g. 2 or 0.5") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero) or value > MAX_HOURS:
        floor = "0" if allow_zero else "more than 0"
        raise AdminError(f"{text!r} hours: use {floor} and at most {MAX_HOURS:g}")
    return value


def _run(go: Callable[[Any, list[str]], Awaitable[int]]) -> int:
    """Run ``go(session, out)`` in one transaction on the migrated database; print ``out`` once it has committed."""
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment

    async def main() -> int:
        from impasto.storage.db import make_engine, require_migrated, session_factory

        db = make_engine(settings.database_url_or_default)
        try:
            await require_migrated(db)
            out: list[str] = []
            async with session_factory(db)() as session, session.begin():
                status = await go(session, out)
        finally:
            await db.dispose()
        for line in out:
            print(line)
        return status

    return _run_async(main)


def _run_async(main: Callable[[], Awaitable[int]]) -> int:
    from impasto.storage.admin import AdminError
    from impasto.storage.db import DatabaseError
    from impasto.storage.plans import PlanError

    async def call() -> int:
        return await main()

    try:
        return asyncio.run(call())
    except (AdminError, DatabaseError, PlanError) as exc:
        print(f"impasto admin: {exc}", file=sys.stderr)
        return 2
