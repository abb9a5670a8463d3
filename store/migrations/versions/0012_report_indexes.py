"""report indexes: the reports' date ranges (receipt, stage closures) read a range, not the whole table

Revision ID: 0012
Revises: 0004
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"  # written against 0004; relinked after main gained 0006-0011
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = ("received_at", "stage1_closed_at", "stage2_closed_at")


def upgrade() -> None:
    for column in _INDEXES:
        op.create_index(f"ix_cases_{column}", "cases", [column])


def downgrade() -> None:
    for column in _INDEXES:
        op.drop_index(f"ix_cases_{column}", table_name="cases")
