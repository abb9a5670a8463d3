"""Volume, open, overdue and outcomes by period and dimension, aggregated in SQL (one GROUP BY per table).

Cases count in the period they were received (Bangkok time). ``open`` and ``overdue`` are as of ``now``:
of the cases received in that period, how many are still in progress, and how many of those are past the
deadline of the step they are in. Outcomes are each case's latest (after stage 2 if it had one). Breakdowns
by agency count a case once per agency that had a task on it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.dimensions import UNKNOWN, Dimension, Lookup
from reports.periods import Grain, bounds_utc, period_label, period_sql
from reports.table import Col, Table
from store.models import AgencyTask, Case
from workflows.process import OPEN_STATES, OUTCOME_LABELS, Outcome

__all__ = ["OUTCOMES", "Filters", "scoped", "totals", "volume"]

_Q = TypeVar("_Q", bound="Select[*tuple[Any, ...]]")
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
_OPEN = sorted(s.value for s in OPEN_STATES)


@dataclass(frozen=True)
class Filters:
    """What a report is restricted to. ``agency`` is also how agency staff are held to their own figures."""

    since: date | None = None  # Bangkok days, inclusive, on the received date
    until: date | None = None
    agency: str | None = None
    province: str | None = None
    category: str | None = None
    channel: str | None = None

    def scope(self) -> Filters:
        """The same filters over all time (for figures whose range applies to another date than receipt)."""
        return replace(self, since=None, until=None)


def scoped(query: _Q, filters: Filters, *, joined_tasks: bool = False) -> _Q:
    """``query`` over ``cases`` with the filters' WHERE clauses (``received_at`` range first, for its index)."""
    start, end = bounds_utc(filters.since, filters.until)
    if start is not None:
        query = query.where(Case.received_at >= start)
    if end is not None:
        query = query.where(Case.received_at < end)
    for column, value in ((Case.province, filters.province), (Case.channel, filters.channel)):
        if value is not None:
            query = query.where(column == value)
    if filters.category is not None:  # a group code ("roads") takes in its categories ("roads.pothole")
        group = "." not in filters.category
        query = query.where(
            Case.category.startswith(f"{filters.category}.", autoescape=True)
            if group
            else Case.category == filters.category
        )
    if filters.agency is not None:
        if joined_tasks:
            query = query.where(AgencyTask.agency == filters.agency)
        else:
            query = query.where(
                exists().where(and_(AgencyTask.case_id == Case.case_id, AgencyTask.agency == filters.agency))
            )
    return query


def _measures(now: datetime) -> list[ColumnElement[Any]]:
    is_open = Case.status.in_(_OPEN)
    return [
        func.count().label("received"),
        func.sum(case((is_open, 1), else_=0)).label("open"),
        func.sum(case((and_(is_open, Case.due_at < now), 1), else_=0)).label("overdue"),
        func.sum(case((is_open, 0), else_=1)).label("closed"),
        *(func.sum(case((Case.outcome == o, 1), else_=0)).label(f"outcome_{o}") for o in OUTCOMES),
    ]


def _measure_columns() -> tuple[Col, ...]:
    return (
        Col("received", "Received", "รับเรื่อง"),
        Col("open", "Open", "ค้างดำเนินการ"),
        Col("overdue", "Overdue", "เกินกำหนด"),
        Col("closed", "Closed", "ยุติแล้ว"),
        *(Col(f"outcome_{o}", OUTCOME_LABELS[o][0], OUTCOME_LABELS[o][1]) for o in OUTCOMES),
    )


def _base(dimension: Dimension | None, lk: Lookup) -> tuple[Select[Any], ColumnElement[Any] | None]:
    key = func.coalesce(dimension.key(lk), literal(UNKNOWN)).label("key") if dimension is not None else None
    query = select(*([key] if key is not None else []))
    if dimension is not None and dimension.via_tasks:
        query = query.select_from(Case).join(AgencyTask, AgencyTask.case_id == Case.case_id)
    return query, key


async def volume(
    session: AsyncSession,
    *,
    grain: Grain,
    dimension: Dimension | None,
    filters: Filters,
    lk: Lookup,
    now: datetime,
    lang: str,
) -> Table:
    """Received, open, overdue, closed and outcomes per period (and per value of ``dimension``)."""
    period = period_sql(Case.received_at, grain).label("period")
    query, key = _base(dimension, lk)
    query = query.add_columns(period, *_measures(now))
    if key is None:
        query = query.select_from(Case)
    query = scoped(query, filters, joined_tasks=bool(dimension and dimension.via_tasks))
    groups: list[Any] = [period, *([key] if key is not None else [])]
    query = query.group_by(*groups).order_by(*groups)
    rows = (await session.execute(query)).mappings().all()

    columns: list[Col] = [
        Col("period", "Period code", "รหัสช่วงเวลา", numeric=False, shown=False),
        Col("period_label", "Period", "ช่วงเวลา", numeric=False),
    ]
    if dimension is not None:
        columns += [
            Col("key", f"{dimension.name_en} code", f"รหัส{dimension.name_th}", numeric=False, shown=False),
            Col("label", dimension.name_en, dimension.name_th, numeric=False),
        ]
    columns += _measure_columns()
    table = Table(
        code=f"volume-{grain.value}" + (f"-{dimension.code}" if dimension else ""),
        title=_title(grain, dimension, lang),
        columns=tuple(columns),
    )
    for r in rows:
        head: list[Any] = [r["period"], period_label(r["period"], lang)]
        if dimension is not None:
            head += [r["key"], dimension.value_label(lk, r["key"], lang)]
        table.rows.append((*head, *(int(r[c.key] or 0) for c in _measure_columns())))
    return table


async def totals(
    session: AsyncSession, *, dimension: Dimension, filters: Filters, lk: Lookup, now: datetime, lang: str
) -> Table:
    """The same measures over the whole range, one row per value of ``dimension``, largest first."""
    query, key = _base(dimension, lk)
    assert key is not None
    query = query.add_columns(*_measures(now))
    query = scoped(query, filters, joined_tasks=dimension.via_tasks)
    query = query.group_by(key).order_by(func.count().desc(), key)
    rows = (await session.execute(query)).mappings().all()
    table = Table(
        code=f"totals-{dimension.code}",
        title=f"{dimension.name(lang)}",
        columns=(
            Col("key", f"{dimension.name_en} code", f"รหัส{dimension.name_th}", numeric=False, shown=False),
            Col("label", dimension.name_en, dimension.name_th, numeric=False),
            *_measure_columns(),
        ),
    )
    for r in rows:
        table.rows.append(
            (r["key"], dimension.value_label(lk, r["key"], lang), *(int(r[c.key] or 0) for c in _measure_columns()))
        )
    return table


def _title(grain: Grain, dimension: Dimension | None, lang: str) -> str:
    by_period = {
        Grain.MONTH: ("by month", "รายเดือน"),
        Grain.QUARTER: ("by quarter", "รายไตรมาส"),
        Grain.YEAR: ("by year", "รายปี"),
        Grain.FISCAL_YEAR: ("by fiscal year", "รายปีงบประมาณ"),
    }[grain]
    if lang == "th":
        return f"จำนวนเรื่อง{by_period[1]}" + (f" จำแนกตาม{dimension.name_th}" if dimension else "")
    return f"Cases {by_period[0]}" + (f" and {dimension.name_en.lower()}" if dimension else "")
