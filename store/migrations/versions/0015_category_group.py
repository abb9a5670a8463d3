"""the case's category group, for the board's group filter

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 08:30:00

A group code on the board ("roads") takes in its categories ("roads.potholes"): ``category = 'roads' OR
category LIKE 'roads.%'``, which PostgreSQL could not seek in ``ix_cases_category_due_at`` (it read through the
index testing each entry: 23-29 ms p99 at 1M cases, bench/board_bench.py). ``cases.category_group`` holds the
group (the code before its dot), written with the category by the projection and filled here, and
``ix_cases_category_group_due_at`` orders it as the board does, like the other filter columns' indexes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["category_group", "priority", "due_at", "case_id", "status", "stage"]


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category_group", sa.String(100), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        group = "split_part(category, '.', 1)"
    else:
        group = "substr(category, 1, instr(category || '.', '.') - 1)"
    op.execute(f"UPDATE cases SET category_group = {group} WHERE category IS NOT NULL")  # noqa: S608
    op.create_index("ix_cases_category_group_due_at", "cases", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_category_group_due_at", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("category_group")
