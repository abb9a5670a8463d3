"""Read-only queries over the read model for the supervisor board and the metrics endpoint.

Everything here reads the projection the workflows maintain (``cases.status``, ``cases.due_at``,
``agency_tasks``, ``case_events``); nothing is cached, so every API replica answers the same.
Personal columns (complainant name, phone, ...) are never selected: the board has no use for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from sla.calendar import WorkingCalendar
from store.models import AgencyTask, Case, CaseEvent
from workflows.process import OPEN_STATES

__all__ = [
    "BREACH_EVENTS",
    "ESCALATION_EVENTS",
    "OPEN_TASK_STATUSES",
    "CaseItem",
    "CasePage",
    "event_totals",
    "list_cases",
    "open_cases_by_state",
    "open_state_codes",
    "overdue_tasks_by_agency",
]

# Task statuses in which the agency still owes work; the others (responded, rejected, cancelled) are done.
OPEN_TASK_STATUSES: tuple[str, ...] = ("assigned", "accepted")
BREACH_EVENTS: tuple[str, ...] = ("sla_breach",)
# System-made escalations and escalations by hand count alike.
ESCALATION_EVENTS: tuple[str, ...] = ("sla_escalation", "escalate")


@dataclass(frozen=True)
class CaseItem:
    """One row of the board: where a case stands against its deadline, without personal data."""

    case_id: str
    tracking_code: str
    status: str
    stage: int | None
    province: str | None
    agencies: list[str]
    due_at: datetime | None
    due_rule: str | None
    escalation_level: int
    received_at: datetime
    confidential: bool
    working_days_late: int  # working days between the deadline and now; 0 unless overdue


@dataclass(frozen=True)
class CasePage:
    """One page of the board and how many cases match in all."""

    items: list[CaseItem]
    total: int
    page: int
    page_size: int


def open_state_codes() -> list[str]:
    """The status values of cases still in progress, sorted so that generated SQL is stable."""
    # Read at call time from the process table, which is kept right as states are added.
    return sorted(str(s) for s in OPEN_STATES)


_BOARD_COLUMNS = (
    Case.case_id,
    Case.tracking_code,
    Case.status,
    Case.stage,
    Case.province,
    Case.agencies,
    Case.due_at,
    Case.due_rule,
    Case.escalation_level,
    Case.received_at,
    Case.confidential,
)


def _board_conditions(
    *,
    now: datetime,
    horizon: datetime | None,
    overdue: bool | None,
    at_risk: bool | None,
    agency: str | None,
    stage: int | None,
    province: str | None,
    status: str | None,
) -> list[ColumnElement[bool]]:
    open_states = open_state_codes()
    conditions: list[ColumnElement[bool]] = []
    # "status IN (open states) AND due_at < now" is spelled out literally (not wrapped in NOT/OR) in the
    # positive filters so that both planners can range-scan ix_cases_status_due_at.
    if overdue is True:
        conditions += [Case.status.in_(open_states), Case.due_at < now]
    elif overdue is False:
        # The complement, written out because NOT(... AND due_at < now) is NULL, not true, when due_at is NULL.
        conditions.append(or_(Case.status.not_in(open_states), Case.due_at.is_(None), Case.due_at >= now))
    if horizon is not None and at_risk is True:
        conditions += [Case.status.in_(open_states), Case.due_at >= now, Case.due_at <= horizon]
    elif horizon is not None and at_risk is False:
        conditions.append(
            or_(Case.status.not_in(open_states), Case.due_at.is_(None), Case.due_at < now, Case.due_at > horizon)
        )
    if agency is not None:
        conditions.append(
            exists().where(
                AgencyTask.case_id == Case.case_id,
                AgencyTask.agency == agency,
                AgencyTask.status.in_(OPEN_TASK_STATUSES),
            )
        )
    if stage is not None:
        conditions.append(Case.stage == stage)
    if province is not None:
        conditions.append(Case.province == province)
    if status is not None:
        conditions.append(Case.status == status)
    return conditions


async def list_cases(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    overdue: bool | None = None,
    at_risk: bool | None = None,
    agency: str | None = None,
    stage: int | None = None,
    province: str | None = None,
    status: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> CasePage:
    """List cases for the supervisor board, most late first, filtered and paginated.

    ``overdue``: open and past ``due_at``. ``at_risk``: open, not overdue, due by the end of the next working
    day. ``False`` selects the complement of either. ``agency``: cases where that agency has a task it has
    not answered yet (assigned or accepted).
    """
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    horizon = calendar.add_working_days(now, 1) if at_risk is not None else None
    conditions = _board_conditions(
        now=now,
        horizon=horizon,
        overdue=overdue,
        at_risk=at_risk,
        agency=agency,
        stage=stage,
        province=province,
        status=status,
    )
    # With due_at known to be set, a plain ASC order lets an index on due_at deliver it; NULLS LAST would
    # stop SQLite from doing so (its indexes keep NULLs first) and changes nothing for these rows.
    due_known = overdue is True or at_risk is True
    order = (Case.due_at.asc() if due_known else Case.due_at.asc().nulls_last(), Case.case_id.asc())
    offset = (page - 1) * page_size
    rows = (
        await session.execute(
            select(*_BOARD_COLUMNS).where(*conditions).order_by(*order).limit(page_size).offset(offset)
        )
    ).all()
    if (rows and len(rows) < page_size) or (page == 1 and not rows):
        # A short page is the last one, so the total is known without a second query.
        total = offset + len(rows)
    else:
        total = int(await session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0)
    open_states = frozenset(open_state_codes())
    items = [_item(row, now=now, calendar=calendar, open_states=open_states) for row in rows]
    return CasePage(items=items, total=total, page=page, page_size=page_size)


def _item(row: Any, *, now: datetime, calendar: WorkingCalendar, open_states: frozenset[str]) -> CaseItem:
    overdue = row.status in open_states and row.due_at is not None and row.due_at < now
    return CaseItem(
        case_id=row.case_id,
        tracking_code=row.tracking_code,
        status=row.status,
        stage=row.stage,
        province=row.province,
        agencies=list(row.agencies or []),
        due_at=row.due_at,
        due_rule=row.due_rule,
        escalation_level=row.escalation_level or 0,
        received_at=row.received_at,
        confidential=bool(row.confidential),
        working_days_late=calendar.working_days_between(row.due_at, now) if overdue else 0,
    )


async def open_cases_by_state(session: AsyncSession) -> dict[str, int]:
    """Count cases in progress per state, with 0 for open states that have none."""
    open_states = open_state_codes()
    rows = await session.execute(
        select(Case.status, func.count()).where(Case.status.in_(open_states)).group_by(Case.status)
    )
    counts = dict.fromkeys(open_states, 0)
    counts.update({status: int(n) for status, n in rows.all()})
    return counts


async def overdue_tasks_by_agency(session: AsyncSession, *, now: datetime) -> dict[str, int]:
    """Count agency tasks still owed (assigned or accepted) whose deadline has passed, per agency."""
    rows = await session.execute(
        select(AgencyTask.agency, func.count())
        .where(AgencyTask.status.in_(OPEN_TASK_STATUSES), AgencyTask.due_at < now)
        .group_by(AgencyTask.agency)
    )
    return {agency: int(n) for agency, n in rows.all()}


async def event_totals(session: AsyncSession) -> dict[str, int]:
    """Count SLA breaches and escalations (system-made and by hand) ever recorded on case timelines."""
    row = (
        await session.execute(
            select(
                _count_where(CaseEvent.event.in_(BREACH_EVENTS)),
                _count_where(CaseEvent.event.in_(ESCALATION_EVENTS)),
            ).where(CaseEvent.event.in_((*BREACH_EVENTS, *ESCALATION_EVENTS)))
        )
    ).one()
    return {"sla_breaches": int(row[0] or 0), "escalations": int(row[1] or 0)}


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
