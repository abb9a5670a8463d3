"""board indexes: one ordered range per board filter, and the agency's open tasks

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 12:40:00

Every board filter is an equality on one column followed by ``ORDER BY due_at, case_id``; an index on
``(column, due_at, case_id)`` lets both SQLite and PostgreSQL read a page as a range in order instead of
sorting every matching case (bench/board_bench.py: "stage 1" at 1M rows went from ~1 s to a few ms). The
single-column indexes these replace (``due_at``, ``province``, ``agency_tasks.agency``) are their prefixes;
``ix_cases_status_due_at`` gains ``case_id`` for the same reason.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"  # written against 0004; relinked after main gained 0006-0012
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# (name, columns) of the board's ordered ranges: a filter column, the priority (urgent first), then the order.
BOARD_INDEXES: list[tuple[str, list[str]]] = [
    ("ix_cases_status_due_at", ["status", "due_at", "case_id"]),
    ("ix_cases_status_priority_due_at", ["status", "priority", "due_at", "case_id"]),
    ("ix_cases_priority_due_at", ["priority", "due_at", "case_id"]),
    ("ix_cases_province_due_at", ["province", "priority", "due_at", "case_id"]),
    ("ix_cases_stage_due_at", ["stage", "priority", "due_at", "case_id"]),
    ("ix_cases_category_due_at", ["category", "priority", "due_at", "case_id"]),
    ("ix_cases_region_due_at", ["region", "priority", "due_at", "case_id"]),
    ("ix_cases_centre_due_at", ["centre", "priority", "due_at", "case_id"]),
    ("ix_cases_kind_due_at", ["kind", "priority", "due_at", "case_id"]),
]
# Replaced by the ones above, whose prefixes they are (0001 and 0006).
REPLACED: list[tuple[str, list[str]]] = [
    ("ix_cases_due_at", ["due_at"]),
    ("ix_cases_province", ["province"]),
    ("ix_cases_status_due_at", ["status", "due_at"]),
    ("ix_cases_status_priority_due_at", ["status", "priority", "due_at"]),
    ("ix_cases_category", ["category"]),
    ("ix_cases_region", ["region"]),
    ("ix_cases_centre", ["centre"]),
    ("ix_cases_kind", ["kind"]),
]


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name, _columns in REPLACED:
            batch_op.drop_index(name)
        for name, columns in BOARD_INDEXES:
            batch_op.create_index(name, columns, unique=False)

    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_agency_tasks_agency")
        batch_op.create_index("ix_agency_tasks_agency_status_case_id", ["agency", "status", "case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_agency_tasks_agency_status_case_id")
        batch_op.create_index("ix_agency_tasks_agency", ["agency"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name, _columns in BOARD_INDEXES:
            batch_op.drop_index(name)
        for name, columns in REPLACED:
            batch_op.create_index(name, columns, unique=False)
