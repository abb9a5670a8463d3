"""sla and review columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 08:57:43.436978
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("extension_pending", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("extended_by", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_agency_tasks_due_at"), ["due_at"], unique=False)
        batch_op.create_index("ix_agency_tasks_status_due_at_agency", ["status", "due_at", "agency"], unique=False)

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index("ix_case_events_event", ["event"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("due_rule", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stage", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closure_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("root_cause", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("action_taken", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("stage1_closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stage2_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stage2_closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rating_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rejections", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("review_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("late_review_allowed", sa.Boolean(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_cases_due_at"), ["due_at"], unique=False)
        batch_op.create_index("ix_cases_status_due_at", ["status", "due_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_status_due_at")
        batch_op.drop_index(batch_op.f("ix_cases_due_at"))
        batch_op.drop_column("late_review_allowed")
        batch_op.drop_column("review_deadline")
        batch_op.drop_column("rejections")
        batch_op.drop_column("rating_comment")
        batch_op.drop_column("rating")
        batch_op.drop_column("stage2_closed_at")
        batch_op.drop_column("stage2_started_at")
        batch_op.drop_column("stage1_closed_at")
        batch_op.drop_column("action_taken")
        batch_op.drop_column("root_cause")
        batch_op.drop_column("duplicate_of")
        batch_op.drop_column("closure_reason")
        batch_op.drop_column("stage")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("breached_at")
        batch_op.drop_column("due_rule")
        batch_op.drop_column("due_at")

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_case_events_event")

    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_agency_tasks_status_due_at_agency")
        batch_op.drop_index(batch_op.f("ix_agency_tasks_due_at"))
        batch_op.drop_column("extended_by")
        batch_op.drop_column("extension_pending")
        batch_op.drop_column("reason")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("breached_at")
        batch_op.drop_column("due_at")
