"""The SQL schema: users, guilds, jobs with their lineage, images, platform messages, preferences and the usage ledger.

Typed SQLAlchemy 2.0 models on one convention-named ``MetaData`` (Alembic's ``naming.rst``), so constraint names are
stable across PostgreSQL and SQLite and migrations can drop them by name. The job row is the real state of a job:
the queue only carries its id.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_ID_CHARS = 12  # secrets.token_urlsafe(9): 72 random bits, short enough for Telegram's 64-byte callback data

# Job statuses. "queued" and "running" are active; the other three are final.
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
ACTIVE_STATUSES = (QUEUED, RUNNING)
FINAL_STATUSES = (DONE, FAILED, CANCELLED)


def utcnow() -> datetime:
    return datetime.now(UTC)


_ID_FIRST = string.ascii_letters + string.digits


def new_job_id() -> str:
    """A url-safe id short enough for a button (``u:<id>:2`` fits Telegram's 64 bytes with room to spare). It never
    starts with ``-`` or ``_``: a job id is typed on command lines (``impasto upscale JOB_ID 2``), where a leading
    dash reads as an option."""
    return secrets.choice(_ID_FIRST) + secrets.token_urlsafe(9)[1:]


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class User(Base):
    """A person on one platform: a Discord user and a Telegram user are different people."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Lifetime counters, updated when a job settles (the /info "Lifetime Usage" and "Relaxed Usage" lines).
    lifetime_images: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    relaxed_images: Mapped[int] = mapped_column(Integer, default=0)
    relaxed_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # The plan an operator gave this user (`impasto admin plan set`); None: by server roles, else the default plan.
    plan: Mapped[str | None] = mapped_column(String(32), default=None)
    # The reply language the user chose (impasto.bots.i18n.LOCALES); None: the platform's locale, then the server's.
    locale: Mapped[str | None] = mapped_column(String(16), default=None)


class Guild(Base):
    """A Discord guild or a Telegram group: where members share the operator's rules."""

    __tablename__ = "guilds"
    __table_args__ = (UniqueConstraint("platform", "platform_guild_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_guild_id: Mapped[str] = mapped_column(String(64))
    # Channel ids where commands are allowed; empty means everywhere.
    allowed_channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Platform role id -> plan name; a member gets the best plan among their roles.
    role_plans: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Fast/turbo GPU-seconds each member may spend per UTC day in this guild; None means no cap.
    daily_cap_gpu_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The server's default reply language (/server language); None: each member's platform locale.
    locale: Mapped[str | None] = mapped_column(String(16), default=None)


class Job(Base):
    """One render (or one free pick such as U2): its request, lineage, state, timings and cost."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user_status", "user_id", "status"),
        Index("ix_jobs_user_queued_at", "user_id", "queued_at"),
        Index("ix_jobs_status_released_at", "status", "released_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_job_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    guild_id: Mapped[int | None] = mapped_column(ForeignKey("guilds.id", ondelete="SET NULL"), default=None)
    # Where the request came from and the result goes (Requester.channel_id); None for the console.
    channel_id: Mapped[str | None] = mapped_column(String(96), default=None)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None, index=True)
    # "imagine", "blend", or an Action value ("u", "v", "z2", ...) for a button press.
    action: Mapped[str] = mapped_column(String(16))
    image_index: Mapped[int | None] = mapped_column(Integer, default=None)  # which parent image the action took
    prompt: Mapped[str] = mapped_column(Text, default="")  # what the user typed
    display: Mapped[str] = mapped_column(Text, default="")  # the prompt as read back (Job.display)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Job.to_json() of the command language
    input_image_keys: Mapped[list[str]] = mapped_column(JSON, default=list)  # store keys the worker loads first
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    model: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str] = mapped_column(String(8), default="fast")  # fast | relax | turbo
    visibility: Mapped[str] = mapped_column(String(8), default="public")
    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    # One per request: the interaction or callback id (+ "/n" for the n-th permutation); a repeat makes no new job.
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    request_key: Mapped[str] = mapped_column(String(150), index=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the job entered the GPU queue. A queued job with none is *held*: its user already has as many jobs in
    # flight as their plan's concurrency limit allows, and it is released (queued for real) when one of them ends.
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # measured, as the worker reported it
    charged_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # what the plan was charged
    reserved_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # held while active
    # Charge per measured GPU-second, fixed at enqueue from the plan: fast 1, turbo 2, relax 0, free actions 0.
    cost_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    # The plan's concurrent-job limit when the job was admitted: how many of its user's jobs may be in flight.
    max_concurrent: Mapped[int] = mapped_column(Integer, default=3)
    # The usage periods the reservation sits in, so settling lands there even across a month boundary.
    month_period: Mapped[str] = mapped_column(String(16), default="")
    day_period: Mapped[str | None] = mapped_column(String(96), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128), default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    # The prompt in the words the model read, when the worker translated it (captions and /show: "read as: …"),
    # and the seconds the translation took (not charged).
    read_as: Mapped[str | None] = mapped_column(Text, default=None)
    translate_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # Whether the place it was asked in allowed NSFW (Discord's channel flag) when it was asked: the worker checks a
    # translated prompt against the server's rules for that place, and delivery picks what a flagged result becomes.
    nsfw_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    # A /describe job's four prompts (the worker's captioner), best first; None for every other job.
    described: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # The requester's reply language at asking time (a catalog name, "en" / "zh_Hans"): what delivery writes the
    # progress and result in, whichever bot process posts them. None (older rows): English.
    locale: Mapped[str | None] = mapped_column(String(16), default=None)


class Image(Base):
    """A stored picture of a job: index 0 is a grid, 1–4 its singles (a single-result job has index 1)."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_images_job_id_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    store_key: Mapped[str] = mapped_column(String(128))
    width_px: Mapped[int] = mapped_column(Integer)
    height_px: Mapped[int] = mapped_column(Integer)
    # The worker's image classifier: its score (0–1) and verdict ("passed" / "flagged"); None when none ran.
    nsfw_score: Mapped[float | None] = mapped_column(Float, default=None)
    moderation: Mapped[str | None] = mapped_column(String(8), default=None)  # PASSED_IMAGE | FLAGGED_IMAGE


PASSED_IMAGE = "passed"
FLAGGED_IMAGE = "flagged"


class Message(Base):
    """A platform message that shows a job, so a button on any old message still resolves after a restart."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(96))
    message_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # e.g. "progress", "result", "show"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Preference(Base):
    """A user's /settings and /prefer state: merged into every prompt by the command language."""

    __tablename__ = "preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    suffix: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # /prefer option set NAME VALUE
    # The /settings panel; the job service turns these into parameter text ("--style raw --s 250 --relax") that the
    # command language reads as defaults below the prompt and the suffix.
    remix: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[str] = mapped_column(String(8), default="fast")
    visibility: Mapped[str] = mapped_column(String(8), default="public")
    variation: Mapped[str] = mapped_column(String(8), default="high")  # "high" | "low" variation strength
    raw: Mapped[bool] = mapped_column(Boolean, default=False)  # --style raw
    stylize: Mapped[int | None] = mapped_column(Integer, default=None)  # a preset: 50 / 100 / 250 / 750
    model: Mapped[str | None] = mapped_column(String(64), default=None)  # a registry name such as "v6" or "niji6"


class Usage(Base):
    """Fast/turbo GPU-seconds used and held, per user per period ("2026-11", or "2026-11-22@<guild>" for a daily cap).

    The balance check is one conditional UPDATE on this row (``used + reserved + cost <= limit``), so concurrent
    requests can never spend past the limit on either database.
    """

    __tablename__ = "usage"
    __table_args__ = (UniqueConstraint("user_id", "period", name="uq_usage_user_id_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(96))
    used_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    images: Mapped[int] = mapped_column(Integer, default=0)


class LedgerEntry(Base):
    """The audit trail of every reservation, settlement and release (one of each kind per job at most), and of the
    operator's grants and revocations (``grant`` / ``revoke``: no job, a note)."""

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_ledger_job_id_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), default=None)
    kind: Mapped[str] = mapped_column(String(8))  # reserve | settle | release | grant | revoke
    gpu_seconds: Mapped[float] = mapped_column(Float)
    period: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(200), default=None)  # an operator's reason for a grant


# Moderation (README "Moderation"). Kinds of audit rows: a refused prompt, a flagged image, and moderators' actions.
REFUSED = "refused"
FLAGGED = "flagged"
TIMEOUT = "timeout"
BAN = "ban"
UNBAN = "unban"
WORD_ADDED = "word+"
WORD_REMOVED = "word-"
POLICY_SET = "policy"
CHANNEL_SET = "channel"  # the moderators' channel was set or cleared (note: the channel, or "none")
HELD = "held"  # a flagged result waiting in the review queue
APPEAL = "appeal"  # a user's appeal of a refusal (ref_id: the refusal)
APPROVED = "approved"  # a moderator's yes to an appeal or a held result (ref_id: that row)
REJECTED = "rejected"


class ModerationSettings(Base):
    """A server's moderation choices; a server without a row has the policy's defaults."""

    __tablename__ = "moderation_settings"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    # Category name -> "block" | "nsfw" | "allow"; a category missing here keeps the policy file's default.
    choices: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A flagged output in a channel not marked NSFW: "hold" (review queue), "spoiler" or "remove"; in an NSFW channel:
    # "deliver" (as it is) or one of those.
    flagged_output: Mapped[str] = mapped_column(String(8), default="spoiler")
    flagged_output_nsfw: Mapped[str] = mapped_column(String(8), default="deliver")
    # Telegram has no NSFW flag on chats: the chat's administrators allow NSFW here (Discord reads the channel's flag).
    nsfw_chat: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the review queue, appeals and the audit feed are posted (Telegram: a linked admin chat).
    mod_channel_id: Mapped[str | None] = mapped_column(String(96), default=None)
    # The ladder: `strike_limit` refusals within `strike_window_s` → a timeout of `timeout_s`; `block_after_timeouts`
    # timeouts within 30 days → a ban without end (0: never).
    strike_limit: Mapped[int] = mapped_column(Integer, default=5)
    strike_window_s: Mapped[int] = mapped_column(Integer, default=24 * 3600)
    timeout_s: Mapped[int] = mapped_column(Integer, default=3600)
    block_after_timeouts: Mapped[int] = mapped_column(Integer, default=3)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModerationWord(Base):
    """A server's own word: ``added`` to a category, or ``removed`` from the policy file's lists (category "*")."""

    __tablename__ = "moderation_words"
    __table_args__ = (UniqueConstraint("guild_id", "action", "category", "word", name="uq_moderation_words_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))  # "added" | "removed"
    category: Mapped[str] = mapped_column(String(32))
    word: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModerationEvent(Base):
    """The audit log: who, where, what, which rule, and which moderator. Rows stay; evidence is purged.

    ``prompt`` and ``matched`` are evidence: the retention sweep empties them after
    ``IMPASTO_MODERATION_RETENTION_DAYS`` and sets ``evidence_purged_at`` (the job's images go with them).
    """

    __tablename__ = "moderation_log"
    __table_args__ = (
        Index("ix_moderation_log_guild_created", "guild_id", "created_at"),
        Index("ix_moderation_log_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # REFUSED, FLAGGED, TIMEOUT, BAN, UNBAN, WORD_ADDED, ...
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    guild_id: Mapped[int | None] = mapped_column(ForeignKey("guilds.id", ondelete="SET NULL"), default=None)
    channel_id: Mapped[str | None] = mapped_column(String(96), default=None)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    category: Mapped[str | None] = mapped_column(String(32), default=None)
    rule: Mapped[str | None] = mapped_column(String(16), default=None)
    matched: Mapped[str | None] = mapped_column(Text, default=None)
    prompt: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    # The row this one answers: an appeal → its refusal, a moderator's decision → the appeal or the held result.
    ref_id: Mapped[int | None] = mapped_column(ForeignKey("moderation_log.id", ondelete="SET NULL"), default=None)
    evidence_purged_at: Mapped[datetime | None] = mapped_column(default=None)


class ModerationBan(Base):
    """A ban or a timeout of one user, in one server or (``guild_id`` None, the operator's) everywhere."""

    __tablename__ = "moderation_bans"
    __table_args__ = (Index("ix_moderation_bans_user_guild", "user_id", "guild_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    guild_id: Mapped[int | None] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), default=None)
    kind: Mapped[str] = mapped_column(String(8), default=BAN)  # BAN | TIMEOUT
    reason: Mapped[str] = mapped_column(Text, default="")
    until: Mapped[datetime | None] = mapped_column(default=None)  # None: until lifted
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(default=None)


class AdminAction(Base):
    """What an operator did with ``impasto admin`` (grants, plans, caps, cancels): who, when, to whom, what."""

    __tablename__ = "admin_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    operator: Mapped[str] = mapped_column(String(64))  # the console's OS user, or IMPASTO_OPERATOR
    command: Mapped[str] = mapped_column(String(32))  # "credits grant", "plan set", "cap set", "cancel"
    target: Mapped[str] = mapped_column(String(160), index=True)  # "discord:1234", a guild key or a job id
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
