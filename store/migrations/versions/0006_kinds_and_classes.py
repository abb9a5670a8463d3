"""kinds, priorities, receiving centres, SLA classes and regions on every case

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Cases filed before these existed were complaints of normal priority received by PSC 1111, with no SLA class
    # (their deadlines keep the per-rule allowances); their region comes from their province below.
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), server_default="complaint", nullable=False))
        batch.add_column(sa.Column("priority", sa.String(length=16), server_default="normal", nullable=False))
        batch.add_column(sa.Column("centre", sa.String(length=32), server_default="PSC-1111", nullable=False))
        batch.add_column(sa.Column("sla_class", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("region", sa.String(length=16), nullable=True))
    op.create_index("ix_cases_kind", "cases", ["kind"])
    op.create_index("ix_cases_centre", "cases", ["centre"])
    op.create_index("ix_cases_region", "cases", ["region"])
    op.create_index("ix_cases_category", "cases", ["category"])
    op.create_index("ix_cases_status_priority_due_at", "cases", ["status", "priority", "due_at"])
    _backfill_regions()


def _backfill_regions() -> None:
    """The region of every existing case, from its province (stored as geothai's Thai name)."""
    import geothai

    from config.reference import regions_by_province

    regions = regions_by_province()
    fill = sa.text("UPDATE cases SET region = :region WHERE province = :province AND region IS NULL")
    for province in geothai.provinces():
        if province.code in regions:
            op.execute(fill.bindparams(region=regions[province.code].code, province=province.name_th))


def downgrade() -> None:
    op.drop_index("ix_cases_status_priority_due_at", table_name="cases")
    op.drop_index("ix_cases_category", table_name="cases")
    op.drop_index("ix_cases_region", table_name="cases")
    op.drop_index("ix_cases_centre", table_name="cases")
    op.drop_index("ix_cases_kind", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for column in ("region", "sla_class", "centre", "priority", "kind"):
            batch.drop_column(column)
