"""board copies: the case's board columns on its agency tasks, and open cases in board order

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 15:50:00

The agency board filters on ``agency_tasks`` and orders on ``cases``: no index spans both, so every page read
all the agency's open tasks and sorted their cases (110-440 ms at 1M cases). Each task row gets a copy of its
case's board columns (written by the projection with the case row, store/board.py), filled here for existing
rows, and ``ix_agency_tasks_board`` orders each agency's open tasks as the board does. ``ix_cases_open_...``
holds the open cases only in board order, so that every page of the overdue and at-risk boards is one range.
The indexes on one filter column gain the status and stage after the board order, so that a second filter on
either is tested in the index (the walks and the bounded count read only the rows of the page).

The partial indexes' predicates are literal: the open states and open task statuses of the process table as
of this revision (tests/store/test_board_copies.py fails when the process table's differ, calling for a new
revision).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_CASE_STATUSES = (
    "assignment",
    "awaiting_info",
    "received",
    "responded",
    "screening",
    "stage1",
    "stage2",
    "stage2_investigation",
)
OPEN_TASK_STATUSES = ("accepted", "assigned")
# (task column, case column, type), in ix_agency_tasks_board's order after the agency.
COPIES: list[tuple[str, str, sa.types.TypeEngine[Any]]] = [
    ("case_priority", "priority", sa.String(16)),
    ("case_due_at", "due_at", sa.DateTime(timezone=True)),
    ("case_id", "case_id", sa.String(32)),
    ("case_status", "status", sa.String(32)),
    ("case_stage", "stage", sa.Integer()),
    ("case_province", "province", sa.String(100)),
    ("case_kind", "kind", sa.String(16)),
    ("case_centre", "centre", sa.String(32)),
    ("case_region", "region", sa.String(16)),
    ("case_category", "category", sa.String(100)),
]
NEW = [(task, case, type_) for task, case, type_ in COPIES if task != "case_id"]


def _in(column: str, values: Sequence[str]) -> sa.TextClause:
    return sa.text(f"{column} IN ({', '.join(repr(v) for v in values)})")


# The board's indexes on one filter column gain the status and stage after the order (see store/models.py).
WIDENED: list[tuple[str, list[str], list[str]]] = [
    ("ix_cases_province_due_at", ["province", "priority", "due_at", "case_id"], ["status", "stage"]),
    ("ix_cases_stage_due_at", ["stage", "priority", "due_at", "case_id"], ["status"]),
    ("ix_cases_category_due_at", ["category", "priority", "due_at", "case_id"], ["status", "stage"]),
    ("ix_cases_region_due_at", ["region", "priority", "due_at", "case_id"], ["status", "stage"]),
    ("ix_cases_centre_due_at", ["centre", "priority", "due_at", "case_id"], ["status", "stage"]),
    ("ix_cases_kind_due_at", ["kind", "priority", "due_at", "case_id"], ["status", "stage"]),
]


def upgrade() -> None:
    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        for task, _case, type_ in NEW:
            batch_op.add_column(sa.Column(task, type_, nullable=True))
    # One statement for every row: each copy read from the task's case (the names are this file's constants).
    assignments = ", ".join(
        f"{task} = (SELECT cases.{case} FROM cases WHERE cases.case_id = agency_tasks.case_id)"  # noqa: S608
        for task, case, _ in NEW
    )
    op.execute(f"UPDATE agency_tasks SET {assignments}")  # noqa: S608
    predicate = _in("status", OPEN_TASK_STATUSES)
    op.create_index(
        "ix_agency_tasks_board",
        "agency_tasks",
        ["agency", *(task for task, _, _ in COPIES), "status"],
        sqlite_where=predicate,
        postgresql_where=predicate,
    )
    open_cases = _in("status", OPEN_CASE_STATUSES)
    op.create_index(
        "ix_cases_open_priority_due_at",
        "cases",
        ["priority", "due_at", "case_id", "stage"],
        sqlite_where=open_cases,
        postgresql_where=open_cases,
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name, columns, added in WIDENED:
            batch_op.drop_index(name)
            batch_op.create_index(name, [*columns, *added], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name, columns, _added in WIDENED:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
    op.drop_index("ix_cases_open_priority_due_at", table_name="cases")
    op.drop_index("ix_agency_tasks_board", table_name="agency_tasks")
    with op.batch_alter_table("agency_tasks", schema=None) as batch_op:
        for task, _case, _type in reversed(NEW):
            batch_op.drop_column(task)
