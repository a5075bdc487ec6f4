"""Held jobs: a job past its user's concurrency limit waits in SQL until one of their jobs ends.

``jobs.released_at`` is when a job entered the GPU queue (NULL while held); ``jobs.max_concurrent`` is the plan's
limit when the job was admitted. Every job that exists already was queued when it was admitted, so it counts as
released then.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("max_concurrent", sa.Integer(), nullable=False, server_default="3"))
    op.execute("UPDATE jobs SET released_at = queued_at")
    op.create_index(op.f("ix_jobs_status_released_at"), "jobs", ["status", "released_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_status_released_at"), table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("max_concurrent")
        batch.drop_column("released_at")
