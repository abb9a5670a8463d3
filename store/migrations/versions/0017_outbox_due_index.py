"""partial indexes over the outbox rows a dispatcher may still claim

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 14:20:00

A dispatcher claims the oldest due rows of the notification outbox and of the partner webhook outbox (``ORDER BY
id LIMIT n`` over "pending, or sending with its lease run out"). Sent rows stay for good beside them (about 15
a case), and the claim could read through them. On SQLite with statistics (after an ``ANALYZE``), a million sent
notifications before 300 pending ones, every claim scanned the table (125-166 ms, under SQLite's one write lock,
every 2 s even when idle); without statistics it read the status index's two ranges. On PostgreSQL the custom
plans read the status indexes and sorted, but the generic plan of the prepared claim walked the primary key past
every sent row. ``ix_notifications_due`` and ``ix_webhook_deliveries_due`` hold
only the rows still to claim, in id order (``status IN ('pending', 'sending')``): the claim reads the first
ones and stops (0.03 ms on SQLite there). The queries say the predicate as a constant, as here, so that
SQLite and PostgreSQL's generic plans can match it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = "status IN ('pending', 'sending')"  # store.models.DUE_SQL, as it was when this revision was written
TABLES = ("notifications", "webhook_deliveries")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(
            f"ix_{table}_due",
            table,
            ["id"],
            unique=False,
            postgresql_where=sa.text(DUE),
            sqlite_where=sa.text(DUE),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_due", table_name=table)
