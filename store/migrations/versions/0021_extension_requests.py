"""an index over the agency tasks with an extension request waiting for a supervisor

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 10:00:00

An agency that needs more time asks for it (``request_extension``), and a supervisor approves or refuses. The
supervisor's board now lists the requests that wait, the task's earliest deadline first. They are a handful
among every task ever assigned: ``ix_agency_tasks_extension_pending`` holds only the tasks with
``extension_pending > 0`` (an ended task keeps its number, so the list tests the status too), in the order the
list reads them. The query says the predicate as this constant, so that SQLite and PostgreSQL's generic plans
can match it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# store.models.EXTENSION_PENDING_SQL, as it was when this revision was written
PENDING = "extension_pending > 0"


def upgrade() -> None:
    op.create_index(
        "ix_agency_tasks_extension_pending",
        "agency_tasks",
        ["due_at", "case_id", "status"],
        unique=False,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_agency_tasks_extension_pending", table_name="agency_tasks")
