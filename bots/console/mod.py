"""``impasto mod``: the operator's moderation console — try the prompt policy, read the audit log, ban and unban.

``impasto mod check [--guild discord:ID] [--channel-nsfw] [--json] TEXT`` exits 0 when the prompt is allowed and 2
when it is refused; ``--json`` prints ``{"allowed", "category", "rule", "matched"}`` (the operator may see what
matched; users never do). ``--file FILE`` checks every line of a file and prints the counts and the median time per
prompt. Only ``--guild`` and the log/ban commands need the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impasto.bots.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from impasto.queue.moderation.policy import Policy, ServerRules
    from impasto.queue.moderation.verdict import Verdict

PLACE = re.compile(r"(discord|telegram):(-?\d{1,20})")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("mod", help="moderation: try the prompt policy, read the audit log, ban users")
    actions = parser.add_subparsers(dest="mod_command", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="would this prompt be refused? (exit 0 allowed, 2 refused)")
    check.add_argument("text", nargs="?", help="the prompt, as a user would type it")
    check.add_argument("--guild", "--server", dest="guild", help="a server's own rules: discord:ID or telegram:ID")
    check.add_argument("--channel-nsfw", "--nsfw", dest="nsfw", action="store_true", help="as in an NSFW channel")
    check.add_argument("--json", action="store_true", help='print {"allowed", "category", "rule", "matched"}')
    check.add_argument("--file", type=Path, help="check every line of FILE; print counts and the median time")
    check.set_defaults(handler=run_check)

    log = actions.add_parser("log", help="the audit log, newest first")
    log.add_argument("--guild", "--server", dest="guild", help="one server: discord:ID or telegram:ID")
    log.add_argument("--user", help="one user: discord:ID or telegram:ID")
    log.add_argument("--limit", type=int, default=50, help="how many rows (1–1000, default 50)")
    log.set_defaults(handler=run_log)

    ban = actions.add_parser("ban", help="ban a user everywhere (or in one server with --guild)")
    ban.add_argument("user", metavar="PLATFORM:USER_ID", help="discord:ID or telegram:ID")
    ban.add_argument("--guild", "--server", dest="guild", help="only in this server: discord:ID or telegram:ID")
    ban.add_argument("--reason", default="", help="kept in the audit log")
    ban.add_argument("--duration", help="e.g. 30m, 12h, 7d (default: until unbanned)")
    ban.set_defaults(handler=run_ban)

    unban = actions.add_parser("unban", help="lift a user's ban (everywhere, or in one server with --guild)")
    unban.add_argument("user", metavar="PLATFORM:USER_ID", help="discord:ID or telegram:ID")
    unban.add_argument("--guild", "--server", dest="guild", help="in this server: discord:ID or telegram:ID")
    unban.set_defaults(handler=run_unban)

    purge = actions.add_parser("purge", help="empty audit evidence older than IMPASTO_MODERATION_RETENTION_DAYS now")
    purge.set_defaults(handler=run_purge)


def _place(value: str, what: str) -> tuple[str, str]:
    found = PLACE.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"{what} {value!r}: write discord:ID or telegram:ID (digits)")
    return found.group(1), found.group(2)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    from impasto.queue.moderation.matching import PolicyError
    from impasto.storage.db import DatabaseError

    try:
        return asyncio.run(coro)
    except (DatabaseError, PolicyError, ValueError) as exc:
        print(f"impasto mod: {exc}", file=sys.stderr)
        return 2


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    from impasto.storage.db import make_engine, require_migrated, session_factory

    engine = make_engine(settings.database_url_or_default)
    try:
        await require_migrated(engine)
        async with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


# --- check ---------------------------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.file is None):
        print("impasto mod check: give the prompt TEXT or --file FILE (one of them)", file=sys.stderr)
        return 2
    return _run(_check(args))


async def _check(args: argparse.Namespace) -> int:
    from impasto.queue.moderation.policy import NO_SERVER

    settings = Settings()  # type: ignore[call-arg]
    policy = settings.moderation_policy
    rules = NO_SERVER
    if args.guild:
        from impasto.storage import moderation as mod

        platform, guild = _place(args.guild, "--guild")
        async with _session(settings) as session:
            rules = policy.rules_for(
                await mod.server_moderation(session, await mod.guild_id_for(session, platform, guild))
            )
    if args.file is not None:
        return _check_file(settings, policy, rules, args.file, nsfw=args.nsfw)
    verdict = _verdict(settings, policy, rules, args.text, nsfw=args.nsfw)
    if args.json:
        print(json.dumps(verdict.to_json(), ensure_ascii=False))
    elif verdict.allowed:
        print("allowed" + (f" (matched, allowed here: {', '.join(verdict.matched)})" if verdict.matched else ""))
    else:
        print(verdict.reason)
        print(f"  category: {verdict.category}  rule: {verdict.rule}  matched: {', '.join(verdict.matched)}")
    return 0 if verdict.allowed else 2


def _verdict(settings: Settings, policy: Policy, rules: ServerRules, text: str, *, nsfw: bool) -> Verdict:
    """As admission will: the parsed prompt's positive text and links (not ``--no``); unparsable text as it is."""
    from impasto.bots.language.errors import PromptError
    from impasto.bots.language.parser import parse_imagine
    from impasto.bots.moderation.check import check_jobs
    from impasto.queue.moderation.verdict import check_prompt

    try:
        jobs = parse_imagine(text, registry=settings.registry, max_permutations=settings.max_permutations)
    except PromptError:
        return check_prompt(policy, rules, text, nsfw_channel=nsfw)
    return check_jobs(policy, rules, jobs, nsfw_channel=nsfw)


def _check_file(settings: Settings, policy: Policy, rules: ServerRules, path: Path, *, nsfw: bool) -> int:
    try:
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    refused = 0
    timings_s: list[float] = []
    for line in lines:
        started = time.perf_counter()
        verdict = _verdict(settings, policy, rules, line, nsfw=nsfw)
        timings_s.append(time.perf_counter() - started)
        if not verdict.allowed:
            refused += 1
            print(f"refused ({verdict.category}): {line}")
    median_us = statistics.median(timings_s) * 1e6 if timings_s else 0.0
    print(
        f"{len(lines)} prompts: {len(lines) - refused} allowed, {refused} refused; median {median_us:.0f} µs per prompt"
    )
    return 0 if refused == 0 else 2


# --- log, ban, unban, purge ----------------------------------------------------------------------------------------


def run_log(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        print(f"impasto mod log: --limit {args.limit}: use 1 to 1000", file=sys.stderr)
        return 2
    return _run(_log(args))


async def _log(args: argparse.Namespace) -> int:
    from impasto.storage import moderation as mod

    async with _session(Settings()) as session:  # type: ignore[call-arg]
        guild_id = await mod.guild_id_for(session, *_place(args.guild, "--guild")) if args.guild else None
        user_id = await mod.user_id_for(session, *_place(args.user, "--user")) if args.user else None
        rows = await mod.audit_log(session, guild_id=guild_id, user_id=user_id, limit=args.limit)
    if not rows:
        print("the audit log is empty")
        return 0
    for row in rows:
        parts = [row.created_at.strftime("%Y-%m-%d %H:%M"), f"{row.kind:<8}", row.user or "-", row.guild or "-"]
        if row.category:
            parts.append(f"{row.category}/{row.rule}")
        if row.moderator:
            parts.append(f"by {row.moderator}")
        if row.job_id:
            parts.append(f"job {row.job_id}")
        if row.note and not row.note.startswith(mod.REQUEST_NOTE):
            parts.append(row.note)
        if row.prompt is not None:
            parts.append(f"prompt {row.prompt!r} matched {row.matched!r}")
        print("  ".join(parts))
    return 0


def run_ban(args: argparse.Namespace) -> int:
    return _run(_ban(args))


async def _ban(args: argparse.Namespace) -> int:
    from impasto.storage import moderation as mod
    from impasto.storage.models import utcnow

    platform, user = _place(args.user, "user")
    from impasto.bots.moderation.commands import parse_duration

    until = utcnow() + parse_duration(args.duration) if args.duration else None
    async with _session(Settings()) as session:  # type: ignore[call-arg]
        user_id = await mod.user_id_for(session, platform, user)
        guild_id = await mod.guild_id_for(session, *_place(args.guild, "--guild")) if args.guild else None
        await mod.ban(session, user_id, guild_id, until=until, reason=args.reason)
    where = f"in {args.guild}" if args.guild else "everywhere"
    print(f"banned {platform}:{user} {where}" + (f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""))
    return 0


def run_unban(args: argparse.Namespace) -> int:
    return _run(_unban(args))


async def _unban(args: argparse.Namespace) -> int:
    from impasto.storage import moderation as mod

    platform, user = _place(args.user, "user")
    async with _session(Settings()) as session:  # type: ignore[call-arg]
        user_id = await mod.user_id_for(session, platform, user)
        guild_id = await mod.guild_id_for(session, *_place(args.guild, "--guild")) if args.guild else None
        lifted = await mod.unban(session, user_id, guild_id)
    print(f"lifted {lifted} ban(s) of {platform}:{user}" if lifted else f"{platform}:{user} was not banned there")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    return _run(_purge())


async def _purge() -> int:
    from impasto.storage import moderation as mod

    settings = Settings()  # type: ignore[call-arg]
    async with _session(settings) as session:
        result = await mod.purge_evidence(session, retention_days=settings.moderation_retention_days)
    print(f"purged the evidence of {result.rows} audit row(s) older than {settings.moderation_retention_days} days")
    return 0
