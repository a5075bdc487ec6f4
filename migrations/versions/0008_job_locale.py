"""The reply language of a job: ``jobs.locale``, the requester's language when it was asked.

Delivery writes a job's progress and result later, from whichever bot process hears its events; the requester's
language (their /settings choice, else their client's, else their server's default) is recorded with the job at
admission so those come in the language the user asked in. NULL (jobs from before): English.
(``users.locale`` and ``guilds.locale``, the choices themselves, came with 0004.)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("locale")
