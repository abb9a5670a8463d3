"""The SPSO indicators, satisfaction, repeat complaints and root causes against SQL and the project's own
deadline arithmetic (``WorkingCalendar.due``), on the seeded quarters."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from reports.figures import OUTCOMES
from reports.periods import BE_OFFSET, bounds_utc
from reports.spso import WorkingDays, repeat_complaints, root_causes, satisfaction, spso_quarterly
from sla.calendar import BANGKOK, WorkingCalendar
from store.db import Database
from store.models import UTCDateTime
from tests.reports.conftest import RANGE
from tests.reports.seed import Seeded

CALENDAR = WorkingCalendar()


async def _sql(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    stmt = text(sql)
    for name, value in params.items():
        if isinstance(value, datetime):
            stmt = stmt.bindparams(bindparam(name, type_=UTCDateTime()))
    # Dates come back as text on SQLite with a text() query: read them through the model's type.
    return list((await session.execute(stmt, params)).all())


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _quarter(moment: datetime) -> str:
    local = moment.astimezone(BANGKOK)
    return f"{local.year}-Q{(local.month + 2) // 3}"


def _taken(start: datetime, end: datetime) -> int:
    """Working days taken, by the deadline rule: the first n whose deadline (end of working day n) is after end."""
    n = 1
    while CALENDAR.due(start, n).due_at <= end:
        n += 1
    return n


def test_working_days_follow_s193_3() -> None:
    days = WorkingDays(CALENDAR)
    # Friday 2024-03-08 afternoon: day 1 is Monday 11th; closed Monday, or Saturday, = day 1.
    assert days.elapsed(date(2024, 3, 8), False, date(2024, 3, 11)) == 1
    assert days.elapsed(date(2024, 3, 8), False, date(2024, 3, 9)) == 1
    assert days.elapsed(date(2024, 3, 8), False, date(2024, 3, 12)) == 2
    # Closed on Saturday after day 5 (Friday 15th): past the deadline, day 6.
    assert days.elapsed(date(2024, 3, 8), False, date(2024, 3, 16)) == 6
    # Received 07:00 on a working Monday: that Monday is day 1.
    assert days.elapsed(date(2024, 3, 11), True, date(2024, 3, 11)) == 1
    # Received before opening on a Saturday: the rule does not apply; closed Monday = day 1.
    assert days.elapsed(date(2024, 3, 9), True, date(2024, 3, 11)) == 1
    # Across Songkran 2024 (12-16 April off): received Thu 11th, closed Wed 17th = 1 working day.
    assert days.elapsed(date(2024, 4, 11), False, date(2024, 4, 17)) == 1
    # Years apart, built lazily both ways, and the same as the deadline arithmetic.
    start = datetime(2023, 12, 28, 12, tzinfo=BANGKOK)
    assert days.elapsed(date(2023, 12, 28), False, date(2024, 1, 3)) == _taken(start, start.replace(2024, 1, 3))
    assert days.elapsed(date(2025, 6, 2), True, date(2022, 1, 3)) == 1


async def test_spso_quarterly_matches_sql_and_deadlines(db: Database, seeded: Seeded) -> None:
    start, end = bounds_utc(RANGE.since, RANGE.until)
    async with db.sessions() as session:
        table = await spso_quarterly(
            session, filters=RANGE, calendar=CALENDAR, stage1_limit=5, stage2_limit=20, lang="th"
        )
        received = await _sql(
            session, "SELECT received_at FROM cases WHERE received_at >= :a AND received_at < :b", a=start, b=end
        )
        s1 = await _sql(
            session,
            "SELECT received_at, stage1_closed_at, stage2_started_at, outcome FROM cases "
            "WHERE stage1_closed_at >= :a AND stage1_closed_at < :b",
            a=start,
            b=end,
        )
        s2 = await _sql(
            session,
            "SELECT stage2_started_at, stage2_closed_at, outcome FROM cases "
            "WHERE stage2_closed_at >= :a AND stage2_closed_at < :b",
            a=start,
            b=end,
        )
    rows = {r["period"]: r for r in table.records()}
    assert Counter(_quarter(_aware(r[0])) for r in received) == {
        p: r["received"] for p, r in rows.items() if r["received"]
    }

    expected: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for got, closed, escalated, outcome in s1:
        got, closed = _aware(got), _aware(closed)
        q, taken = _quarter(closed), _taken(got, closed)
        expected[q]["s1_closed"] += 1
        expected[q]["s1_days"] += taken
        expected[q]["s1_within"] += closed < CALENDAR.due(got, 5).due_at
        if escalated is None:
            expected[q][f"s1_{outcome}"] += 1
    for started, closed, outcome in s2:
        started, closed = _aware(started), _aware(closed)
        q = _quarter(closed)
        expected[q]["s2_closed"] += 1
        expected[q]["s2_days"] += _taken(started, closed)
        expected[q]["s2_within"] += closed < CALENDAR.due(started, 20).due_at
        expected[q][f"s2_{outcome}"] += 1
    assert len(expected) == 8
    for q, numbers in expected.items():
        row = rows[q]
        for n in (1, 2):
            assert row[f"s{n}_closed"] == numbers[f"s{n}_closed"], (q, n)
            assert row[f"s{n}_within"] == numbers[f"s{n}_within"], (q, n)
            if numbers[f"s{n}_closed"]:
                assert row[f"s{n}_avg_wd"] == round(numbers[f"s{n}_days"] / numbers[f"s{n}_closed"], 1), (q, n)
                pct = round(100 * numbers[f"s{n}_within"] / numbers[f"s{n}_closed"], 1)
                assert row[f"s{n}_within_pct"] == pct
            for o in OUTCOMES:
                assert row[f"s{n}_{o}"] == numbers[f"s{n}_{o}"], (q, n, o)
    assert 0 < sum(r["s1_within"] for r in rows.values()) < sum(r["s1_closed"] for r in rows.values())
    assert rows["2024-Q3"]["period_label"] == f"ไตรมาส 3/{2024 + BE_OFFSET}"


async def test_satisfaction_and_trend(db: Database, seeded: Seeded) -> None:
    start, end = bounds_utc(RANGE.since, RANGE.until)
    async with db.sessions() as session:
        table = await satisfaction(session, filters=RANGE, lang="en")
        rows = await _sql(
            session,
            "SELECT COALESCE(stage2_closed_at, stage1_closed_at, closed_at), rating FROM cases "
            "WHERE rating IS NOT NULL AND COALESCE(stage2_closed_at, stage1_closed_at, closed_at) >= :a "
            "AND COALESCE(stage2_closed_at, stage1_closed_at, closed_at) < :b",
            a=start,
            b=end,
        )
    ratings: dict[str, list[int]] = defaultdict(list)
    for when, rating in rows:
        ratings[_quarter(_aware(when))].append(int(rating))
    got = table.records()
    assert [r["period"] for r in got] == sorted(ratings)
    previous = None
    for r in got:
        values = ratings[r["period"]]
        average = round(sum(values) / len(values), 2)
        assert (r["rated"], r["average"]) == (len(values), average)
        assert r["satisfied_pct"] == round(100 * sum(v >= 4 for v in values) / len(values), 1)
        assert r["trend"] == (round(average - previous, 2) if previous is not None else None)
        assert [r[f"r{n}"] for n in range(1, 6)] == [values.count(n) for n in range(1, 6)]
        previous = average


async def test_repeat_complaints(db: Database, seeded: Seeded) -> None:
    start, end = bounds_utc(RANGE.since, RANGE.until)
    async with db.sessions() as session:
        table = await repeat_complaints(session, filters=RANGE, lang="en")
        everyone = await _sql(
            session,
            "SELECT case_id, received_at, COALESCE(complainant_citizen_id, complainant_phone), duplicate_of FROM cases",
        )
    seen: set[str] = set()
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    for _case_id, received, person, duplicate in sorted(everyone, key=lambda r: (_aware(r[1]), r[0])):
        received = _aware(received)
        in_range = start <= received < end
        q = _quarter(received)
        if in_range:
            expected[q]["received"] += 1
            expected[q]["duplicates"] += duplicate is not None
            expected[q]["repeat"] += person is not None and person in seen
        if person is not None:
            seen.add(person)
    got = {r["period"]: r for r in table.records()}
    assert set(got) == set(expected)
    for q, numbers in expected.items():
        assert (got[q]["received"], got[q]["duplicates"], got[q]["repeat"]) == (
            numbers["received"],
            numbers["duplicates"],
            numbers["repeat"],
        )
    assert sum(r["repeat"] for r in got.values()) > 0


async def test_root_causes(db: Database, seeded: Seeded) -> None:
    start, end = bounds_utc(RANGE.since, RANGE.until)
    async with db.sessions() as session:
        table = await root_causes(session, filters=RANGE, lang="en")
        rows = await _sql(
            session,
            "SELECT TRIM(root_cause), COUNT(*) FROM cases WHERE received_at >= :a AND received_at < :b "
            "AND root_cause IS NOT NULL AND TRIM(root_cause) <> '' GROUP BY TRIM(root_cause)",
            a=start,
            b=end,
        )
    assert dict(table.rows) == {cause: n for cause, n in rows}
    assert table.column("cases") == sorted(table.column("cases"), reverse=True)
    assert "" not in table.column("cause")
