"""The board's fast paths return exactly what the plain query would, and the tasks' copies stay in step.

``store.queries.list_cases`` reads each page as ordered walks over several indexes (the open cases' partial
index, one agency's open tasks with their copies of the case's columns). Each test here compares every page
and every total with a naive reference: one ``SELECT`` over the whole database with the filters written
plainly (the agency filter as ``EXISTS`` over the real task rows, not the copies) and the board's order as one
``ORDER BY``. The seeded cases share deadlines, lack them, are urgent or not, and include finished cases
whose deadline was never cleared; every test makes its own province and agency codes.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import and_, case, delete, exists, not_, or_, select, update

from activities.projection import ReadModelActivities
from config.settings import Settings
from sla.calendar import WorkingCalendar
from sla.rules import DeadlineRule
from store import models, queries
from store.board import sync_agency_tasks
from store.db import Database
from store.migrate import alembic_config
from store.queries import list_cases
from tests.query_plans import query_plan
from workflows.models import AgencyTask, CaseEvent, CaseState, Deadline, TransitionRecord
from workflows.process import OPEN_STATES, OPEN_TASK, Actor, Audience, Role, State, TaskStatus

C = models.Case
T = models.AgencyTask
OFFICER = Actor("o-1", Role.OFFICER)


@pytest.fixture
def calendar(settings: Settings) -> WorkingCalendar:
    return settings.calendar()


@dataclass
class Seeded:
    tag: str
    provinces: tuple[str, str]
    agencies: tuple[str, str, str]
    now: datetime
    case_ids: list[str]


async def seed(db: Database, calendar: WorkingCalendar, *, n: int = 48) -> Seeded:
    """``n`` cases in two provinces, with tasks of three agencies in every task status."""
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(n)  # the same cases every run (the tag only keeps them apart from other tests')
    provinces = (f"CopyP1-{tag}", f"CopyP2-{tag}")
    agencies = (f"CA-{tag}", f"CB-{tag}", f"CC-{tag}")
    # Few distinct deadlines, so that ties on due_at are the rule: past, within the next working day, later.
    dues = [
        now - timedelta(days=3),
        now - timedelta(hours=1),
        calendar.add_working_days(now, 1) - timedelta(hours=2),
        calendar.add_working_days(now, 1),
        now + timedelta(days=20),
    ]
    states = sorted(State, key=str)
    ids: list[str] = []
    async with db.session() as session:
        for i in range(n):
            status = states[i % len(states)]
            due_at = None if i % 5 == 4 else rng.choice(dues)  # finished ones keep theirs: stale deadlines
            case_id = f"RT-C{tag}-{i:03d}"
            ids.append(case_id)
            session.add(
                C(
                    case_id=case_id,
                    tracking_code=f"C{tag}{i:03d}".upper()[:16],
                    workflow_id=f"complaint-{case_id}",
                    status=str(status),
                    channel="hotline",
                    description="-",
                    province=provinces[i % 2],
                    region=rng.choice(("north", "south")),
                    category=rng.choice(("roads.potholes", "roads.lights", "water", None)),
                    kind=rng.choice(("complaint", "request")),
                    priority=rng.choice(("normal", "normal", "urgent")),
                    centre=rng.choice(("PSC-1111", "BMA-CC")),
                    stage=rng.choice((None, 1, 2)),
                    agencies=[],
                    received_at=now - timedelta(days=30),
                    updated_at=now,
                    due_at=due_at,
                )
            )
            await session.flush()
            for agency in rng.sample(agencies, rng.choice((0, 1, 2, 3))):
                task_status = rng.choice(list(TaskStatus))
                session.add(T(case_id=case_id, agency=agency, status=str(task_status), due_at=due_at))
            await session.flush()
            await sync_agency_tasks(session, case_id)
    return Seeded(tag=tag, provinces=provinces, agencies=agencies, now=now, case_ids=ids)


async def unseed(db: Database, case_ids: list[str]) -> None:
    async with db.session() as session:
        for table in (models.Notification, models.CaseEvent, T):
            await session.execute(delete(table).where(table.case_id.in_(case_ids)))
        await session.execute(delete(C).where(C.case_id.in_(case_ids)))


@pytest.fixture
async def seeded(db: Database, calendar: WorkingCalendar) -> AsyncIterator[Seeded]:
    s = await seed(db, calendar)
    yield s
    await unseed(db, s.case_ids)


def naive_where(now: datetime, horizon: datetime, **f: Any) -> list[Any]:
    """The filters as plainly as SQL says them: the reference the fast paths must agree with."""
    open_ = C.status.in_(sorted(str(s) for s in OPEN_STATES))
    overdue = and_(open_, C.due_at.is_not(None), C.due_at < now)
    at_risk = and_(open_, C.due_at.is_not(None), C.due_at >= now, C.due_at <= horizon)
    out: list[Any] = []
    if f.get("overdue") is not None:
        out.append(overdue if f["overdue"] else not_(overdue))
    if f.get("at_risk") is not None:
        out.append(at_risk if f["at_risk"] else not_(at_risk))
    if f.get("open_only") is not None:
        out.append(open_ if f["open_only"] else not_(open_))
    if f.get("agency") is not None:
        owed = [str(s) for s in OPEN_TASK]
        out.append(exists().where(T.case_id == C.case_id, T.agency == f["agency"], T.status.in_(owed)))
    for name in ("stage", "province", "status", "kind", "priority", "centre", "region"):
        if f.get(name) is not None:
            out.append(getattr(C, name) == f[name])
    if f.get("category") is not None:
        out.append(or_(C.category == f["category"], C.category.like(f"{f['category']}.%")))
    return out


async def reference(db: Database, now: datetime, horizon: datetime, **f: Any) -> list[str]:
    """The board's order: the open cases before the ended ones, then urgent first, then by deadline (none last).
    An agency's board lists the cases of its unanswered tasks, which are open ones (a case's tasks end with it):
    it has no ended part, and puts the odd ended case this seed gives it where its deadline says."""
    urgent_first = case((C.priority == "urgent", 0), else_=1)
    ended = case((C.status.in_(sorted(str(s) for s in OPEN_STATES)), 0), else_=1)
    undated_last = case((C.due_at.is_(None), 1), else_=0)
    order = (*([] if f.get("agency") else [ended]), urgent_first, undated_last, C.due_at, C.case_id)
    async with db.sessions() as session:
        rows = await session.execute(select(C.case_id).where(*naive_where(now, horizon, **f)).order_by(*order))
        return list(rows.scalars())


async def assert_board_is(
    db: Database, calendar: WorkingCalendar, now: datetime, filters: dict[str, Any], *, page_sizes: tuple[int, ...]
) -> list[str]:
    horizon = calendar.add_working_days(now, 1)
    expected = await reference(db, now, horizon, **filters)
    for page_size in page_sizes:
        seen: list[str] = []
        for page in range(1, len(expected) // page_size + 3):
            async with db.sessions() as session:
                got = await list_cases(session, now=now, calendar=calendar, page=page, page_size=page_size, **filters)
            assert got.total == len(expected) and got.total_exact, (filters, page_size, page)
            seen += [item.case_id for item in got.items]
        assert seen == expected, (filters, page_size)
    return expected


def combinations(s: Seeded) -> list[dict[str, Any]]:
    """Every filter the consoles offer, alone (with this test's province or agency) and combined."""
    a, b, _ = s.agencies
    p1, p2 = s.provinces
    singles: list[dict[str, Any]] = [
        {"overdue": True},
        {"overdue": False},
        {"at_risk": True},
        {"at_risk": False},
        {"open_only": True},
        {"open_only": False},
        {"stage": 1},
        {"stage": 2},
        {"status": "stage1"},
        {"status": "closed"},
        {"kind": "request"},
        {"priority": "urgent"},
        {"centre": "BMA-CC"},
        {"region": "north"},
        {"category": "roads"},
        {"category": "water"},
        {},
    ]
    out = [{"agency": a}, {"agency": b}, {"province": p1}]
    out += [{**f, "province": p2} for f in singles]
    out += [{**f, "agency": a} for f in singles]
    out += [
        {"overdue": True, "agency": b, "province": p1, "stage": 1},
        {"overdue": True, "priority": "urgent", "agency": a},
        {"agency": b, "kind": "complaint", "centre": "PSC-1111"},
        {"at_risk": True, "status": "stage1", "agency": a},
        {"overdue": False, "at_risk": False, "agency": a},
        {"overdue": True, "at_risk": True, "province": p1},
        {"open_only": False, "status": "closed"},
        {"open_only": False, "overdue": False, "province": p1},
        {"open_only": True, "status": "stage1", "province": p2},
    ]
    return out


@pytest.mark.parametrize("rest_upto", [queries._REST_UPTO, 0], ids=["rest-at-once", "segment-by-segment"])
async def test_every_filter_and_combination_pages_as_the_plain_query(
    db: Database, calendar: WorkingCalendar, seeded: Seeded, rest_upto: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the first segment, a page reads the rest at once when it need not go far into them, and segment by
    # segment deeper down (store.queries._walk): both ways, every page as the plain query.
    monkeypatch.setattr(queries, "_REST_UPTO", rest_upto)
    nonempty = 0
    for filters in combinations(seeded):
        expected = await assert_board_is(db, calendar, seeded.now, filters, page_sizes=(3, 50))
        nonempty += bool(expected)
    assert nonempty > 30  # the seed gives the filters something to find


async def test_the_bounded_count_is_exact_to_the_cap_and_says_more(
    db: Database, calendar: WorkingCalendar, seeded: Seeded
) -> None:
    for filters in ({"agency": seeded.agencies[0]}, {"province": seeded.provinces[0]}, {"overdue": True}):
        horizon = calendar.add_working_days(seeded.now, 1)
        n = len(await reference(db, seeded.now, horizon, **filters))
        assert n > 4, filters
        async with db.sessions() as session:
            capped = await list_cases(session, now=seeded.now, calendar=calendar, page_size=2, count_cap=3, **filters)
            exact = await list_cases(session, now=seeded.now, calendar=calendar, page_size=2, count_cap=n, **filters)
        assert (capped.total, capped.total_exact) == (3, False)
        assert (exact.total, exact.total_exact) == (n, True)


async def copies_of(db: Database, case_ids: list[str]) -> list[tuple[Any, ...]]:
    """Each task row's copies next to its case's columns (the two halves must be equal)."""
    copied = [getattr(T, task) for task, _ in models.BOARD_COPIES if task != "case_id"]
    source = [getattr(C, column) for task, column in models.BOARD_COPIES if task != "case_id"]
    async with db.sessions() as session:
        rows = await session.execute(
            select(T.agency, *copied, *source).join(C, C.case_id == T.case_id).where(T.case_id.in_(case_ids))
        )
        return [tuple(r) for r in rows.all()]


def assert_in_step(rows: list[tuple[Any, ...]]) -> None:
    width = (len(rows[0]) - 1) // 2 if rows else 0
    for row in rows:
        assert row[1 : 1 + width] == row[1 + width :], row


# --- the projection keeps the copies in step --------------------------------------------------------------


def transition(
    case_id: str,
    seq: int,
    status: State,
    *,
    agencies: tuple[str, ...],
    due_at: datetime | None,
    priority: str = "normal",
    task_status: TaskStatus = TaskStatus.ACCEPTED,
    intake: bool = False,
) -> TransitionRecord:
    from domain.complaint import Complaint

    t0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    deadline = Deadline(DeadlineRule.STAGE1_RESPONSE, t0, 10, due_at) if due_at else None
    state = CaseState(
        case_id=case_id,
        tracking_code=case_id[-10:],
        status=status,
        received_at=t0,
        channel="hotline",
        seq=seq,
        stage=1 if status is State.STAGE1 else None,
        priority=priority,
        deadline=deadline,
        tasks=[AgencyTask(a, task_status, assigned_at=t0, deadline=deadline) for a in agencies],
    )
    event = CaseEvent(
        case_id=case_id,
        seq=seq,
        event="filed" if intake else f"e{seq}",
        from_state=None,
        to_state=status,
        actor=OFFICER,
        at=t0 + timedelta(minutes=seq),
    )
    complaint = None
    if intake:
        complaint = Complaint.model_validate(
            {
                "channel": "hotline",
                "description": "ทดสอบ",
                "complainant": {"preferred_channels": ["sms"]},
                "location": {"province": "Copy-Province", "province_code": "10"},
            }
        )
    return TransitionRecord(event, state, [Audience.SUPERVISOR], list(agencies), complaint)


async def test_copies_follow_the_case_through_the_projection_retries_and_a_rebuild(
    db: Database, calendar: WorkingCalendar
) -> None:
    tag = uuid.uuid4().hex[:8]
    agency = f"CP-{tag}"
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = f"RT-K{tag}-1", f"RT-K{tag}-2"
    write = ReadModelActivities(db).record_transition
    soon, late = now - timedelta(days=1), now + timedelta(days=9)
    records = {
        first: [
            transition(first, 1, State.RECEIVED, agencies=(), due_at=soon, intake=True),
            transition(first, 2, State.ASSIGNMENT, agencies=(agency,), due_at=soon, task_status=TaskStatus.ASSIGNED),
            # The deadline, the priority and the status move on: the task's copies must follow.
            transition(first, 3, State.STAGE1, agencies=(agency,), due_at=late, priority="urgent"),
        ],
        second: [
            transition(second, 1, State.RECEIVED, agencies=(), due_at=late, intake=True),
            transition(second, 2, State.STAGE1, agencies=(agency,), due_at=soon),
        ],
    }
    try:
        boards: list[list[str]] = []
        for rec in itertools.chain(records[first][:2], records[second]):
            await write(rec)
        assert_in_step(await copies_of(db, [first, second]))
        boards.append(await assert_board_is(db, calendar, now, {"agency": agency}, page_sizes=(1, 5)))
        assert boards[-1] == [first, second]  # both overdue at yesterday's deadline: by case id

        await write(records[first][2])
        rows = await copies_of(db, [first, second])
        assert_in_step(rows)
        assert {r[0] for r in rows} == {agency} and len(rows) == 2
        boards.append(await assert_board_is(db, calendar, now, {"agency": agency}, page_sizes=(1, 5)))
        assert boards[-1] == [first, second]  # urgent first, whatever its deadline
        assert await assert_board_is(db, calendar, now, {"agency": agency, "overdue": True}, page_sizes=(1,)) == [
            second
        ]

        # A retried older transition leaves the case row as it is: the copies too.
        await write(records[first][1])
        assert_in_step(await copies_of(db, [first, second]))
        assert await assert_board_is(db, calendar, now, {"agency": agency}, page_sizes=(1,)) == boards[-1]

        # The case row changed some other way (a repair by hand): the copies are brought back in step.
        async with db.session() as session:
            await session.execute(update(C).where(C.case_id == second).values(priority="urgent", due_at=late))
            await sync_agency_tasks(session, second)
        assert_in_step(await copies_of(db, [first, second]))
        assert await assert_board_is(db, calendar, now, {"agency": agency}, page_sizes=(1,)) == [first, second]
        async with db.session() as session:
            await session.execute(update(C).where(C.case_id == second).values(priority="normal", due_at=soon))
            await sync_agency_tasks(session, second)

        # A rebuild writes every transition again through the same projection: the same rows.
        before = await table_rows(db, [first, second])
        await unseed(db, [first, second])
        by_case = {cid: list(recs) for cid, recs in records.items()}

        async def history(case_id: str) -> list[TransitionRecord]:
            return by_case[case_id]

        rebuild = ReadModelActivities(db, history=history)
        for case_id in (first, second):
            assert await rebuild.reproject(case_id) == len(records[case_id])
        after = await table_rows(db, [first, second])
        assert len(after) == len(before)
        for old, new in zip(before, after, strict=True):
            assert dict(old) == dict(new), {k: (v, dict(new).get(k)) for k, v in old if dict(new).get(k) != v}
        assert_in_step(await copies_of(db, [first, second]))
        assert await assert_board_is(db, calendar, now, {"agency": agency}, page_sizes=(1,)) == boards[-1]
    finally:
        await unseed(db, [first, second])


async def table_rows(db: Database, case_ids: list[str]) -> list[tuple[Any, ...]]:
    """The case and task rows as the board reads them (without write times and ids)."""
    skip = {"id", "updated_at"}
    async with db.sessions() as session:
        cases = (await session.execute(select(C).where(C.case_id.in_(case_ids)).order_by(C.case_id))).scalars()
        tasks = (
            await session.execute(select(T).where(T.case_id.in_(case_ids)).order_by(T.case_id, T.agency))
        ).scalars()
        return [
            tuple((k, v) for k, v in sorted(vars(row).items()) if not k.startswith("_") and k not in skip)
            for row in [*cases, *tasks]
        ]


# --- the schema ---------------------------------------------------------------------------------------------


def test_the_partial_indexes_name_the_process_tables_open_states() -> None:
    # A planner uses a partial index only when the query repeats its predicate: the migration's literals, the
    # model's and the process table's must be the same sets, or a new revision is due. The same goes for the
    # expression that computes ``cases.ended`` (0022).
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revision = script.get_revision("0014")
    assert revision is not None
    module = revision.module
    assert set(module.OPEN_CASE_STATUSES) == {str(s) for s in OPEN_STATES} == set(models.OPEN_CASE_STATUSES)
    assert set(module.OPEN_TASK_STATUSES) == {str(s) for s in OPEN_TASK} == set(models.OPEN_TASK_STATUSES)
    assert [t for t, _, _ in module.COPIES] == [t for t, _ in models.BOARD_COPIES]
    ended = script.get_revision("0022")
    assert ended is not None
    assert set(ended.module.OPEN_CASE_STATUSES) == {str(s) for s in OPEN_STATES}
    assert ended.module.ENDED == models.ENDED_SQL


async def test_the_database_says_which_cases_have_ended(db: Database, calendar: WorkingCalendar) -> None:
    """``cases.ended`` is computed by the database from the status, on insert and on every change of it."""
    s = await seed(db, calendar, n=len(State))
    try:
        async with db.sessions() as session:
            rows = (await session.execute(select(C.status, C.ended).where(C.case_id.in_(s.case_ids)))).all()
        assert {status: bool(ended) for status, ended in rows} == {str(st): st not in OPEN_STATES for st in State}
        async with db.session() as session:
            await session.execute(update(C).where(C.case_id.in_(s.case_ids)).values(status=str(State.CLOSED)))
        async with db.sessions() as session:
            ended = (await session.execute(select(C.ended).where(C.case_id.in_(s.case_ids)))).scalars().all()
        assert ended and all(ended)
    finally:
        await unseed(db, s.case_ids)


@pytest.mark.parametrize(
    ("filters", "index", "ended"),
    [
        ({"open_only": True, "province": "P"}, "ix_cases_province_due_at", "0"),
        ({"overdue": True, "category": "roads.lights"}, "ix_cases_category_due_at", "0"),
        ({"open_only": False, "province": "P"}, "ix_cases_province_due_at", "1"),
        ({"open_only": False}, "ix_cases_priority_due_at", "1"),
        ({"open_only": True}, "ix_cases_priority_due_at", "0"),
        ({"status": "closed"}, "ix_cases_status_priority_due_at", "1"),
    ],
)
async def test_open_and_ended_cases_are_ranges_of_their_own(
    db: Database, filters: dict[str, Any], index: str, ended: str
) -> None:
    """An ended case has no deadline. Before ``ended`` stood in the board's indexes ahead of it (0022), the
    undated entries of a province held its paused open cases and every case it ever ended, so "open +
    province" read through all of them, more with every year kept (1.7 ms of a 3.1 ms count at 1M cases, on
    PostgreSQL). Now every walk and every branch of the count seeks the open or the ended cases alone."""
    statements = queries.board_statements(**filters)
    values = {f"board_{k}": v for k, v in filters.items() if k not in ("open_only", "overdue", "status")}
    values |= {"board_now": datetime.now(UTC), "board_cap": 10, "board_skip": 0, "board_upto": 10, "board_need": 10}
    sql = [str(statements.count().compile(dialect=db.engine.dialect))]
    sql += [
        str(statements.walk(i, past=past, with_count=False).compile(dialect=db.engine.dialect))
        for i in range(len(statements.segments))
        for past in (False, True)
    ]
    literal = "true" if ended == "1" else "false"
    for text_ in sql:  # every walk and branch (each one priority) says which
        assert text_.count("cases.ended =") == text_.count("cases.priority =") >= 1, text_
        assert text_.count(f"cases.ended = {literal if not db.is_sqlite else ended}") >= 1, text_
    if db.is_sqlite:  # a test's tiny table tells PostgreSQL's planner nothing about 1M rows; SQLite's rules do
        for i in range(len(statements.segments)):
            plan = await query_plan(db, statements.walk(i, past=True, with_count=True), values)
            seeks = re.findall(r"USING (?:COVERING )?INDEX (\w+) \(([^)]*)\)", plan)
            assert seeks and all(name == index for name, _ in seeks if name.startswith("ix_")), plan
            assert all("ended=?" in cond for name, cond in seeks if name == index), plan


@pytest.mark.parametrize(
    ("filters", "branches", "ended"),
    [
        ({"open_only": True, "category": "roads"}, 2, 2),  # the open cases of each priority
        ({"open_only": False, "province": "P"}, 2, 2),
        ({"status": "stage1"}, 2, 2),
        ({"open_only": True, "agency": "A"}, 1, 0),  # the agency's open tasks: one range
        ({"province": "P"}, 1, 0),  # every case of the province: one range
        ({}, 1, 0),
    ],
)
def test_the_count_reads_whole_ranges_not_the_walks_segments(
    filters: dict[str, Any], branches: int, ended: int
) -> None:
    """The count stops at its cap and needs no order, so it need not split the deadlines (or, with no value of
    ``ended`` to seek, the open cases from the ended) as the page's walks do: each branch is a whole range of
    the walks' index. A branch per walk segment (eight for "province") cost PostgreSQL more to plan than to
    read. Before ``ended`` stood in the indexes, "open + category" counted through every urgent ended case of
    the category first (PostgreSQL, 1M rows: 19 ms; 8 ms once the dated slices came first)."""
    count = str(queries.board_statements(**filters).count().compile())
    parts = count.split("UNION ALL")
    assert len(parts) == branches, count
    assert "due_at" not in count, count
    assert sum("ended =" in part for part in parts) == ended, count


@pytest.mark.parametrize(
    "filters", [{"overdue": False}, {"at_risk": False, "province": "P"}, {"overdue": False, "agency": "A"}]
)
def test_a_complement_counts_the_open_cases_first_and_the_dated_before_the_undated(filters: dict[str, Any]) -> None:
    """A complement's open slices carry their conditions on the deadline, counted every dated slice before any
    undated one; then its ended cases (it takes in all of them), each priority's as one range."""
    count = str(queries.board_statements(**filters).count().compile())
    branches = count.split("UNION ALL")
    keys = [("ended = true" in b or "ended = 1" in b, "due_at IS NULL" in b) for b in branches]
    assert keys == sorted(keys) and len(branches) >= 4, count
    assert any(undated for _, undated in keys) and not all(undated for _, undated in keys), count
    ended = [b for b, (is_ended, _) in zip(branches, keys, strict=True) if is_ended]
    assert len(ended) == (0 if "agency" in filters else 2) and not any("due_at" in b for b in ended), count
