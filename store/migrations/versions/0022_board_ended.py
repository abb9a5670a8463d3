"""the board's indexes hold whether a case has ended, ahead of its deadline

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 22:00:00

An ended case has no deadline, so in each filter's index (filter, priority, due_at, case_id, ...) the undated
entries of a value held its paused open cases and every case of that value that ever ended. "Open" combined
with a value that has few open cases (a province, a category) counted through all of that value's ended cases:
1.7 ms of a 3.1 ms count for one province at 1M cases, and growing with every year of ended cases kept
(docs/operations.md, capacity model).

``cases.ended`` is computed by the database from the status (a generated column: stored on PostgreSQL, virtual
on SQLite, whose ALTER TABLE cannot add a stored one), and every board index takes it after the priority. The
board's order becomes: the open cases before the ended ones, then urgent first, then by deadline; each part is
one range of an index, and a page of open cases never reads an ended one. ``ix_cases_open_priority_due_at``
(the open cases in board order) is the ``ended = false`` ranges of ``ix_cases_priority_due_at`` now, and goes.

The expression is literal: the open states of the process table as of this revision (tests/store/
test_board_copies.py fails when the process table's differ, calling for a new revision).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
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
ENDED = f"NOT (status IN ({', '.join(repr(s) for s in OPEN_CASE_STATUSES)}))"

# Each board index: its columns before the order, and after it (0013, 0014, 0015).
BOARD_INDEXES: list[tuple[str, list[str], list[str]]] = [
    ("ix_cases_status_priority_due_at", ["status"], []),
    ("ix_cases_priority_due_at", [], []),
    ("ix_cases_province_due_at", ["province"], ["status", "stage"]),
    ("ix_cases_stage_due_at", ["stage"], ["status"]),
    ("ix_cases_category_due_at", ["category"], ["status", "stage"]),
    ("ix_cases_category_group_due_at", ["category_group"], ["status", "stage"]),
    ("ix_cases_region_due_at", ["region"], ["status", "stage"]),
    ("ix_cases_centre_due_at", ["centre"], ["status", "stage"]),
    ("ix_cases_kind_due_at", ["kind"], ["status", "stage"]),
]
ORDER_BEFORE = ["priority", "due_at", "case_id"]
ORDER = ["priority", "ended", "due_at", "case_id"]


def upgrade() -> None:
    stored = "STORED" if op.get_bind().dialect.name == "postgresql" else "VIRTUAL"
    op.execute(f"ALTER TABLE cases ADD COLUMN ended BOOLEAN GENERATED ALWAYS AS ({ENDED}) {stored}")
    op.drop_index("ix_cases_open_priority_due_at", table_name="cases")
    for name, before, after in BOARD_INDEXES:
        op.drop_index(name, table_name="cases")
        op.create_index(name, "cases", [*before, *ORDER, *after], unique=False)


def downgrade() -> None:
    for name, before, after in BOARD_INDEXES:
        op.drop_index(name, table_name="cases")
        op.create_index(name, "cases", [*before, *ORDER_BEFORE, *after], unique=False)
    open_cases = sa.text(f"status IN ({', '.join(repr(s) for s in OPEN_CASE_STATUSES)})")
    op.create_index(
        "ix_cases_open_priority_due_at",
        "cases",
        ["priority", "due_at", "case_id", "stage"],
        sqlite_where=open_cases,
        postgresql_where=open_cases,
    )
    op.execute("ALTER TABLE cases DROP COLUMN ended")
