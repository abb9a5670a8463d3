"""Queue claims: which officer holds a case of the screening queue.

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"  # written against 0004; relinked after main gained 0005-0010
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_claims",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("officer_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_queue_claims_officer_id", "queue_claims", ["officer_id"])


def downgrade() -> None:
    op.drop_index("ix_queue_claims_officer_id", table_name="queue_claims")
    op.drop_table("queue_claims")
