"""The figures the map shows: one row per province (volume, open, overdue, overdue share) and the cases'
own positions (the latest ones, for a readable map; a confidential complainant's position about 1 km off)."""

from __future__ import annotations

from datetime import datetime

import geothai
from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.figures import Filters, scoped
from reports.table import Col, Table
from reports.thaimap import MapPoint
from store.models import Case
from workflows.process import OPEN_STATES

__all__ = ["MEASURES", "POINT_LIMIT", "case_points", "province_table"]

POINT_LIMIT = 5000
MEASURES = ("received", "overdue_pct")
_OPEN = sorted(s.value for s in OPEN_STATES)


async def province_table(session: AsyncSession, *, filters: Filters, now: datetime, lang: str) -> Table:
    """Every province (all 77, zeros included, so the map and the table agree), in DOPA code order."""
    is_open = Case.status.in_(_OPEN)
    query = select(
        Case.province,
        func.count().label("received"),
        func.sum(case((is_open, 1), else_=0)).label("open"),
        func.sum(case((and_(is_open, Case.due_at < now), 1), else_=0)).label("overdue"),
    ).select_from(Case)
    query = scoped(query.where(Case.province.is_not(None)), filters).group_by(Case.province)
    found = {r.province: r for r in (await session.execute(query)).all()}
    table = Table(
        code="provinces",
        title="Cases by province" if lang != "th" else "จำนวนเรื่องรายจังหวัด",
        columns=(
            Col("code", "Province code", "รหัสจังหวัด", numeric=False, shown=False),
            Col("label", "Province", "จังหวัด", numeric=False),
            Col("received", "Received", "รับเรื่อง"),
            Col("open", "Open", "ค้างดำเนินการ"),
            Col("overdue", "Overdue", "เกินกำหนด"),
            Col("overdue_pct", "% of open overdue", "ร้อยละเกินกำหนด (ของเรื่องค้าง)"),
        ),
    )
    for province in geothai.provinces():
        r = found.get(province.name_th)
        received, open_, overdue = (int(r.received), int(r.open or 0), int(r.overdue or 0)) if r else (0, 0, 0)
        share = round(100 * overdue / open_, 1) if open_ else None
        name = province.name_th if lang == "th" else province.name_en
        table.rows.append((province.code, name, received, open_, overdue, share))
    return table


async def case_points(
    session: AsyncSession, *, filters: Filters, now: datetime, limit: int = POINT_LIMIT
) -> list[MapPoint]:
    """The latest ``limit`` cases with a map position, coloured by where they stand against their deadline."""
    query = select(Case.latitude, Case.longitude, Case.status, Case.due_at, Case.confidential).select_from(Case)
    query = scoped(query.where(Case.latitude.is_not(None), Case.longitude.is_not(None)), filters)
    query = query.order_by(Case.received_at.desc()).limit(limit)
    points = []
    for r in (await session.execute(query)).all():
        digits = 2 if r.confidential else 4
        if r.status in _OPEN:
            state = "overdue" if r.due_at is not None and r.due_at < now else "open"
        else:
            state = "closed"
        points.append(MapPoint(round(r.latitude, digits), round(r.longitude, digits), state))
    return points
