"""The case list behind the figures, one row per case, for analysts who want the detail in a spreadsheet.

No personal data: no names, identifiers, contact details, addresses, descriptions or tracking codes (a
tracking code opens the public status page). Reading it is recorded in the access log by the API.
Rows stream from the database in batches (a server-side cursor on PostgreSQL), so a million-row export
holds a batch in memory, not the whole list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.dimensions import Lookup
from reports.figures import Filters, scoped
from reports.table import Col
from store.models import Case
from workflows.process import OPEN_STATES

__all__ = ["CASE_COLUMNS", "case_rows", "count_cases"]

_FIELDS = (
    Case.case_id,
    Case.received_at,
    Case.status,
    Case.stage,
    Case.channel,
    Case.category,
    Case.province,
    Case.region,
    Case.agencies,
    Case.outcome,
    Case.due_at,
    Case.stage1_closed_at,
    Case.stage2_started_at,
    Case.stage2_closed_at,
    Case.closed_at,
    Case.rating,
)
CASE_COLUMNS: tuple[Col, ...] = (
    Col("case_id", "Case", "เลขที่เรื่อง", numeric=False),
    Col("received_at", "Received", "วันที่รับเรื่อง", numeric=False),
    Col("status", "Status", "สถานะ", numeric=False),
    Col("stage", "Stage", "ขั้นตอน"),
    Col("channel", "Channel", "ช่องทาง", numeric=False),
    Col("category", "Category", "ประเภทเรื่อง", numeric=False),
    Col("strategy", "PMDU strategy", "ยุทธศาสตร์ชาติ", numeric=False),
    Col("province", "Province", "จังหวัด", numeric=False),
    Col("region", "Region", "ภาค", numeric=False),
    Col("agencies", "Agencies", "หน่วยงาน", numeric=False),
    Col("outcome", "Outcome", "ผลการพิจารณา", numeric=False),
    Col("due_at", "Due", "กำหนดเสร็จ", numeric=False),
    Col("overdue", "Overdue", "เกินกำหนด", numeric=False),
    Col("stage1_closed_at", "Stage 1 closed", "ยุติขั้นที่ 1", numeric=False),
    Col("stage2_started_at", "Stage 2 started", "เริ่มขั้นที่ 2", numeric=False),
    Col("stage2_closed_at", "Stage 2 closed", "ยุติขั้นที่ 2", numeric=False),
    Col("closed_at", "Closed", "วันที่ยุติ", numeric=False),
    Col("rating", "Rating", "คะแนนความพึงพอใจ"),
)
_OPEN = frozenset(s.value for s in OPEN_STATES)


async def count_cases(session: AsyncSession, filters: Filters) -> int:
    """How many rows :func:`case_rows` will give (for the progress bar)."""
    return int(await session.scalar(scoped(select(func.count()).select_from(Case), filters)) or 0)


async def case_rows(
    session: AsyncSession, filters: Filters, lk: Lookup, *, now: datetime, batch: int = 2000
) -> AsyncIterator[tuple[Any, ...]]:
    """The rows of :data:`CASE_COLUMNS`, oldest case first."""
    strategy = lk.strategy_of
    query = scoped(select(*_FIELDS), filters).order_by(Case.received_at, Case.case_id)
    result = await session.stream(query.execution_options(yield_per=batch))
    async for r in result:
        overdue = r.status in _OPEN and r.due_at is not None and r.due_at < now
        yield (
            r.case_id,
            r.received_at,
            r.status,
            r.stage,
            r.channel,
            r.category,
            strategy.get(r.category or "", None),
            r.province,
            r.region,
            list(r.agencies or []),
            r.outcome,
            r.due_at,
            overdue,
            r.stage1_closed_at,
            r.stage2_started_at,
            r.stage2_closed_at,
            r.closed_at,
            r.rating,
        )
