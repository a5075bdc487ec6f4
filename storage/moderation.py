"""Moderation in SQL: a server's settings and words, the audit log, bans and timeouts, the strike ladder, retention.

Functions take a session and never commit; the caller owns the transaction (``async with session.begin():``), so a
refusal, its strike and the timeout it may trigger land together or not at all.

Users and servers are ``users.id`` / ``guilds.id``; ``user_id_for`` / ``guild_id_for`` find or create them from
platform ids for callers that only have those (the console). This module imports nothing from ``bots``: the prompt
policy turns ``ServerModeration`` into its own rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, String, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage import accounts
from impasto.storage.models import (
    APPEAL,
    APPROVED,
    BAN,
    HELD,
    REFUSED,
    REJECTED,
    TIMEOUT,
    UNBAN,
    Guild,
    Image,
    Job,
    ModerationBan,
    ModerationEvent,
    ModerationSettings,
    ModerationWord,
    User,
    utcnow,
)
from impasto.storage.upsert import insert_ignore

ADDED = "added"
REMOVED = "removed"
ANY_CATEGORY = "*"  # a removal applies to every category the server may change
FLAGGED_OUTPUT = ("hold", "spoiler", "remove")
FLAGGED_OUTPUT_NSFW = ("deliver", *FLAGGED_OUTPUT)
BLOCK_WINDOW = timedelta(days=30)  # timeouts counted towards a ban


@dataclass(frozen=True)
class ServerModeration:
    """A server's moderation, defaults filled in (a server without a row gets ``ServerModeration()``)."""

    choices: dict[str, str]
    added: frozenset[tuple[str, str]]  # (category, word)
    removed: frozenset[str]
    flagged_output: str = "spoiler"
    flagged_output_nsfw: str = "deliver"
    nsfw_chat: bool = False
    mod_channel_id: str | None = None
    strike_limit: int = 5
    strike_window_s: int = 24 * 3600
    timeout_s: int = 3600
    block_after_timeouts: int = 3


@dataclass(frozen=True)
class Strike:
    """What one refusal did on the ladder: the refusals counted, and a timeout or a ban if it crossed a step."""

    refusals: int
    limit: int
    timeout_until: datetime | None = None
    banned: bool = False
    refusal_id: int | None = None  # the audit row of this refusal: what an Appeal button carries


@dataclass(frozen=True)
class Ban:
    kind: str  # BAN | TIMEOUT
    until: datetime | None  # None: until lifted
    reason: str
    everywhere: bool  # the operator's ban (no server)


@dataclass(frozen=True)
class PurgeResult:
    rows: int
    job_ids: tuple[str, ...]  # jobs whose evidence went: the caller deletes their stored images


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes for ``DateTime(timezone=True)``; every time here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- people and places ---------------------------------------------------------------------------------------------


async def user_id_for(session: AsyncSession, platform: str, platform_user_id: str) -> int:
    """The user's SQL id, the row created on first sight (a moderator may ban someone who never painted)."""
    return (await accounts.upsert_user(session, platform, platform_user_id)).id


async def guild_id_for(session: AsyncSession, platform: str, platform_guild_id: str) -> int:
    return (await accounts.upsert_guild(session, platform, platform_guild_id)).id


# --- a server's settings and words ---------------------------------------------------------------------------------


async def server_moderation(session: AsyncSession, guild_id: int | None) -> ServerModeration:
    """The server's settings and words (``None``, a DM or the console: the defaults)."""
    if guild_id is None:
        return ServerModeration(choices={}, added=frozenset(), removed=frozenset())
    row = await session.get(ModerationSettings, guild_id)
    words = (await session.execute(select(ModerationWord).where(ModerationWord.guild_id == guild_id))).scalars()
    added: set[tuple[str, str]] = set()
    removed: set[str] = set()
    for word in words:
        if word.action == ADDED:
            added.add((word.category, word.word))
        else:
            removed.add(word.word)
    if row is None:
        return ServerModeration(choices={}, added=frozenset(added), removed=frozenset(removed))
    return ServerModeration(
        choices={str(k): str(v) for k, v in row.choices.items()},
        added=frozenset(added),
        removed=frozenset(removed),
        flagged_output=row.flagged_output,
        flagged_output_nsfw=row.flagged_output_nsfw,
        nsfw_chat=row.nsfw_chat,
        mod_channel_id=row.mod_channel_id,
        strike_limit=row.strike_limit,
        strike_window_s=row.strike_window_s,
        timeout_s=row.timeout_s,
        block_after_timeouts=row.block_after_timeouts,
    )


async def _settings_row(session: AsyncSession, guild_id: int) -> ModerationSettings:
    await insert_ignore(
        session,
        ModerationSettings,
        {
            "guild_id": guild_id,
            "choices": {},
            "flagged_output": "spoiler",
            "flagged_output_nsfw": "deliver",
            "nsfw_chat": False,
            "strike_limit": 5,
            "strike_window_s": 24 * 3600,
            "timeout_s": 3600,
            "block_after_timeouts": 3,
            "updated_at": utcnow(),
        },
        columns=["guild_id"],
    )
    row = await session.get(ModerationSettings, guild_id, populate_existing=True, with_for_update=True)
    assert row is not None
    return row


async def set_choice(session: AsyncSession, guild_id: int, category: str, choice: str | None) -> None:
    """Set a category to block / nsfw / allow, or (``None``) back to the policy's default.

    The caller validates the category and the choice against the policy (``Policy.categories``, locked ones).
    """
    row = await _settings_row(session, guild_id)
    choices = dict(row.choices)
    if choice is None:
        choices.pop(category, None)
    else:
        choices[category] = choice
    row.choices = choices  # a new dict: JSON columns do not track changes made in place
    row.updated_at = utcnow()


async def update_settings(
    session: AsyncSession,
    guild_id: int,
    *,
    flagged_output: str | None = None,
    flagged_output_nsfw: str | None = None,
    nsfw_chat: bool | None = None,
    mod_channel_id: str | None = None,
    strike_limit: int | None = None,
    strike_window_s: int | None = None,
    timeout_s: int | None = None,
    block_after_timeouts: int | None = None,
) -> None:
    """Change the given settings (``None`` leaves one as it is). Raises ``ValueError`` naming a bad value."""
    if flagged_output is not None and flagged_output not in FLAGGED_OUTPUT:
        raise ValueError(f"flagged output {flagged_output!r}: use one of {', '.join(FLAGGED_OUTPUT)}")
    if flagged_output_nsfw is not None and flagged_output_nsfw not in FLAGGED_OUTPUT_NSFW:
        raise ValueError(
            f"flagged output in NSFW channels {flagged_output_nsfw!r}: use {', '.join(FLAGGED_OUTPUT_NSFW)}"
        )
    limits: tuple[tuple[str, int | None, int], ...] = (
        ("strike limit", strike_limit, 1),
        ("strike window", strike_window_s, 60),
        ("timeout", timeout_s, 60),
        ("timeouts before a ban", block_after_timeouts, 0),
    )
    for label, number, low in limits:
        if number is not None and number < low:
            raise ValueError(f"{label} {number}: at least {low}")
    row = await _settings_row(session, guild_id)
    for name, value in (
        ("flagged_output", flagged_output),
        ("flagged_output_nsfw", flagged_output_nsfw),
        ("nsfw_chat", nsfw_chat),
        ("mod_channel_id", mod_channel_id),
        ("strike_limit", strike_limit),
        ("strike_window_s", strike_window_s),
        ("timeout_s", timeout_s),
        ("block_after_timeouts", block_after_timeouts),
    ):
        if value is not None:
            setattr(row, name, value)
    row.updated_at = utcnow()


async def set_mod_channel(session: AsyncSession, guild_id: int, channel_id: str | None) -> None:
    """Where the review queue, appeals and the audit feed go (``None``: nowhere; ``/mod review`` still lists)."""
    row = await _settings_row(session, guild_id)
    row.mod_channel_id = channel_id
    row.updated_at = utcnow()


async def add_word(
    session: AsyncSession, guild_id: int, category: str, word: str, *, by_user_id: int | None = None
) -> bool:
    """Block ``word`` in this server under ``category`` (a removal of the same word is undone). False: already so."""
    undone = await session.execute(
        delete(ModerationWord).where(
            ModerationWord.guild_id == guild_id, ModerationWord.action == REMOVED, ModerationWord.word == word
        )
    )
    exists = await session.scalar(
        select(ModerationWord.id).where(
            ModerationWord.guild_id == guild_id,
            ModerationWord.action == ADDED,
            ModerationWord.category == category,
            ModerationWord.word == word,
        )
    )
    if exists is None:
        session.add(
            ModerationWord(guild_id=guild_id, action=ADDED, category=category, word=word, created_by=by_user_id)
        )
        await session.flush()
    return exists is None or bool(getattr(undone, "rowcount", 0))


async def remove_word(session: AsyncSession, guild_id: int, word: str, *, by_user_id: int | None = None) -> str:
    """Unblock ``word`` here: "unadded" (it was this server's own), "removed" (from the policy's lists), or
    "unchanged" (already removed)."""
    result = await session.execute(
        delete(ModerationWord).where(
            ModerationWord.guild_id == guild_id, ModerationWord.action == ADDED, ModerationWord.word == word
        )
    )
    if getattr(result, "rowcount", 0):
        return "unadded"
    exists = await session.scalar(
        select(ModerationWord.id).where(
            ModerationWord.guild_id == guild_id, ModerationWord.action == REMOVED, ModerationWord.word == word
        )
    )
    if exists is not None:
        return "unchanged"
    session.add(
        ModerationWord(guild_id=guild_id, action=REMOVED, category=ANY_CATEGORY, word=word, created_by=by_user_id)
    )
    await session.flush()
    return "removed"


# --- the audit log -------------------------------------------------------------------------------------------------


async def record(
    session: AsyncSession,
    kind: str,
    *,
    user_id: int | None = None,
    guild_id: int | None = None,
    channel_id: str | None = None,
    job_id: str | None = None,
    moderator_id: int | None = None,
    category: str | None = None,
    rule: str | None = None,
    matched: Sequence[str] = (),
    prompt: str | None = None,
    note: str = "",
    ref_id: int | None = None,
    now: datetime | None = None,
) -> ModerationEvent:
    event = ModerationEvent(
        ref_id=ref_id,
        kind=kind,
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        job_id=job_id,
        moderator_id=moderator_id,
        category=category,
        rule=rule,
        matched=", ".join(matched) or None,
        prompt=prompt,
        note=note,
        created_at=now or utcnow(),
    )
    session.add(event)
    await session.flush()
    return event


#: A refusal's note: the request as it can be made again (JSON), what an approved appeal reruns.
REQUEST_NOTE = "request "


@dataclass(frozen=True)
class LogRow:
    id: int
    created_at: datetime
    kind: str
    user: str | None  # "discord:123"
    guild: str | None
    channel_id: str | None
    job_id: str | None
    moderator: str | None
    category: str | None
    rule: str | None
    matched: str | None
    prompt: str | None
    note: str
    ref_id: int | None


async def audit_log(
    session: AsyncSession,
    *,
    guild_id: int | None = None,
    user_id: int | None = None,
    limit: int = 50,
    ids: Sequence[int] | None = None,
    after_id: int | None = None,
) -> list[LogRow]:
    """The newest rows first, for one server and/or one user (both ``None``: everything, the operator's view).

    ``ids``: just these rows; ``after_id``: rows newer than that one, oldest first (the audit feed's order)."""
    subject = User.__table__.alias("subject")
    moderator = User.__table__.alias("moderator")
    query = (
        select(
            ModerationEvent,
            subject.c.platform,
            subject.c.platform_user_id,
            Guild.platform,
            Guild.platform_guild_id,
            moderator.c.platform,
            moderator.c.platform_user_id,
        )
        .outerjoin(subject, subject.c.id == ModerationEvent.user_id)
        .outerjoin(Guild, Guild.id == ModerationEvent.guild_id)
        .outerjoin(moderator, moderator.c.id == ModerationEvent.moderator_id)
        .order_by(
            *(
                (ModerationEvent.id.asc(),)
                if after_id is not None
                else (ModerationEvent.created_at.desc(), ModerationEvent.id.desc())
            )
        )
        .limit(limit)
    )
    if ids is not None:
        query = query.where(ModerationEvent.id.in_(ids))
    if after_id is not None:
        query = query.where(ModerationEvent.id > after_id)
    if guild_id is not None:
        query = query.where(ModerationEvent.guild_id == guild_id)
    if user_id is not None:
        query = query.where(ModerationEvent.user_id == user_id)
    rows: list[LogRow] = []
    for event, up, uid, gp, gid, mp, mid in (await session.execute(query)).all():
        rows.append(
            LogRow(
                id=event.id,
                created_at=_aware(event.created_at),
                kind=event.kind,
                user=f"{up}:{uid}" if up else None,
                guild=f"{gp}:{gid}" if gp else None,
                channel_id=event.channel_id,
                job_id=event.job_id,
                moderator=f"{mp}:{mid}" if mp else None,
                category=event.category,
                rule=event.rule,
                matched=event.matched,
                prompt=event.prompt,
                note=event.note,
                ref_id=event.ref_id,
            )
        )
    return rows


async def purge_evidence(session: AsyncSession, *, retention_days: int, now: datetime | None = None) -> PurgeResult:
    """Empty the prompts and matches of rows older than the retention; the rows themselves stay."""
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    old = ModerationEvent.created_at < cutoff
    pending = ModerationEvent.evidence_purged_at.is_(None)
    job_ids = (
        await session.scalars(
            select(ModerationEvent.job_id).where(old, pending, ModerationEvent.job_id.is_not(None)).distinct()
        )
    ).all()
    await session.execute(
        update(ModerationEvent)
        .where(old, pending, ModerationEvent.note.startswith(REQUEST_NOTE, autoescape=True))
        .values(note="")
    )
    result = await session.execute(
        update(ModerationEvent).where(old, pending).values(prompt=None, matched=None, evidence_purged_at=now)
    )
    return PurgeResult(rows=int(getattr(result, "rowcount", 0) or 0), job_ids=tuple(j for j in job_ids if j))


async def evidence_image_keys(session: AsyncSession, job_ids: Sequence[str]) -> list[str]:
    """The stored images of these refused or flagged jobs that may be deleted with their evidence.

    A result a moderator approved was cleared and delivered: it stays. The store is content-addressed, so a key that
    another job still shows (its own result, or an input such as the same attachment) stays too.
    """
    if not job_ids:
        return []
    cleared = set(
        (
            await session.scalars(
                select(ModerationEvent.job_id).where(
                    ModerationEvent.job_id.in_(job_ids), ModerationEvent.kind == APPROVED
                )
            )
        ).all()
    )
    jobs = [j for j in job_ids if j not in cleared]
    if not jobs:
        return []
    keys: set[str] = set((await session.scalars(select(Image.store_key).where(Image.job_id.in_(jobs)))).all())
    for inputs in (await session.scalars(select(Job.input_image_keys).where(Job.id.in_(jobs)))).all():
        keys.update(str(k) for k in inputs or ())
    if not keys:
        return []
    shown = set(
        (
            await session.scalars(
                select(Image.store_key).where(Image.store_key.in_(keys), Image.job_id.not_in(jobs)).distinct()
            )
        ).all()
    )
    kept = set(shown)
    for key in keys - shown:
        # Input keys live in a JSON list; a text match is the portable way to ask "does any other job read it".
        other = await session.scalar(
            select(Job.id).where(Job.id.not_in(jobs), cast(Job.input_image_keys, String).contains(key)).limit(1)
        )
        if other is not None:
            kept.add(key)
    return sorted(keys - kept)


# --- appeals and the review queue ----------------------------------------------------------------------------------


async def appeal(
    session: AsyncSession, refusal_id: int, user_id: int, *, now: datetime | None = None
) -> ModerationEvent | None:
    """The user's appeal of their refusal, recorded once: ``None`` when the row is not their refusal or was
    appealed already (a second press of the Appeal button)."""
    refusal = await session.get(ModerationEvent, refusal_id, with_for_update=True)
    if refusal is None or refusal.kind != REFUSED or refusal.user_id != user_id:
        return None
    earlier = await session.scalar(
        select(ModerationEvent.id).where(ModerationEvent.ref_id == refusal_id, ModerationEvent.kind == APPEAL)
    )
    if earlier is not None:
        return None
    return await record(
        session,
        APPEAL,
        user_id=user_id,
        guild_id=refusal.guild_id,
        channel_id=refusal.channel_id,
        category=refusal.category,
        rule=refusal.rule,
        prompt=refusal.prompt,
        ref_id=refusal_id,
        now=now,
    )


async def undecided(session: AsyncSession, guild_id: int, *, limit: int = 25) -> list[int]:
    """The server's held results and appeals that no moderator has answered yet, oldest first."""
    answers = select(ModerationEvent.ref_id).where(
        ModerationEvent.ref_id.is_not(None), ModerationEvent.kind.in_((APPROVED, REJECTED))
    )
    return list(
        (
            await session.scalars(
                select(ModerationEvent.id)
                .where(
                    ModerationEvent.guild_id == guild_id,
                    ModerationEvent.kind.in_((HELD, APPEAL)),
                    ModerationEvent.id.not_in(answers),
                )
                .order_by(ModerationEvent.id)
                .limit(limit)
            )
        ).all()
    )


async def decision_of(session: AsyncSession, ref_id: int) -> ModerationEvent | None:
    """The moderator's answer to a held result or an appeal, once given."""
    return await session.scalar(
        select(ModerationEvent).where(ModerationEvent.ref_id == ref_id, ModerationEvent.kind.in_((APPROVED, REJECTED)))
    )


async def last_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(ModerationEvent.id))) or 0)


async def guilds_reporting_to(session: AsyncSession, platform: str, channel_id: str) -> list[tuple[int, str]]:
    """The servers of ``platform`` whose moderators' channel is ``channel_id``: (guild id, platform guild id)."""
    rows = await session.execute(
        select(Guild.id, Guild.platform_guild_id)
        .join(ModerationSettings, ModerationSettings.guild_id == Guild.id)
        .where(Guild.platform == platform, ModerationSettings.mod_channel_id == channel_id)
        .order_by(Guild.id)
    )
    return [(int(g), str(p)) for g, p in rows.all()]


async def hold(
    session: AsyncSession,
    *,
    job_id: str,
    user_id: int,
    guild_id: int | None,
    channel_id: str | None,
    nsfw_score: float,
    now: datetime | None = None,
) -> ModerationEvent:
    """A flagged result put in the review queue (the moderators' Approve / Reject answer it through ``decide``)."""
    return await record(
        session,
        HELD,
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        job_id=job_id,
        note=f"image score {nsfw_score:.2f}",
        now=now,
    )


async def awaiting_review(session: AsyncSession, job_id: str) -> bool:
    """The job's result was held for review and no moderator has approved or rejected it yet."""
    return await review_of(session, job_id) == "awaiting"


Review = Literal["none", "awaiting", "approved", "rejected"]


async def review_of(session: AsyncSession, job_id: str) -> Review:
    """Where the job's result stands with the moderators: never held, held and undecided, approved or rejected."""
    held = await session.scalar(
        select(ModerationEvent.id).where(ModerationEvent.job_id == job_id, ModerationEvent.kind == HELD)
    )
    if held is None:
        return "none"
    decided = await session.scalar(
        select(ModerationEvent.kind).where(
            ModerationEvent.ref_id == held, ModerationEvent.kind.in_((APPROVED, REJECTED))
        )
    )
    if decided is None:
        return "awaiting"
    return "approved" if decided == APPROVED else "rejected"


async def decide(
    session: AsyncSession,
    ref_id: int,
    *,
    moderator_id: int,
    approve: bool,
    note: str = "",
    now: datetime | None = None,
) -> ModerationEvent | None:
    """A moderator's decision on an appeal or a held result, taken once: ``None`` when it is neither or was decided
    already (two moderators pressing at once: the second gets ``None``)."""
    target = await session.get(ModerationEvent, ref_id, with_for_update=True)
    if target is None or target.kind not in (APPEAL, HELD):
        return None
    earlier = await session.scalar(
        select(ModerationEvent.id).where(
            ModerationEvent.ref_id == ref_id, ModerationEvent.kind.in_((APPROVED, REJECTED))
        )
    )
    if earlier is not None:
        return None
    return await record(
        session,
        APPROVED if approve else REJECTED,
        user_id=target.user_id,
        guild_id=target.guild_id,
        channel_id=target.channel_id,
        job_id=target.job_id,
        moderator_id=moderator_id,
        category=target.category,
        prompt=target.prompt,
        note=note,
        ref_id=ref_id,
        now=now,
    )


# --- bans, timeouts and the ladder ---------------------------------------------------------------------------------


async def ban(
    session: AsyncSession,
    user_id: int,
    guild_id: int | None,
    *,
    until: datetime | None = None,
    reason: str = "",
    kind: str = BAN,
    by_user_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Ban (or time out) a user in one server, or everywhere (``guild_id`` None), and audit it."""
    now = now or utcnow()
    session.add(
        ModerationBan(
            user_id=user_id,
            guild_id=guild_id,
            kind=kind,
            reason=reason,
            until=until,
            created_by=by_user_id,
            created_at=now,
        )
    )
    note = reason if until is None else f"{reason} (until {until.isoformat(timespec='minutes')})".strip()
    await record(session, kind, user_id=user_id, guild_id=guild_id, moderator_id=by_user_id, note=note, now=now)


async def unban(
    session: AsyncSession,
    user_id: int,
    guild_id: int | None,
    *,
    by_user_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Lift the user's bans and running timeouts in that server (or the everywhere ones); how many were lifted."""
    now = now or utcnow()
    where = ModerationBan.guild_id.is_(None) if guild_id is None else ModerationBan.guild_id == guild_id
    result = await session.execute(
        update(ModerationBan)
        .where(
            ModerationBan.user_id == user_id,
            where,
            ModerationBan.lifted_at.is_(None),
            or_(ModerationBan.until.is_(None), ModerationBan.until > now),
        )
        .values(lifted_at=now)
    )
    lifted = int(getattr(result, "rowcount", 0) or 0)
    if lifted:
        await record(session, UNBAN, user_id=user_id, guild_id=guild_id, moderator_id=by_user_id, now=now)
    return lifted


async def active_ban(
    session: AsyncSession, user_id: int, guild_id: int | None, *, now: datetime | None = None
) -> Ban | None:
    """The ban or timeout that keeps this user out of this server now (an everywhere ban counts), if any."""
    now = now or utcnow()
    place: ColumnElement[bool] = ModerationBan.guild_id.is_(None)
    if guild_id is not None:
        place = or_(place, ModerationBan.guild_id == guild_id)
    rows = (
        await session.scalars(
            select(ModerationBan).where(
                ModerationBan.user_id == user_id,
                place,
                ModerationBan.lifted_at.is_(None),
                or_(ModerationBan.until.is_(None), ModerationBan.until > now),
            )
        )
    ).all()
    if not rows:
        return None
    # A ban without end outranks any timeout; among timeouts, the one that ends last.
    best = max(rows, key=lambda r: (r.until is None, _aware(r.until) if r.until else now))
    return Ban(
        kind=best.kind,
        until=_aware(best.until) if best.until else None,
        reason=best.reason,
        everywhere=best.guild_id is None,
    )


async def record_refusal(
    session: AsyncSession,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: str | None,
    category: str | None,
    rule: str | None,
    matched: Sequence[str],
    prompt: str,
    now: datetime | None = None,
    request: str | None = None,
) -> Strike:
    """Audit a refused prompt and climb the ladder: warn → timeout → ban.

    ``request``: the request as it can be made again (JSON, the bots' ``replay.py``), kept in the row's note
    (``REQUEST_NOTE``) for an approved appeal to rerun; it is evidence, purged with the prompt.

    Refusals count within the server's window and since the user's last timeout, so a timeout starts a fresh count.
    """
    now = now or utcnow()
    settings = await server_moderation(session, guild_id)
    refusal = await record(
        session,
        REFUSED,
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        category=category,
        rule=rule,
        matched=matched,
        prompt=prompt,
        note=REQUEST_NOTE + request if request is not None else "",
        now=now,
    )
    place = ModerationEvent.guild_id.is_(None) if guild_id is None else ModerationEvent.guild_id == guild_id
    last_timeout = await session.scalar(
        select(func.max(ModerationEvent.created_at)).where(
            ModerationEvent.user_id == user_id, place, ModerationEvent.kind == TIMEOUT
        )
    )
    since = now - timedelta(seconds=settings.strike_window_s)
    if last_timeout is not None:
        since = max(since, _aware(last_timeout))
    refusals = int(
        await session.scalar(
            select(func.count())
            .select_from(ModerationEvent)
            .where(
                ModerationEvent.user_id == user_id,
                place,
                ModerationEvent.kind == REFUSED,
                ModerationEvent.created_at > since,
            )
        )
        or 0
    )
    if refusals < settings.strike_limit:
        return Strike(refusals=refusals, limit=settings.strike_limit, refusal_id=refusal.id)
    until = now + timedelta(seconds=settings.timeout_s)
    await ban(session, user_id, guild_id, until=until, kind=TIMEOUT, reason=f"{refusals} refused prompts", now=now)
    if settings.block_after_timeouts:
        timeouts = int(
            await session.scalar(
                select(func.count())
                .select_from(ModerationEvent)
                .where(
                    ModerationEvent.user_id == user_id,
                    place,
                    ModerationEvent.kind == TIMEOUT,
                    ModerationEvent.created_at > now - BLOCK_WINDOW,
                )
            )
            or 0
        )
        if timeouts >= settings.block_after_timeouts:
            await ban(session, user_id, guild_id, reason=f"{timeouts} timeouts in 30 days", now=now)
            return Strike(
                refusals=refusals, limit=settings.strike_limit, timeout_until=until, banned=True, refusal_id=refusal.id
            )
    return Strike(refusals=refusals, limit=settings.strike_limit, timeout_until=until, refusal_id=refusal.id)
