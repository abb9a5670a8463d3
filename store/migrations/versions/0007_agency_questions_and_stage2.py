"""agency tasks: stage (agency-led stage 2), questions to the complainant

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"  # written against 0004; relinked after main gained 0006 (kinds)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("questions", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("question_asked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        batch_op.drop_column("question_asked_at")
        batch_op.drop_column("questions")
        batch_op.drop_column("stage")
