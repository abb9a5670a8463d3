"""a partial index over the intake rows no relay has started yet

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 11:10:00

A relay claims the oldest due intake rows (``ORDER BY id LIMIT n``), and the lag (``/metrics``, the benches)
counts the rows not started. Started rows stay a day (the idempotency window) and both read through them: on
PostgreSQL, 8,000 started rows before 4,000 pending ones, the count scanned the table (6 ms) and a claim could
walk the primary key past every started row (8,000 rows filtered, 4 ms). ``ix_intake_outbox_unstarted`` holds
only the rows not started (``status <> 'started'``), in id order with their ``created_at``: the count reads it
alone (1 ms there), and a claim may read it instead of the primary key; SQLite uses it for both. The queries say
the predicate as a constant, as here, so that PostgreSQL's generic plans can use the index too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSTARTED = "status <> 'started'"  # store.models.UNSTARTED_SQL, as it was when this revision was written


def upgrade() -> None:
    op.create_index(
        "ix_intake_outbox_unstarted",
        "intake_outbox",
        ["id", "created_at"],
        unique=False,
        postgresql_where=sa.text(UNSTARTED),
        sqlite_where=sa.text(UNSTARTED),
    )


def downgrade() -> None:
    op.drop_index("ix_intake_outbox_unstarted", table_name="intake_outbox")
