"""Translated prompts: ``jobs.read_as`` (the prompt in the words the model read) and ``jobs.translate_seconds``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("read_as", sa.Text(), nullable=True))
        batch.add_column(sa.Column("translate_seconds", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("translate_seconds")
        batch.drop_column("read_as")
