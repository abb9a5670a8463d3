"""Report figures checked against the read model with SQL written here, on seeded data over eight quarters,
six provinces and four agencies (SQLite, and PostgreSQL when RONGTUK_TEST_DATABASE_URL names it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import geothai
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from config.reference import load_reference
from reports.dimensions import DIMENSIONS, Lookup
from reports.figures import OUTCOMES, Filters, totals, volume
from reports.periods import Grain, bounds_utc, period_label
from store.db import Database
from store.models import UTCDateTime
from tests.reports.conftest import RANGE, quarters
from tests.reports.seed import Seeded
from workflows.process import OPEN_STATES

NOW = datetime.now(UTC)
OPEN = ", ".join(f"'{s.value}'" for s in sorted(OPEN_STATES))


async def _sql(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    stmt = text(sql)
    for name, value in params.items():
        if isinstance(value, datetime):
            stmt = stmt.bindparams(bindparam(name, type_=UTCDateTime()))
    return list((await session.execute(stmt, params)).all())


def _measures_sql() -> str:
    outcomes = ", ".join(f"SUM(CASE WHEN c.outcome = '{o}' THEN 1 ELSE 0 END)" for o in OUTCOMES)
    return (
        f"COUNT(*), SUM(CASE WHEN c.status IN ({OPEN}) THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN c.status IN ({OPEN}) AND c.due_at < :now THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN c.status IN ({OPEN}) THEN 0 ELSE 1 END), {outcomes}"
    )


async def test_volume_by_quarter_and_province_matches_sql(db: Database, seeded: Seeded, lk: Lookup) -> None:
    async with db.sessions() as session:
        table = await volume(
            session, grain=Grain.QUARTER, dimension=DIMENSIONS["province"], filters=RANGE, lk=lk, now=NOW, lang="en"
        )
        got = {(r["period"], r["key"]): r for r in table.records()}
        expected: dict[tuple[str, str], tuple[int, ...]] = {}
        for key, first, last in quarters():
            start, end = bounds_utc(first, last)
            rows = await _sql(
                session,
                f"SELECT COALESCE(province, '-'), {_measures_sql()} FROM cases c "
                "WHERE received_at >= :a AND received_at < :b GROUP BY COALESCE(province, '-')",
                a=start,
                b=end,
                now=NOW,
            )
            for province, *numbers in rows:
                expected[(key, province)] = tuple(int(n) for n in numbers)
    assert len(expected) >= 8 * 6, "the seed should cover every quarter and province"
    assert set(got) == set(expected)
    measures = [c.key for c in table.columns][4:]
    for cell, numbers in expected.items():
        assert tuple(got[cell][m] for m in measures) == numbers, cell
    assert sum(r["received"] for r in got.values()) == len(seeded.case_ids)
    assert got[("2024-Q1", "เชียงใหม่")]["label"] == "Chiang Mai"
    assert got[("2024-Q1", "เชียงใหม่")]["period_label"] == "Q1 2024"


async def test_volume_by_month_and_agency_counts_tasks(db: Database, seeded: Seeded, lk: Lookup) -> None:
    async with db.sessions() as session:
        table = await volume(
            session, grain=Grain.MONTH, dimension=DIMENSIONS["agency"], filters=RANGE, lk=lk, now=NOW, lang="th"
        )
        start, end = bounds_utc(date(2024, 2, 1), date(2024, 2, 29))
        rows = await _sql(
            session,
            f"SELECT t.agency, {_measures_sql()} FROM cases c JOIN agency_tasks t ON t.case_id = c.case_id "
            "WHERE received_at >= :a AND received_at < :b GROUP BY t.agency",
            a=start,
            b=end,
            now=NOW,
        )
    got = {r["key"]: r for r in table.records() if r["period"] == "2024-02"}
    assert {a for a, *_ in rows} == set(got) and got
    for agency, received, open_, overdue, *_ in rows:
        assert (got[agency]["received"], got[agency]["open"], got[agency]["overdue"]) == (received, open_, overdue)
    assert got["MIN-MOI"]["label"] == "กระทรวงมหาดไทย"
    assert got["MIN-MOI"]["period_label"] == "ก.พ. 2567"


async def test_agency_filter_keeps_only_its_cases(db: Database, seeded: Seeded, lk: Lookup) -> None:
    scoped = replace(RANGE, agency="MIN-MOT")
    async with db.sessions() as session:
        table = await volume(session, grain=Grain.YEAR, dimension=None, filters=scoped, lk=lk, now=NOW, lang="en")
        by_agency = await totals(session, dimension=DIMENSIONS["agency"], filters=scoped, lk=lk, now=NOW, lang="en")
        start, end = bounds_utc(RANGE.since, RANGE.until)
        rows = await _sql(
            session,
            "SELECT COUNT(*) FROM cases WHERE received_at >= :a AND received_at < :b AND EXISTS "
            "(SELECT 1 FROM agency_tasks t WHERE t.case_id = cases.case_id AND t.agency = 'MIN-MOT')",
            a=start,
            b=end,
        )
    assert sum(table.column("received")) == rows[0][0] > 0
    assert by_agency.column("key") == ["MIN-MOT"], "an agency's breakdown by agency shows only itself"
    assert by_agency.column("received") == [rows[0][0]]


async def test_strategy_and_region_follow_the_reference_files(db: Database, seeded: Seeded, lk: Lookup) -> None:
    reference = load_reference()
    codes = {p.name_th: p.code for p in geothai.provinces()}
    async with db.sessions() as session:
        strategy = await totals(session, dimension=DIMENSIONS["strategy"], filters=RANGE, lk=lk, now=NOW, lang="en")
        region = await totals(session, dimension=DIMENSIONS["region"], filters=RANGE, lk=lk, now=NOW, lang="th")
        start, end = bounds_utc(RANGE.since, RANGE.until)
        rows = await _sql(
            session, "SELECT category, province FROM cases WHERE received_at >= :a AND received_at < :b", a=start, b=end
        )
    by_strategy = Counter(reference.categories[c].strategy if c else "-" for c, _ in rows)
    by_region = Counter(reference.region6[codes[p]].code if p else "-" for _, p in rows)
    assert dict(zip(strategy.column("key"), strategy.column("received"), strict=True)) == by_strategy
    assert dict(zip(region.column("key"), region.column("received"), strict=True)) == by_region
    labels = dict(zip(region.column("key"), region.column("label"), strict=True))
    assert labels["north"] == "ภาคเหนือ" and labels["-"] == "ไม่ระบุ"
    assert "S2 Competitiveness enhancement" in strategy.column("label")


async def test_dates_count_in_bangkok_time(db: Database, lk: Lookup) -> None:
    """A case filed at 23:30 UTC on 31 March is 06:30 on 1 April in Bangkok: April, Q2."""
    from store.models import Case

    async with db.sessions() as session:
        session.add(
            Case(
                case_id="rpt-bkk-edge",
                tracking_code="RBKKEDGE",
                workflow_id="complaint-rpt-bkk-edge",
                status="screening",
                channel="web",
                description="edge",
                province="ตราด",
                received_at=datetime(2022, 3, 31, 23, 30, tzinfo=UTC),
                updated_at=datetime(2022, 3, 31, 23, 30, tzinfo=UTC),
            )
        )
        await session.commit()
        filters = Filters(since=date(2022, 1, 1), until=date(2022, 12, 31), province="ตราด")
        month = await volume(session, grain=Grain.MONTH, dimension=None, filters=filters, lk=lk, now=NOW, lang="th")
        quarter = await volume(session, grain=Grain.QUARTER, dimension=None, filters=filters, lk=lk, now=NOW, lang="th")
        march = await volume(
            session,
            grain=Grain.MONTH,
            dimension=None,
            filters=replace(filters, until=date(2022, 3, 31)),
            lk=lk,
            now=NOW,
            lang="th",
        )
    assert month.column("period") == ["2022-04"] and month.column("period_label") == ["เม.ย. 2565"]
    assert quarter.column("period") == ["2022-Q2"] and quarter.column("period_label") == ["ไตรมาส 2/2565"]
    assert march.rows == [], "the range's end is the end of 31 March in Bangkok"


async def test_fiscal_years_start_in_october(db: Database, seeded: Seeded, lk: Lookup) -> None:
    async with db.sessions() as session:
        table = await volume(session, grain=Grain.FISCAL_YEAR, dimension=None, filters=RANGE, lk=lk, now=NOW, lang="th")
        expected = {}
        for fy, first, last in (
            ("FY2023", date(2023, 1, 1), date(2023, 9, 30)),
            ("FY2024", date(2023, 10, 1), date(2024, 9, 30)),
            ("FY2025", date(2024, 10, 1), date(2024, 12, 31)),
        ):
            start, end = bounds_utc(first, last)
            rows = await _sql(
                session, "SELECT COUNT(*) FROM cases WHERE received_at >= :a AND received_at < :b", a=start, b=end
            )
            expected[fy] = rows[0][0]
    assert dict(zip(table.column("period"), table.column("received"), strict=True)) == expected
    assert table.column("period_label") == ["ปีงบประมาณ 2566", "ปีงบประมาณ 2567", "ปีงบประมาณ 2568"]


def test_period_labels() -> None:
    assert period_label("2026", "th") == "พ.ศ. 2569"
    assert period_label("2026", "en") == "2026"
    assert period_label("2026-Q4", "en") == "Q4 2026"
    assert period_label("2026-12", "th") == "ธ.ค. 2569"
    assert period_label("FY2026", "en") == "FY 2026"


def test_kind_priority_and_centre_are_named_not_coded() -> None:
    from reports.dimensions import DIMENSIONS, lookup

    lk = lookup()
    assert DIMENSIONS["priority"].value_label(lk, "urgent", "th") == "เร่งด่วน"
    assert DIMENSIONS["kind"].value_label(lk, "tipoff", "en") == "Tip-off"
    centre = DIMENSIONS["centre"].value_label(lk, "PSC-1111", "th")
    assert centre != "PSC-1111" and centre.strip()
    assert DIMENSIONS["centre"].value_label(lk, "NOWHERE", "th") == "NOWHERE"  # unknown codes stay as they are
