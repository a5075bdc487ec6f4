"""Operations: operator grants in the ledger, a per-user plan override, and the users' and servers' language.

* ``ledger.job_id`` becomes nullable and ``ledger.note`` is added: ``impasto admin credits grant|revoke`` writes a
  ``grant`` / ``revoke`` entry that belongs to no job, with the operator's note.
* ``users.plan``: the plan ``impasto admin plan set`` gives a user; NULL means by server roles or the default.
* ``users.locale`` and ``guilds.locale``: the language a user chose in /settings and a server's default
  (``impasto.bots.i18n``); NULL means negotiate from the platform's locale.
* ``admin_log``: every ``impasto admin`` change, with the operator, the target and what changed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 05:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.alter_column("job_id", existing_type=sa.String(length=16), nullable=True)
        batch.add_column(sa.Column("note", sa.String(length=200), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("plan", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
    with op.batch_alter_table("guilds") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
    op.create_table(
        "admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("command", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=160), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_log")),
    )
    op.create_index(op.f("ix_admin_log_at"), "admin_log", ["at"], unique=False)
    op.create_index(op.f("ix_admin_log_target"), "admin_log", ["target"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_log_target"), table_name="admin_log")
    op.drop_index(op.f("ix_admin_log_at"), table_name="admin_log")
    op.drop_table("admin_log")
    with op.batch_alter_table("guilds") as batch:
        batch.drop_column("locale")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
        batch.drop_column("plan")
    op.execute("DELETE FROM ledger WHERE job_id IS NULL")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("note")
        batch.alter_column("job_id", existing_type=sa.String(length=16), nullable=False)
