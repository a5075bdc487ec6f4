"""Image moderation on the worker: ``jobs.nsfw_channel``, whether the place a job was asked in allowed NSFW.

The worker checks a translated prompt against the server's rules for that place, and delivery decides what a
flagged result becomes there (``images.nsfw_score`` and ``images.moderation`` came with 0003).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("nsfw_channel", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("nsfw_channel")
