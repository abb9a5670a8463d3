"""Read-only queries over the read model for the supervisor board and the metrics endpoint.

Everything here reads the projection the workflows maintain (``cases.status``, ``cases.due_at``,
``agency_tasks``, ``case_events``); no figure is kept in the process, so every API replica answers the same.
Personal columns (complainant name, phone, ...) are never selected: the board has no use for them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sla.calendar import WorkingCalendar
from store.models import EXTENSION_PENDING_SQL, OPEN_CASE_STATUSES, AgencyTask, Case, CaseEvent, QueueClaim
from store.models import OPEN_TASK_STATUSES as _TASK_INDEX_STATUSES
from workflows.process import OPEN_TASK, State

__all__ = [
    "BREACH_EVENTS",
    "ESCALATION_EVENTS",
    "OPEN_TASK_STATUSES",
    "CaseItem",
    "CasePage",
    "count_stuck_cases",
    "event_totals",
    "list_cases",
    "open_cases_by_state",
    "open_state_codes",
    "overdue_tasks_by_agency",
    "stuck_cases",
]

# Task statuses in which the agency still owes work; the others (responded, rejected, cancelled) are done.
OPEN_TASK_STATUSES: tuple[str, ...] = tuple(sorted(s.value for s in OPEN_TASK))
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
    overdue: bool  # open and past due_at
    working_days_late: int  # working days after the deadline's date up to today; 0 unless overdue
    # Open, not overdue, and due by the end of the next working day (what the ``at_risk`` filter selects).
    at_risk: bool = False
    category: str | None = None
    kind: str = "complaint"
    priority: str = "normal"
    centre: str | None = None
    sla_class: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class CasePage:
    """One page of the board and how many cases match in all."""

    items: list[CaseItem]
    total: int
    page: int
    page_size: int
    # False when more than the count cap match: ``total`` is then the cap, a lower bound ("10,000+").
    total_exact: bool = True


# How far the board counts the cases that match before it says "more than this" (see _bounded_count).
COUNT_CAP = 10_000

# The request's values in the board's statements. The statements of each combination of filters are built once
# per process (_Statements) and executed with these values: building them and computing their cache keys cost
# more of the client's CPU than executing them (bench/board_bench.py, client CPU per call).
_NOW = bindparam("board_now", type_=Case.__table__.c.due_at.type)
_HORIZON = bindparam("board_horizon", type_=Case.__table__.c.due_at.type)
_NEED = bindparam("board_need", type_=Integer())  # rows still missing from the page
_UPTO = bindparam("board_upto", type_=Integer())  # rows to skip plus rows missing: how far a walk reads
_SKIP = bindparam("board_skip", type_=Integer())  # rows of the walk before the page
_CAP = bindparam("board_cap", type_=Integer())  # the count's cap plus one
# How far into each remaining segment the walks may read in one statement (``_Statements.rest``).
_REST_UPTO = 1_000
_CATEGORY_GROUP = bindparam("board_category_group", type_=String())  # LIKE pattern of a category group's codes
_FILTER_VALUES = ("agency", "stage", "province", "kind", "priority", "centre", "region", "category")


# The states of the ended cases: those ``cases.ended`` is true for (store/models.py ENDED_SQL).
_ENDED_STATES: tuple[str, ...] = tuple(sorted(str(s) for s in State if str(s) not in OPEN_CASE_STATUSES))


def open_state_codes() -> list[str]:
    """The status values of cases still in progress, sorted so that generated SQL is stable."""
    return list(OPEN_CASE_STATUSES)


def _literal_in(column: Any, values: tuple[str, ...]) -> ColumnElement[bool]:
    """``column IN ('a', 'b')`` with the codes as literals: the predicate of a partial index (migration 0014),
    which a planner uses only when the query repeats it, and cannot see through bound parameters."""
    condition: ColumnElement[bool] = column.in_([literal_column(repr(v)) for v in values])
    return condition


@dataclass(frozen=True)
class _Source:
    """Where the board's walks read: the cases, or one agency's open tasks with their copies of the case's
    board columns (store/board.py), each an ordered range of its own index."""

    case_id: Any
    status: Any
    priority: Any
    due_at: Any
    stage: Any
    province: Any
    kind: Any
    centre: Any
    region: Any
    category: Any
    category_group: Any  # None where the source has no such column: a group is matched by its codes there
    # Whether the case has ended (computed from its status), after the priority in every board index of the cases;
    # None for an agency's unanswered tasks, whose cases are open (a case's tasks end with it).
    ended: Any
    # What a walk returns: the case id and deadline, to look the page's rows up by (so that a walk whose
    # filters its index holds reads the index alone, and the table only for the page).
    returns: tuple[Any, ...]


BOARD_COLUMNS = (
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
    Case.category,
    Case.kind,
    Case.priority,
    Case.centre,
    Case.sla_class,
    Case.region,
)
# Priorities in board order: urgent cases come first, then by deadline.
PRIORITIES: tuple[str, ...] = ("urgent", "normal")

_CASES = _Source(
    Case.case_id,
    Case.status,
    Case.priority,
    Case.due_at,
    Case.stage,
    Case.province,
    Case.kind,
    Case.centre,
    Case.region,
    Case.category,
    Case.category_group,
    Case.ended,
    returns=(Case.case_id, Case.due_at),
)
_TASKS = _Source(
    AgencyTask.case_id,
    AgencyTask.case_status,
    AgencyTask.case_priority,
    AgencyTask.case_due_at,
    AgencyTask.case_stage,
    AgencyTask.case_province,
    AgencyTask.case_kind,
    AgencyTask.case_centre,
    AgencyTask.case_region,
    AgencyTask.case_category,
    None,
    None,
    returns=(AgencyTask.case_id, AgencyTask.case_due_at.label("due_at")),
)


# How each bound of a due_at range compares: due_at < before, due_at >= start, due_at <= until.
_BOUNDS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "before": operator.lt,
    "start": operator.ge,
    "until": operator.le,
}


@dataclass(frozen=True)
class _Filter:
    """The WHERE clause of a board request, split so that the page can be read as ordered index ranges."""

    source: _Source
    # Set when the filters keep only open cases in a due_at range: the states to look in and that range.
    states: tuple[str, ...] | None
    bounds: dict[str, datetime]
    others: list[ColumnElement[bool]]
    # Which values of ``ended`` the filters allow, in board order (the open cases first).
    ended: tuple[bool, ...] = (False, True)
    # overdue=false or at_risk=false: the OR that selects the complement, and the same rows as consecutive
    # slices of the board's order (each slice's rows sort after the previous slice's), which the page reads
    # one after the other, each as an index range, instead of the OR (see _walk).
    complement: ColumnElement[bool] | None = None
    segments: list[_Slice] | None = None

    def due_range(self) -> list[ColumnElement[bool]]:
        return [_BOUNDS[name](self.source.due_at, value) for name, value in self.bounds.items()]

    def in_states(self) -> list[ColumnElement[bool]]:
        if self.states is None:
            return []
        status = self.source.status
        if self.source.ended is not None and self.states in (OPEN_CASE_STATUSES, _ENDED_STATES):
            return []  # every open case, or every ended one: ``ended`` says it, in the walks' index
        if self.states == OPEN_CASE_STATUSES:  # an agency's tasks of open cases: ix_agency_tasks_board's predicate
            return [_literal_in(status, self.states)]
        return [status.in_(self.states)]


@dataclass(frozen=True)
class _Slice:
    """A consecutive part of the board's order within one priority and one value of ``ended``: its conditions
    on the deadline, read as one ordered range of the walk's index. ``ended_only``: the part holds ended cases
    only (the finished cases whose deadline was never cleared, in a complement)."""

    conditions: tuple[ColumnElement[bool], ...]
    ended_only: bool = False


Slice = list[ColumnElement[bool]]


def _board_filter(
    *,
    now: Any,
    horizon: Any | None,
    overdue: bool | None,
    at_risk: bool | None,
    agency: Any | None,
    stage: Any | None,
    province: Any | None,
    status: str | None,
    kind: Any | None = None,
    priority: Any | None = None,
    centre: Any | None = None,
    region: Any | None = None,
    category: Any | None = None,
    category_group: bool = False,
    open_only: bool | None = None,
) -> _Filter:
    """The request's WHERE clause. ``status`` and ``category_group`` shape it; the other values may be bound
    parameters (list_cases passes placeholders, so that one combination of filters is built once)."""
    # With an agency, everything is read from its open tasks' copies of the case's columns (store/board.py):
    # the filter and the order then live in one index, ix_agency_tasks_board, and so does every other filter.
    src = _CASES if agency is None else _TASKS
    open_states = OPEN_CASE_STATUSES
    states: tuple[str, ...] | None = None
    bounds: dict[str, datetime] = {}
    others: list[ColumnElement[bool]] = []
    # The positive filters are spelled "open AND <range on due_at>", never wrapped in NOT or OR, so that both
    # planners range-scan the open cases of each priority (``ended = false``, _plan) in the walks' index.
    if overdue is True:
        states = open_states
        bounds["before"] = now
    finished = _ENDED_STATES
    complements: list[tuple[ColumnElement[bool], list[_Slice]]] = []
    if overdue is False:
        # The complement, written out because NOT(... AND due_at < now) is NULL, not true, when due_at is NULL;
        # as slices: finished cases with a deadline before now (rare: one never cleared), then every case due
        # from now on, then those without a deadline. As one OR, both planners walked every overdue case to
        # skip it (2.7 s at 1M rows).
        complements.append(
            (
                or_(src.status.not_in(open_states), src.due_at.is_(None), src.due_at >= now),
                [
                    _Slice((src.due_at < now,), ended_only=True),
                    _Slice((src.due_at >= now,)),
                    _Slice((src.due_at.is_(None),)),
                ],
            )
        )
    if horizon is not None and at_risk is True:
        states = open_states
        bounds |= {"start": now, "until": horizon}
    elif horizon is not None and at_risk is False:
        complements.append(
            (
                or_(src.status.not_in(open_states), src.due_at.is_(None), src.due_at < now, src.due_at > horizon),
                [
                    _Slice((src.due_at < now,)),
                    _Slice((src.due_at >= now, src.due_at <= horizon), ended_only=True),
                    _Slice((src.due_at > horizon,)),
                    _Slice((src.due_at.is_(None),)),
                ],
            )
        )
    complement: ColumnElement[bool] | None = None
    segments: list[_Slice] | None = None
    if len(complements) == 1:
        complement, segments = complements[0]
    else:  # none, or both at once (rare): plain filters
        others += [c for c, _ in complements]
    if open_only is not None:
        # True: the open cases (as overdue and at risk are); False: the ended ones. Either is one value of
        # ``cases.ended`` (_plan), ahead of the deadline in every board index.
        wanted = open_states if open_only else finished
        states = wanted if states is None else tuple(s for s in states if s in wanted)
    if status is not None:
        if states is None:
            others.append(src.status == status)
        else:
            states = tuple(s for s in states if s == status)
    if agency is not None:
        # The tasks the agency has not answered yet: ix_agency_tasks_board's predicate, word for word.
        others += [AgencyTask.agency == agency, _literal_in(AgencyTask.status, _TASK_INDEX_STATUSES)]
    if stage is not None:
        others.append(src.stage == stage)
    if province is not None:
        others.append(src.province == province)
    for column, value in ((src.kind, kind), (src.priority, priority), (src.centre, centre), (src.region, region)):
        if value is not None:
            others.append(column == value)
    if category is not None:
        # A group code ("roads") takes in its categories ("roads.potholes"); a category code is exact. On the
        # cases, the group is a column of its own, seekable in its index; an agency's tasks (a range of that
        # agency already) match the codes.
        if not category_group:
            others.append(src.category == category)
        elif src.category_group is not None:
            others.append(src.category_group == category)
        else:
            others.append(or_(src.category == category, src.category.like(_CATEGORY_GROUP, escape="/")))
    # Whether the cases shown may be open, ended or both, as the states or the status say.
    if states is not None:
        ended = tuple(sorted({s not in open_states for s in states}))
    elif status is not None:
        ended = (status not in open_states,)
    else:
        ended = (False, True)
    return _Filter(
        source=src,
        states=states,
        bounds=bounds,
        others=others,
        ended=ended,
        complement=complement,
        segments=segments,
    )


def _plan(where: _Filter) -> tuple[list[ColumnElement[bool]], list[Slice], list[Slice]]:
    """The conditions every walk shares, the segments of the board's order, each an ordered range, and the same
    segments in the order the bounded count reads them.

    The board's order is: the open cases before the ended ones, then urgent first, then by deadline (none
    last), then by case id. Each segment is one value of ``ended``, one priority and one slice of the
    deadlines, all equalities or a range on ``due_at`` in an index that holds them in that order (migration
    0022), so its rows come out of the index in board order. An agency's tasks have no ``ended``: their cases
    are open, and a slice of ended cases only (``ended_only``) tests the case's status, held in their index.
    """
    src = where.source
    base = [*where.in_states(), *where.due_range(), *where.others]
    slices: list[_Slice]
    if where.bounds:  # a due_at range: no NULL to place, one walk per priority
        slices = [_Slice(())]
        base += [] if where.complement is None else [where.complement]
    elif where.segments is not None:  # overdue=false or at_risk=false: the complement's slices, not its OR
        slices = where.segments
    else:  # due_at may be NULL: the dated cases, then the undated ones
        slices = [_Slice((src.due_at.is_not(None),)), _Slice((src.due_at.is_(None),))]
    # Each segment, in the board's order, with its place in the count's order (below) as its key.
    keyed: list[tuple[tuple[int, int, int], Slice]] = []
    if src.ended is None:  # an agency's tasks: each priority's slices
        finished = [_literal_in(src.status, _ENDED_STATES)]
        for p, priority in enumerate(PRIORITIES):
            keyed += [
                ((0, i, p), [src.priority == priority, *(finished if s.ended_only else []), *s.conditions])
                for i, s in enumerate(slices)
            ]
    for ended in () if src.ended is None else where.ended:  # the open cases first, then the ended ones
        for p, priority in enumerate(PRIORITIES):
            keyed += [
                ((int(ended), i, p), [src.priority == priority, _is_ended(src, ended), *s.conditions])
                for i, s in enumerate(slices)
                if ended or not s.ended_only
            ]
    walked = [segment for _, segment in keyed]
    if where.bounds or where.segments is not None:
        # The count stops at the cap and needs no order: it reads the same segments, the open cases' before the
        # ended ones', and every priority's dated cases before any undated ones. A complement (overdue=false,
        # at_risk=false) takes in every ended case: those of each priority are one range, whatever the deadline.
        counted = [segment for key, segment in sorted(keyed, key=lambda k: k[0]) if not key[0]]
        if src.ended is not None and True in where.ended:
            counted += [[src.priority == priority, _is_ended(src, True)] for priority in PRIORITIES]
    elif src.ended is None or len(where.ended) > 1:
        # Every deadline, and no value of ``ended`` to seek: the count is one range of the walks' index (the
        # filter's value, an agency's open tasks, a status), or any rows at all with no filter. Planning a
        # branch per segment cost PostgreSQL more than reading them (0.5 ms a page for eight).
        counted = [[]]
    else:  # the open cases (or the ended ones) of each priority: a range of the index, whatever the deadline
        counted = [[src.priority == priority, _is_ended(src, where.ended[0])] for priority in PRIORITIES]
    return base, walked, counted


@dataclass
class _Statements:
    """The statements of one combination of filters (the page's walks, with and without the count, and the
    count), built when first needed and kept for the process (``_STATEMENTS_KEPT`` combinations at most)."""

    where: _Filter
    base: list[ColumnElement[bool]]
    segments: list[Slice]
    counted: list[Slice]  # the segments in the count's order
    built: dict[tuple[Any, ...], Select[Any]] = field(default_factory=dict)

    def count(self) -> Select[Any]:
        return self._get(("count",), lambda: _count_query(self.where.source, self.base, self.counted))

    def walk(self, index: int, *, past: bool, with_count: bool) -> Select[Any]:
        def build() -> Select[Any]:
            src, extra = self.where.source, self.segments[index]
            if with_count:
                return self._with_total(self.walk(index, past=past, with_count=False))
            if not past:
                return _rows_in_order(src, [*self.base, *extra])
            return _rows_past(_first_keys(src, [*self.base, *extra]).subquery("keys"))

        return self._get(("walk", index, past, with_count), build)

    def rest(self, index: int, *, with_count: bool) -> Select[Any]:
        """The segments from ``index`` to the last in one statement: each one's first ``board_upto`` keys in
        order, numbered across them in board order (its segment first), as ``walk`` numbers one segment's."""

        def build() -> Select[Any]:
            if with_count:
                return self._with_total(self.rest(index, with_count=False))
            src = self.where.source
            parts = [
                _first_keys(src, [*self.base, *self.segments[at]], literal(at, Integer()).label("segment")).subquery()
                for at in range(index, len(self.segments))
            ]
            keys = union_all(*(select(p.c.segment, p.c.case_id, p.c.due_at) for p in parts)).subquery("keys")
            return _rows_past(keys, keys.c.segment)

        return self._get(("rest", index, with_count), build)

    def _with_total(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` with the bounded count beside its columns (see ``_walk``)."""
        return statement.add_columns(self.count().scalar_subquery().label(_TOTAL))

    def _get(self, key: tuple[Any, ...], build: Callable[[], Select[Any]]) -> Select[Any]:
        statement = self.built.get(key)
        if statement is None:
            statement = self.built[key] = build()
        return statement


_STATEMENTS: dict[tuple[Any, ...], _Statements] = {}
_STATEMENTS_KEPT = 1024


def _statements(shape: tuple[Any, ...], build: Callable[[], _Filter]) -> _Statements:
    statements = _STATEMENTS.get(shape)
    if statements is None:
        where = build()
        base, segments, counted = _plan(where)
        if len(_STATEMENTS) >= _STATEMENTS_KEPT:
            _STATEMENTS.clear()
        statements = _STATEMENTS[shape] = _Statements(where, base, segments, counted)
    return statements


# The label of the bounded count a page statement carries beside the board's columns.
_TOTAL = "board_total"


def _rows_in_order(src: _Source, conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """One ordered walk from its start: the keys from the walk's index (read alone when it holds every filter),
    then the board's columns of those rows only, by primary key, in one statement."""
    keys = select(*src.returns).where(*conditions).order_by(src.due_at, src.case_id).limit(_NEED).subquery("walk")
    return select(*BOARD_COLUMNS).join(keys, keys.c.case_id == Case.case_id).order_by(keys.c.due_at, keys.c.case_id)


def _is_ended(src: _Source, ended: bool) -> ColumnElement[bool]:
    """``ended = true`` or ``= false`` as a literal, an equality both planners seek in the board's indexes."""
    condition: ColumnElement[bool] = src.ended == (true() if ended else false())
    return condition


def _first_keys(src: _Source, conditions: list[ColumnElement[bool]], *first: Any) -> Select[Any]:
    """The first ``board_upto`` keys (case ids and deadlines, after ``first``) matching ``conditions``, in order:
    one ordered range of the walk's index, cut where the page ends."""
    return select(*first, *src.returns).where(*conditions).order_by(src.due_at, src.case_id).limit(_UPTO)


def _rows_past(keys: Any, *first: Any) -> Select[Any]:
    """The board's columns of the rows after the first ``board_skip`` of ``keys`` (case ids and deadlines, at
    most ``board_upto`` of them) in board order, and how many keys there were when they all lie before the
    page: the keys are numbered (``rn``) and counted (``seen``), and the last one is returned too, so that a
    walk that ends before the page costs one statement, not a walk and then a count of it. Joined outer, so
    that the last key comes back even without a case row (a page's keys without one have ``case_id`` None).
    ``first``: what orders the keys before their deadline (the segment each came from)."""
    numbered = select(
        keys.c.case_id,
        func.row_number().over(order_by=(*first, keys.c.due_at, keys.c.case_id)).label("rn"),
        func.count().over().label("seen"),
    ).subquery("numbered")
    return (
        select(*BOARD_COLUMNS, numbered.c.rn, numbered.c.seen)
        .select_from(numbered.outerjoin(Case, numbered.c.case_id == Case.case_id))
        .where(or_(and_(numbered.c.rn > _SKIP, numbered.c.rn <= _UPTO), numbered.c.rn == numbered.c.seen))
        .order_by(numbered.c.rn)
    )


async def _walk(
    session: AsyncSession,
    statements: _Statements,
    values: dict[str, Any],
    *,
    offset: int,
    limit: int,
) -> tuple[list[Any], int, int | None]:
    """``ORDER BY ended, urgent first, due_at NULLS LAST, case_id`` read as ordered walks, one per segment, in
    order.

    Written as one ORDER BY, SQLite cannot read NULLS LAST (or a CASE on priority) from an index and
    PostgreSQL cannot use (x, priority, due_at, case_id) for the NULL part, so both sorted every matching row
    (~1 s for "stage 1" at 1M rows, bench/board_bench.py). Each segment here (open or ended, a priority, with
    or without a deadline) is a range of an index on (filter column, priority, ended, due_at, case_id) read in
    order (migrations 0013, 0014 and 0022), and a page that the first segments fill never reads the later
    ones. A page that starts past a segment learns that segment's length, at most ``offset`` rows, from the
    same statement (``_rows_past``), to place itself in the next. Returns the rows and how many of the
    ``offset`` rows to skip were not there (a page past the end: the walks then counted every match).

    The bounded count (``_Statements.count``), as a scalar subquery, rides along with the walks until one of
    them returns a row: the page and its total then cost one round trip instead of two. Both backends evaluate
    an uncorrelated scalar subquery once, when the first row needs it, so a statement that finds no row never
    counts. Returned as the third value (None if no statement returned a row).
    """
    rows: list[Any] = []
    skip = offset
    counted: int | None = None
    last = len(statements.segments) - 1
    for index in range(last + 1):
        if len(rows) == limit:
            break
        need = limit - len(rows)
        # The first segment alone (it fills most pages); after it, the rest at once when each of them need
        # be read only a little way: a round trip for each segment of a few would cost more.
        rest = 0 < index < last and skip + need <= _REST_UPTO
        past = bool(skip) or rest
        if rest:
            query = statements.rest(index, with_count=counted is None)
        else:
            query = statements.walk(index, past=past, with_count=counted is None)
        at = {"board_need": need, "board_skip": skip, "board_upto": skip + need}
        got = list((await session.execute(query, values | at)).all())
        if got and counted is None:
            counted = int(getattr(got[0], _TOTAL) or 0)
        if not past:
            rows += got
            continue
        page = [r for r in got if skip < r.rn <= skip + need]
        if page:
            rows += [r for r in page if r.case_id is not None]
            skip = 0
        elif got:  # the walk ends before the page: its last row says how many keys it had
            skip -= int(got[-1].seen)
        if rest:
            break
    return rows, skip, counted


def board_statements(
    *,
    overdue: bool | None = None,
    at_risk: bool | None = None,
    open_only: bool | None = None,
    status: str | None = None,
    **given: Any,
) -> _Statements:
    """The statements that read the board for this combination of filters (``list_cases``'s keywords; of the
    others, only whether each is given and whether a category is a group), built once per combination."""
    group = _is_group(given.get("category"))
    # What shapes the statements: which filters are given, the three booleans, the status and a category group.
    shape = (overdue, at_risk, open_only, status, group, *(given.get(name) is not None for name in _FILTER_VALUES))
    return _statements(
        shape,
        lambda: _board_filter(
            now=_NOW,
            horizon=_HORIZON if at_risk is not None else None,
            overdue=overdue,
            at_risk=at_risk,
            open_only=open_only,
            status=status,
            category_group=group,
            **{name: None if given.get(name) is None else bindparam(f"board_{name}") for name in _FILTER_VALUES},
        ),
    )


async def list_cases(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    overdue: bool | None = None,
    at_risk: bool | None = None,
    open_only: bool | None = None,
    agency: str | None = None,
    stage: int | None = None,
    province: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    priority: str | None = None,
    centre: str | None = None,
    region: str | None = None,
    category: str | None = None,
    page: int = 1,
    page_size: int = 50,
    count_cap: int = COUNT_CAP,
) -> CasePage:
    """List cases for the supervisor board, urgent ones first, then most late first, filtered and paginated.

    ``overdue``: open and past ``due_at``. ``at_risk``: open, not overdue, due by the end of the next working
    day. ``False`` selects the complement of either. ``open_only``: the cases not ended (``False``: the ended
    ones). ``agency``: cases where that agency has a task it has not answered yet (assigned or accepted).
    ``total`` is exact up to ``count_cap`` matches; past it the page says ``total_exact=False`` and
    ``total == count_cap``.
    """
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    horizon = calendar.add_working_days(now, 1) if at_risk is not None else None
    given = {"agency": agency, "stage": stage, "province": province, "kind": kind, "priority": priority}
    given |= {"centre": centre, "region": region, "category": category}
    group = _is_group(category)
    statements = board_statements(overdue=overdue, at_risk=at_risk, open_only=open_only, status=status, **given)
    if statements.where.states == ():  # e.g. overdue=true&status=closed
        return CasePage(items=[], total=0, page=page, page_size=page_size)
    offset = (page - 1) * page_size
    # A full page counts to at least its own last row.
    cap = max(count_cap, offset + page_size)
    values: dict[str, Any] = {f"board_{name}": value for name, value in given.items() if value is not None}
    values |= {"board_now": now, "board_horizon": horizon, "board_cap": cap + 1}
    if group:
        values["board_category_group"] = _like_escaped(f"{category}.") + "%"
    rows, short, counted = await _walk(session, statements, values, offset=offset, limit=page_size)
    exact = True
    if len(rows) < page_size:
        # A short page (or one past the end) is where the walks ran out: the total is known without a count.
        total = offset - short + len(rows)
    else:
        if counted is None:
            counted = int(await session.scalar(statements.count(), values) or 0)
        total, exact = min(counted, cap), counted <= cap
    open_states = frozenset(open_state_codes())
    late: dict[datetime, int] = {}  # deadlines are midnights, so a page shares a few: count each once
    risk = horizon if horizon is not None else calendar.add_working_days(now, 1)
    items = [_item(row, now=now, risk=risk, calendar=calendar, open_states=open_states, late=late) for row in rows]
    return CasePage(items=items, total=total, page=page, page_size=page_size, total_exact=exact)


def _count_query(src: _Source, base: list[ColumnElement[bool]], segments: list[Slice]) -> Select[Any]:
    """How many cases match, counted up to ``board_cap`` (the cap plus one): enough to say "more than cap".

    An exact count of half a million closed cases takes 40-100 ms on either backend however it is indexed
    (bench/board_bench.py); a board that pages 50 at a time needs "10,000+" there, not the last digit. Counted
    over the segments the page is walked by (``_plan``), as one ``UNION ALL`` under the cap's LIMIT, which
    both backends read branch after branch and stop at the cap: each branch is a range of the index its walk
    reads, its other filters tested in that index where it holds them. As one WHERE, the planners counted
    through whichever index led on the first column, reading a table row for each entry.
    """
    branches = [select(src.case_id).where(*base, *extra) for extra in segments]
    matching = union_all(*branches).limit(_CAP).subquery()
    return select(func.count()).select_from(matching)


def _is_group(category: str | None) -> bool:
    """Whether a category filter names a group ("roads", taking in "roads.potholes") rather than a category."""
    return category is not None and "." not in category


def _like_escaped(text: str) -> str:
    """``text`` as a LIKE pattern matching itself, with ``/`` as the escape character (as ``autoescape``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _item(
    row: Any,
    *,
    now: datetime,
    risk: datetime,
    calendar: WorkingCalendar,
    open_states: frozenset[str],
    late: dict[datetime, int],
) -> CaseItem:
    """A board row from its read-model row. ``risk``: the end of the next working day (at risk up to it)."""
    due = row.due_at if row.status in open_states else None
    overdue = due is not None and due < now
    if overdue and row.due_at not in late:
        late[row.due_at] = calendar.working_days_between(row.due_at, now)
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
        overdue=overdue,
        working_days_late=late[row.due_at] if overdue else 0,
        at_risk=due is not None and now <= due <= risk,
        category=row.category,
        kind=row.kind,
        priority=row.priority,
        centre=row.centre,
        sla_class=row.sla_class,
        region=row.region,
    )


async def screening_queue(
    session: AsyncSession,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    states: Sequence[str],
    held_by: str | None = None,
    page: int = 1,
    page_size: int = 25,
) -> CasePage:
    """The officers' screening queue: cases in ``states`` (only those ``held_by`` holds, if given), urgent ones
    first, then the earliest deadline (none last), then the oldest; one page and how many there are.

    One ordered statement over every queue state at once, so a page is the same whichever state its cases are
    in (the queue holds the cases not yet screened: a small share of the read model, read by the status index).
    """
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    conditions: list[ColumnElement[bool]] = [Case.status.in_(list(states))]
    if held_by is not None:
        # By the claim's primary key from each queue case (claims stay after their case leaves the queue).
        held = select(QueueClaim.case_id).where(QueueClaim.case_id == Case.case_id, QueueClaim.officer_id == held_by)
        conditions.append(held.exists())
    rows = await session.execute(
        select(*BOARD_COLUMNS)
        .where(*conditions)
        .order_by(
            case((Case.priority == "urgent", 0), else_=1),
            Case.due_at.is_(None),
            Case.due_at,
            Case.received_at,
            Case.case_id,
        )
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    total = await session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
    late: dict[datetime, int] = {}
    open_states = frozenset(OPEN_CASE_STATUSES)
    risk = calendar.add_working_days(now, 1)
    items = [_item(r, now=now, risk=risk, calendar=calendar, open_states=open_states, late=late) for r in rows]
    return CasePage(items=items, total=int(total), page=page, page_size=page_size)


@dataclass(frozen=True)
class ExtensionRequest:
    """An agency's request for more time on a case, waiting for a supervisor's answer."""

    case_id: str
    agency: str
    working_days: int  # asked for
    due_at: datetime | None  # the task's deadline now


EXTENSION_REQUESTS_SHOWN = 25


def extension_requests_statement(limit: int = EXTENSION_REQUESTS_SHOWN) -> Select[str, str, int, datetime | None]:
    """The requests waiting, the task's earliest deadline first, read from ix_agency_tasks_extension_pending
    (its predicate said as the same constant) with one more than shown, to say whether there are more.

    A request waits while its task is open; an ended task keeps its number. The open statuses are tested as
    ``status || ''``, an expression no index serves: as a plain ``status IN (...)``, SQLite (without
    statistics) read every open task through the status index and sorted them, instead of the few tasks
    with a request, in order, from this one."""
    open_task = literal_column("status || ''").in_([literal_column(repr(s)) for s in _TASK_INDEX_STATUSES])
    return (
        select(AgencyTask.case_id, AgencyTask.agency, AgencyTask.extension_pending, AgencyTask.due_at)
        .where(text(EXTENSION_PENDING_SQL), open_task)
        .order_by(AgencyTask.due_at, AgencyTask.case_id)
        .limit(limit + 1)
    )


async def extension_requests(session: AsyncSession) -> tuple[list[ExtensionRequest], bool]:
    """The extension requests a supervisor has to answer (the first ones), and whether more wait."""
    rows = (await session.execute(extension_requests_statement())).all()
    found = [ExtensionRequest(r.case_id, r.agency, int(r.extension_pending), r.due_at) for r in rows]
    return found[:EXTENSION_REQUESTS_SHOWN], len(found) > EXTENSION_REQUESTS_SHOWN


async def count_in_states(session: AsyncSession, states: Sequence[str]) -> int:
    """How many cases are in ``states`` (by the status index)."""
    return int(await session.scalar(select(func.count()).select_from(Case).where(Case.status.in_(list(states)))) or 0)


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


@dataclass(frozen=True)
class StuckCase:
    """A case whose latest transition the read model refused (no personal data)."""

    case_id: str
    tracking_code: str
    status: str
    last_seq: int
    stuck_at: datetime
    stuck_reason: str | None


async def count_stuck_cases(session: AsyncSession) -> int:
    """How many cases the projection has marked stuck (the /metrics gauge)."""
    return int(await session.scalar(select(func.count()).where(Case.stuck_at.is_not(None))) or 0)


async def stuck_cases(session: AsyncSession, *, limit: int = 200) -> tuple[list[StuckCase], int]:
    """Cases marked stuck by the projection, oldest first, and how many there are in all."""
    total = await count_stuck_cases(session)
    rows = await session.execute(
        select(Case.case_id, Case.tracking_code, Case.status, Case.last_seq, Case.stuck_at, Case.stuck_reason)
        .where(Case.stuck_at.is_not(None))
        .order_by(Case.stuck_at)
        .limit(limit)
    )
    items = [
        StuckCase(case_id, code, status, last_seq, stuck_at, reason)
        for case_id, code, status, last_seq, stuck_at, reason in rows.all()
        if stuck_at is not None
    ]
    return items, total


# --- one case (the case pages read through these) ------------------------------------------------------------


async def case_timeline(session: AsyncSession, *, case_id: str) -> list[CaseEvent]:
    """A case's timeline rows in seq order."""
    query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    return list((await session.execute(query)).scalars().all())


async def case_tasks(session: AsyncSession, *, case_id: str) -> list[AgencyTask]:
    """A case's agency tasks, oldest first."""
    query = select(AgencyTask).where(AgencyTask.case_id == case_id).order_by(AgencyTask.id)
    return list((await session.execute(query)).scalars().all())


async def cases_with_tasks(session: AsyncSession, case_ids: Sequence[str]) -> dict[str, tuple[Case, list[AgencyTask]]]:
    """The cases of a page of a list with their agency tasks (oldest first), in two statements whatever the
    page's length, instead of two a row."""
    if not case_ids:
        return {}
    cases = (await session.execute(select(Case).where(Case.case_id.in_(case_ids)))).scalars().all()
    found: dict[str, tuple[Case, list[AgencyTask]]] = {c.case_id: (c, []) for c in cases}
    tasks = select(AgencyTask).where(AgencyTask.case_id.in_(case_ids)).order_by(AgencyTask.id)
    for task in (await session.execute(tasks)).scalars():
        found[task.case_id][1].append(task)
    return found


async def case_texts(session: AsyncSession, case_ids: Sequence[str]) -> dict[str, tuple[str | None, str]]:
    """The subject and the description of a page of a list's cases, by case id, in one statement."""
    if not case_ids:
        return {}
    query = select(Case.case_id, Case.subject, Case.description).where(Case.case_id.in_(case_ids))
    return {row.case_id: (row.subject, row.description) for row in await session.execute(query)}


async def case_by_tracking_code(session: AsyncSession, *, code: str) -> Case | None:
    """The case with this (normalised) tracking code."""
    query = select(Case).where(Case.tracking_code == code)
    return (await session.execute(query)).scalar_one_or_none()


async def case_exists(session: AsyncSession, *, case_id: str) -> bool:
    """Whether the read model has this case."""
    return await session.get(Case, case_id) is not None
