"""channels: LINE conversations, lookups of a complainant's cases by citizen ID and by LINE user

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"  # written against 0004; relinked after main gained 0006-0008
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "line_conversations",
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("seen_events", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("line_user_id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_complainant_citizen_id", ["complainant_citizen_id"], unique=False)
        batch_op.create_index("ix_cases_complainant_line_user_id", ["complainant_line_user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_complainant_line_user_id")
        batch_op.drop_index("ix_cases_complainant_citizen_id")
    op.drop_table("line_conversations")
