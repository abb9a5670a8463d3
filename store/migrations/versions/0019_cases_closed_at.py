"""an index on the cases' closure time, for the follow-up job's window

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 14:55:00

The "was it fixed?" job (followup/job.py) looks every hour for the cases closed ``followup_after_days`` ago. It
read every settled case there ever was, closed before that day, and checked each for a question already asked:
a read that grew with the years. It now reads the closures of a window before that day
(``followup_window_days``, 14 by default), through this index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_closed_at", "cases", ["closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_closed_at", table_name="cases")
