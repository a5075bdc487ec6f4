"""Moderation: per-server settings and words, the audit log, bans and timeouts, and each image's classifier verdict.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "moderation_settings",
        sa.Column("guild_id", sa.Integer(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("flagged_output", sa.String(length=8), nullable=False),
        sa.Column("flagged_output_nsfw", sa.String(length=8), nullable=False),
        sa.Column("nsfw_chat", sa.Boolean(), nullable=False),
        sa.Column("mod_channel_id", sa.String(length=96), nullable=True),
        sa.Column("strike_limit", sa.Integer(), nullable=False),
        sa.Column("strike_window_s", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("block_after_timeouts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["guild_id"], ["guilds.id"], name=op.f("fk_moderation_settings_guild_id_guilds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("guild_id", name=op.f("pk_moderation_settings")),
    )
    op.create_table(
        "moderation_words",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_moderation_words_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["guild_id"], ["guilds.id"], name=op.f("fk_moderation_words_guild_id_guilds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_words")),
        sa.UniqueConstraint("guild_id", "action", "category", "word", name="uq_moderation_words_entry"),
    )
    op.create_table(
        "moderation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("guild_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.String(length=96), nullable=True),
        sa.Column("job_id", sa.String(length=16), nullable=True),
        sa.Column("moderator_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("rule", sa.String(length=16), nullable=True),
        sa.Column("matched", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=True),
        sa.Column("evidence_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["guild_id"], ["guilds.id"], name=op.f("fk_moderation_log_guild_id_guilds"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_moderation_log_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["moderator_id"], ["users.id"], name=op.f("fk_moderation_log_moderator_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_moderation_log_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ref_id"], ["moderation_log.id"], name=op.f("fk_moderation_log_ref_id_moderation_log"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_log")),
    )
    op.create_index(op.f("ix_moderation_log_created_at"), "moderation_log", ["created_at"], unique=False)
    op.create_index("ix_moderation_log_guild_created", "moderation_log", ["guild_id", "created_at"], unique=False)
    op.create_index("ix_moderation_log_user_created", "moderation_log", ["user_id", "created_at"], unique=False)
    op.create_table(
        "moderation_bans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_moderation_bans_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["guild_id"], ["guilds.id"], name=op.f("fk_moderation_bans_guild_id_guilds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_moderation_bans_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_bans")),
    )
    op.create_index("ix_moderation_bans_user_guild", "moderation_bans", ["user_id", "guild_id"], unique=False)
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("nsfw_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("moderation", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("moderation")
        batch.drop_column("nsfw_score")
    op.drop_index("ix_moderation_bans_user_guild", table_name="moderation_bans")
    op.drop_table("moderation_bans")
    op.drop_index("ix_moderation_log_user_created", table_name="moderation_log")
    op.drop_index("ix_moderation_log_guild_created", table_name="moderation_log")
    op.drop_index(op.f("ix_moderation_log_created_at"), table_name="moderation_log")
    op.drop_table("moderation_log")
    op.drop_table("moderation_words")
    op.drop_table("moderation_settings")
