"""an index on the staff messages' recipient and date, for the staff inbox

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 07:00:00

The staff inbox (``GET /api/v1/inbox`` and the consoles' messages page) lists the messages for an agency
("BMA", "BMA:head") or for the centre's supervisors, newest first. About fifteen outbox rows are kept for good
for every case, and nothing indexed the recipient: each page read and sorted the whole table, and counted it.
``ix_notifications_recipient`` holds each recipient's rows in date order; the inbox reads each recipient's
newest rows from it and merges them (``delivery.queries.staff_inbox_rows``).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notifications_recipient", "notifications", ["recipient", "created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notifications_recipient", table_name="notifications")
