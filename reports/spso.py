"""The SPSO model procedure's published indicators, per quarter, and the learning-from-complaints tables.

Working days are the project's own (``sla.calendar.WorkingCalendar``: Thai holidays, Cabinet days from
configuration) counted as Thai law counts a period (Civil and Commercial Code s.193/3): the day of receipt
is not counted, unless the case was already waiting when the office opened on a working day. A case closed
on working day 5 took 5 working days (a closure on a day off counts as the next working day's, and the
least is 1), so "within 5 working days" means exactly "before the 5-working-day deadline". Stage 1 runs
from receipt to the stage 1 closure, stage 2 from the request for stage 2 (or the decision to investigate
at once) to its full response.

SQL does the counting: it groups cases by (start day, started before opening, end day), a few thousand
groups at most even for a million cases, and Python turns each group into working days with the calendar.
Closure indicators count in the quarter of the closure, ``received`` in the quarter of receipt.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports.figures import OUTCOMES, Filters, scoped
from reports.periods import EPOCH as _EPOCH
from reports.periods import Grain, bounds_utc, day_of, local_day, local_minutes, period_label, period_of, period_sql
from reports.table import Col, Table
from sla.calendar import WorkingCalendar
from store.models import Case
from workflows.process import OUTCOME_LABELS

__all__ = ["Stage", "WorkingDays", "repeat_complaints", "root_causes", "satisfaction", "spso_quarterly"]


class WorkingDays:
    """Working days elapsed between two Bangkok days, from per-day tables (days since 1970-01-01 as indexes)
    built for whole years as they are needed, so that each of many thousands of groups costs a few lookups."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self._calendar = calendar
        self._first = 0  # the epoch day of index 0
        self._ordinal: list[int] = []  # working days from _first up to and including each day
        self._working = bytearray()

    def cover(self, low: int, high: int) -> None:
        """Make the tables reach from epoch day ``low`` to ``high`` (whole years)."""
        if self._ordinal and self._first <= low and high < self._first + len(self._ordinal):
            return
        if self._ordinal:
            low, high = min(low, self._first), max(high, self._first + len(self._ordinal) - 1)
        first = date(day_of(low).year, 1, 1)
        last = date(day_of(high).year, 12, 31)
        self._first = (first - _EPOCH).days
        self._ordinal, self._working = [], bytearray()
        count, day = 0, first
        while day <= last:
            works = self._calendar.is_working_day(day)
            count += works
            self._ordinal.append(count)
            self._working.append(works)
            day += timedelta(days=1)

    def taken(self, start: int, before_opening: bool, end: int) -> int:
        """:meth:`elapsed` for epoch days already covered by :meth:`cover`."""
        if end < start:
            return 1
        s, e = start - self._first, end - self._first
        begun = self._ordinal[s] - (1 if before_opening and self._working[s] else 0)
        return max(1, self._ordinal[e] - begun + (0 if self._working[e] else 1))

    def elapsed(self, start: date, before_opening: bool, end: date) -> int:
        """The working day (s.193/3) on which a case started on ``start`` closed on ``end``: a closure on a
        day off falls in the next working day, whose end is the next deadline; at least day 1. A start before
        the opening of work on a working day makes that day day 1."""
        s, e = (start - _EPOCH).days, (end - _EPOCH).days
        self.cover(min(s, e), max(s, e))
        return self.taken(s, before_opening, e)


@dataclass
class Stage:
    """One stage's figures in one quarter."""

    closed: int = 0
    within: int = 0
    working_days: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    @property
    def within_pct(self) -> float | None:
        return round(100 * self.within / self.closed, 1) if self.closed else None

    @property
    def average(self) -> float | None:
        return round(self.working_days / self.closed, 1) if self.closed else None


async def _durations(
    session: AsyncSession, *, start: Any, end: Any, extra: ColumnElement[bool] | None, filters: Filters, opening: int
) -> list[tuple[int, bool, int, int]]:
    early = case((local_minutes(start) < opening, 1), else_=0)
    s_day, e_day = local_day(start).label("s"), local_day(end).label("e")
    query = select(s_day, early.label("early"), e_day, func.count().label("n")).select_from(Case)
    query = query.where(start.is_not(None), end.is_not(None))
    if extra is not None:
        query = query.where(extra)
    # The range applies to the closure, not the receipt: a quarter's closures include older cases.
    query = scoped(
        query,
        filters.scope(),
    )
    query = query.where(*_range(end, filters))
    query = query.group_by(s_day, early, e_day)
    return [(int(s), bool(early), int(e), int(n)) for s, early, e, n in (await session.execute(query)).all()]


def _range(column: Any, filters: Filters) -> list[ColumnElement[bool]]:
    start, end = bounds_utc(filters.since, filters.until)
    out: list[ColumnElement[bool]] = []
    if start is not None:
        out.append(column >= start)
    if end is not None:
        out.append(column < end)
    return out


async def _outcomes(
    session: AsyncSession, *, end: Any, extra: ColumnElement[bool] | None, filters: Filters
) -> list[tuple[str, str, int]]:
    period = period_sql(end, Grain.QUARTER).label("period")
    query = select(period, Case.outcome, func.count().label("n")).select_from(Case).where(end.is_not(None))
    if extra is not None:
        query = query.where(extra)
    query = scoped(
        query,
        filters.scope(),
    )
    query = query.where(*_range(end, filters)).group_by(period, Case.outcome)
    return [(r.period, r.outcome, int(r.n)) for r in (await session.execute(query)).all()]


async def spso_quarterly(
    session: AsyncSession,
    *,
    filters: Filters,
    calendar: WorkingCalendar,
    stage1_limit: int,
    stage2_limit: int,
    lang: str,
) -> Table:
    """Received; closed, % within the limit and average working days per stage; outcomes per stage."""
    opening = calendar.office_open.hour * 60 + calendar.office_open.minute
    days = WorkingDays(calendar)
    quarters: dict[str, dict[int, Stage]] = defaultdict(lambda: {1: Stage(), 2: Stage()})
    received: dict[str, int] = defaultdict(int)
    escalated: dict[str, int] = defaultdict(int)

    period = period_sql(Case.received_at, Grain.QUARTER).label("period")
    rows = await session.execute(scoped(select(period, func.count()).select_from(Case), filters).group_by(period))
    for p, n in rows.all():
        received[p] += int(n)
    p2 = period_sql(Case.stage2_started_at, Grain.QUARTER).label("period")
    q2 = select(p2, func.count()).select_from(Case).where(Case.stage2_started_at.is_not(None))
    q2 = scoped(q2, filters.scope())
    for p, n in (await session.execute(q2.where(*_range(Case.stage2_started_at, filters)).group_by(p2))).all():
        escalated[p] += int(n)

    stages = {
        1: (Case.received_at, Case.stage1_closed_at, stage1_limit),
        2: (Case.stage2_started_at, Case.stage2_closed_at, stage2_limit),
    }
    quarter_of: dict[int, str] = {}
    for number, (start, end, limit) in stages.items():
        groups = await _durations(session, start=start, end=end, extra=None, filters=filters, opening=opening)
        if not groups:
            continue
        days.cover(min(min(g[0], g[2]) for g in groups), max(max(g[0], g[2]) for g in groups))
        for s, early, e, n in groups:
            taken = days.taken(s, early, e)
            quarter = quarter_of.get(e)
            if quarter is None:
                quarter = quarter_of[e] = period_of(day_of(e), Grain.QUARTER)
            stage = quarters[quarter][number]
            stage.closed += n
            stage.working_days += taken * n
            stage.within += n if taken <= limit else 0
    # A stage 1 outcome is a case's outcome only if it went no further; stage 2's is its final one.
    for p, outcome, n in await _outcomes(
        session, end=Case.stage1_closed_at, extra=Case.stage2_started_at.is_(None), filters=filters
    ):
        if outcome in OUTCOMES:
            quarters[p][1].outcomes[outcome] += n
    for p, outcome, n in await _outcomes(session, end=Case.stage2_closed_at, extra=None, filters=filters):
        if outcome in OUTCOMES:
            quarters[p][2].outcomes[outcome] += n

    columns = [
        Col("period", "Quarter code", "รหัสไตรมาส", numeric=False, shown=False),
        Col("period_label", "Quarter", "ไตรมาส", numeric=False),
        Col("received", "Received", "รับเรื่อง"),
    ]
    for n, limit in ((1, stage1_limit), (2, stage2_limit)):
        columns += [
            Col(f"s{n}_closed", f"Stage {n} closed", f"ยุติขั้นที่ {n}"),
            Col(f"s{n}_within", f"Stage {n} within {limit} WD", f"ขั้นที่ {n} ภายใน {limit} วันทำการ"),
            Col(f"s{n}_within_pct", f"Stage {n} % within {limit} WD", f"ขั้นที่ {n} ร้อยละภายใน {limit} วันทำการ"),
            Col(f"s{n}_avg_wd", f"Stage {n} average WD", f"ขั้นที่ {n} วันทำการเฉลี่ย"),
        ]
    columns.append(Col("s2_started", "Escalated to stage 2", "เข้าสู่ขั้นที่ 2"))
    for n in (1, 2):
        columns += [
            Col(f"s{n}_{o}", f"Stage {n}: {OUTCOME_LABELS[o][0]}", f"ขั้นที่ {n}: {OUTCOME_LABELS[o][1]}") for o in OUTCOMES
        ]
    title = "SPSO indicators by quarter" if lang != "th" else "ตัวชี้วัดตามแบบ SPSO รายไตรมาส"
    table = Table(code="spso", title=title, columns=tuple(columns))
    for p in sorted(set(received) | set(quarters) | set(escalated)):
        s1, s2 = quarters[p][1], quarters[p][2]
        row: list[Any] = [p, period_label(p, lang), received.get(p, 0)]
        for st in (s1, s2):
            row += [st.closed, st.within, st.within_pct, st.average]
        row.append(escalated.get(p, 0))
        row += [s1.outcomes[o] for o in OUTCOMES] + [s2.outcomes[o] for o in OUTCOMES]
        table.rows.append(tuple(row))
    return table


async def satisfaction(session: AsyncSession, *, filters: Filters, lang: str) -> Table:
    """Ratings (1-5) per quarter of the case's last closure: how many, the average, the share of 4-5, the
    change of the average from the previous quarter (the trend)."""
    closed = func.coalesce(Case.stage2_closed_at, Case.stage1_closed_at, Case.closed_at)
    period = period_sql(closed, Grain.QUARTER).label("period")
    query = select(
        period,
        func.count().label("rated"),
        func.sum(Case.rating).label("total"),
        func.sum(case((Case.rating >= 4, 1), else_=0)).label("satisfied"),
        *(func.sum(case((Case.rating == n, 1), else_=0)).label(f"r{n}") for n in range(1, 6)),
    ).select_from(Case)
    query = query.where(Case.rating.is_not(None), closed.is_not(None))
    query = scoped(
        query,
        filters.scope(),
    )
    query = query.where(*_range(closed, filters)).group_by(period).order_by(period)
    table = Table(
        code="satisfaction",
        title="Satisfaction by quarter" if lang != "th" else "ความพึงพอใจรายไตรมาส",
        columns=(
            Col("period", "Quarter code", "รหัสไตรมาส", numeric=False, shown=False),
            Col("period_label", "Quarter", "ไตรมาส", numeric=False),
            Col("rated", "Ratings", "จำนวนผู้ให้คะแนน"),
            Col("average", "Average (1-5)", "คะแนนเฉลี่ย (1-5)"),
            Col("satisfied_pct", "% satisfied (4-5)", "ร้อยละพึงพอใจ (4-5)"),
            Col("trend", "Change from previous quarter", "เปลี่ยนแปลงจากไตรมาสก่อน"),
            *(Col(f"r{n}", f"{n} stars", f"{n} ดาว") for n in range(1, 6)),
        ),
    )
    previous: float | None = None
    for r in (await session.execute(query)).mappings().all():
        rated = int(r["rated"])
        average = round(int(r["total"]) / rated, 2)
        trend = round(average - previous, 2) if previous is not None else None
        table.rows.append(
            (
                r["period"],
                period_label(r["period"], lang),
                rated,
                average,
                round(100 * int(r["satisfied"]) / rated, 1),
                trend,
                *(int(r[f"r{n}"]) for n in range(1, 6)),
            )
        )
        previous = average
    return table


async def repeat_complaints(session: AsyncSession, *, filters: Filters, lang: str) -> Table:
    """Per quarter: cases marked duplicate, and cases from a complainant (citizen ID, else phone) who had
    complained before. The identifiers never leave the database: only counts come back."""
    person = func.coalesce(Case.complainant_citizen_id, Case.complainant_phone)
    order = func.row_number().over(partition_by=person, order_by=(Case.received_at, Case.case_id))
    # Earlier cases count even when they are outside the range: only the scope filters apply here.
    rows_of = select(
        Case.case_id,
        Case.received_at,
        Case.duplicate_of,
        person.label("person"),
        order.label("nth"),
    ).select_from(Case)
    inner = scoped(rows_of, filters.scope()).subquery()
    period = period_sql(inner.c.received_at, Grain.QUARTER).label("period")
    repeat = and_(inner.c.person.is_not(None), inner.c.nth > 1)
    query = (
        select(
            period,
            func.count().label("received"),
            func.sum(case((inner.c.duplicate_of.is_not(None), 1), else_=0)).label("duplicates"),
            func.sum(case((repeat, 1), else_=0)).label("repeat"),
        )
        .where(*_range(inner.c.received_at, filters))
        .group_by(period)
        .order_by(period)
    )
    table = Table(
        code="repeat",
        title="Repeat complaints by quarter" if lang != "th" else "เรื่องร้องเรียนซ้ำรายไตรมาส",
        columns=(
            Col("period", "Quarter code", "รหัสไตรมาส", numeric=False, shown=False),
            Col("period_label", "Quarter", "ไตรมาส", numeric=False),
            Col("received", "Received", "รับเรื่อง"),
            Col("duplicates", "Marked duplicate", "เรื่องซ้ำ (ระบุโดยเจ้าหน้าที่)"),
            Col("repeat", "From a repeat complainant", "ผู้ร้องเคยร้องเรียนมาก่อน"),
            Col("repeat_pct", "% repeat", "ร้อยละร้องซ้ำ"),
        ),
    )
    for r in (await session.execute(query)).mappings().all():
        received = int(r["received"])
        rep = int(r["repeat"] or 0)
        table.rows.append(
            (
                r["period"],
                period_label(r["period"], lang),
                received,
                int(r["duplicates"] or 0),
                rep,
                round(100 * rep / received, 1) if received else None,
            )
        )
    return table


async def root_causes(session: AsyncSession, *, filters: Filters, lang: str, limit: int = 10) -> Table:
    """The most frequent root causes recorded on closure (SPSO: learning from complaints)."""
    cause = func.trim(Case.root_cause)
    query = (
        select(cause.label("cause"), func.count().label("n"))
        .select_from(Case)
        .where(Case.root_cause.is_not(None), cause != "")
    )
    query = scoped(query, filters).group_by(cause).order_by(func.count().desc(), cause).limit(limit)
    table = Table(
        code="root-causes",
        title="Top root causes" if lang != "th" else "สาเหตุที่พบบ่อย",
        columns=(Col("cause", "Root cause", "สาเหตุ", numeric=False), Col("cases", "Cases", "จำนวนเรื่อง")),
    )
    table.rows = [(r.cause, int(r.n)) for r in (await session.execute(query)).all()]
    return table
