"""The reports over HTTP: who may read what, bad queries, CSV and Excel exports parsed back, the background
export with progress, the access log, and the pages."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, select, text

from api.main import create_app
from config.settings import Settings
from reports.periods import bounds_utc
from store.db import Database
from store.models import AccessLog, UTCDateTime
from tests.api.conftest import AUDITOR, SUPERVISOR, agency, bearer
from tests.connection_guard import Guard
from tests.reports.conftest import RANGE
from tests.reports.seed import Seeded

SINCE, UNTIL = RANGE.since, RANGE.until
SCOPE = f"since={SINCE}&until={UNTIL}"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    guard = Guard()
    guard.watch_app(app)
    transport = httpx.ASGITransport(app=guard.guarded(app), raise_app_exceptions=False, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rongtuk") as c:
        yield c
    guard.check()


async def _count(db: Database, where: str = "", **params: Any) -> int:
    start, end = bounds_utc(SINCE, UNTIL)
    stmt = text(f"SELECT COUNT(*) FROM cases c WHERE c.received_at >= :a AND c.received_at < :b {where}")
    stmt = stmt.bindparams(bindparam("a", type_=UTCDateTime()), bindparam("b", type_=UTCDateTime()))
    async with db.sessions() as session:
        return int((await session.execute(stmt, {"a": start, "b": end, **params})).scalar_one())


async def test_who_may_read(client: httpx.AsyncClient, seeded: Seeded) -> None:
    assert (await client.get(f"/api/v1/reports/volume?{SCOPE}")).status_code == 401
    admin = await client.get(f"/api/v1/reports/volume?{SCOPE}", headers=bearer("root", "admin"))
    assert admin.status_code == 403
    assert "รายงาน" in admin.json()["message_th"] if "message_th" in admin.json() else admin.text
    for headers in (SUPERVISOR, AUDITOR, bearer("officer-1", "officer")):
        assert (await client.get(f"/api/v1/reports/spso?{SCOPE}", headers=headers)).status_code == 200
    other = await client.get(f"/api/v1/reports/volume?{SCOPE}&agency=MIN-MOI", headers=agency("MIN-MOT"))
    assert other.status_code == 403


async def test_agency_sees_only_its_own_figures(client: httpx.AsyncClient, db: Database, seeded: Seeded) -> None:
    own = await client.get(f"/api/v1/reports/totals?by=agency&{SCOPE}", headers=agency("MIN-MOT", head=True))
    assert own.status_code == 200
    rows = own.json()["rows"]
    assert [r["key"] for r in rows] == ["MIN-MOT"]
    expected = await _count(
        db, "AND EXISTS (SELECT 1 FROM agency_tasks t WHERE t.case_id = c.case_id AND t.agency = 'MIN-MOT')"
    )
    assert rows[0]["received"] == expected
    by_province = await client.get(f"/api/v1/reports/totals?by=province&{SCOPE}", headers=agency("MIN-MOT"))
    assert sum(r["received"] for r in by_province.json()["rows"]) == expected
    everyone = await client.get(f"/api/v1/reports/totals?by=province&{SCOPE}", headers=SUPERVISOR)
    assert sum(r["received"] for r in everyone.json()["rows"]) == await _count(db) > expected


async def test_bad_queries_are_422_in_both_languages(client: httpx.AsyncClient) -> None:
    bad = await client.get("/api/v1/reports/volume?by=shoe_size", headers=SUPERVISOR)
    assert bad.status_code == 422
    body = bad.text
    assert "shoe_size" in body and "ไม่รู้จักการจำแนก" in body
    backwards = await client.get("/api/v1/reports/volume?since=2024-05-01&until=2024-01-01", headers=SUPERVISOR)
    assert backwards.status_code == 422 and "until" in backwards.text
    assert (await client.get("/api/v1/reports/nonsense", headers=SUPERVISOR)).status_code == 422
    assert (await client.get("/api/v1/reports/volume?grain=week", headers=SUPERVISOR)).status_code == 422


async def test_filters_take_the_names_people_use_and_refuse_the_unknown(
    client: httpx.AsyncClient, db: Database, seeded: Seeded
) -> None:
    async def received(**params: str) -> int:
        scoped = {"by": "channel", "since": str(SINCE), "until": str(UNTIL), **params}
        answer = await client.get("/api/v1/reports/totals", params=scoped, headers=SUPERVISOR)
        assert answer.status_code == 200, (params, answer.text)
        return sum(row["received"] for row in answer.json()["rows"])

    # Compared as given, "Bangkok" and "bma" were empty reports: read as no complaints there.
    bangkok = await _count(db, "AND c.province = :p", p="กรุงเทพมหานคร")
    assert bangkok > 0
    for name in ("กรุงเทพมหานคร", "Bangkok", "กทม", "10"):
        assert await received(province=name) == bangkok, name
    owes = "AND EXISTS (SELECT 1 FROM agency_tasks t WHERE t.case_id = c.case_id AND t.agency = :code)"
    owed = await _count(db, owes, code="OCPB")
    assert owed > 0 and await received(agency="ocpb") == await received(agency="OCPB") == owed
    assert await received(agency="สำนักงานคณะกรรมการคุ้มครองผู้บริโภค") == owed, "its name, as on the board"
    roads = await _count(db, "AND c.category LIKE 'roads.%'")
    assert roads > 0 and await received(category="roads") == roads, "a group takes in its categories"
    assert await received(category="roads.pothole") == await _count(db, "AND c.category = 'roads.pothole'")

    params = {"agency": "BMX", "province": "Atlantis", "category": "roads.potholez"}
    bad = await client.get("/api/v1/reports/volume", params=params, headers=SUPERVISOR)
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["error"]["details"]] == ["query.agency", "query.province", "query.category"]
    channel = await client.get(f"/api/v1/reports/volume?{SCOPE}&channel=pigeon", headers=SUPERVISOR)
    assert channel.status_code == 422 and "pigeon" in channel.text
    page = await client.get(f"/reports?{SCOPE}&province=Atlantis", headers={**SUPERVISOR, "accept": "text/html"})
    assert page.status_code == 422 and "Atlantis" in page.text and "<html" in page.text


async def test_csv_and_excel_exports_match_the_table(client: httpx.AsyncClient, seeded: Seeded) -> None:
    query = f"by=region&grain=quarter&{SCOPE}&lang=en"
    table = (await client.get(f"/api/v1/reports/volume?{query}", headers=SUPERVISOR)).json()
    headers = [c["name"] for c in table["columns"]]
    expected = [[r[c["key"]] for c in table["columns"]] for r in table["rows"]]
    assert len(expected) > 8

    got = await client.get(f"/api/v1/reports/volume/export?format=csv&{query}", headers=SUPERVISOR)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    text_ = got.content.decode("utf-8")
    assert text_.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text_.lstrip("\ufeff"))))
    assert parsed[0] == headers
    assert parsed[1:] == [["" if v is None else str(v) for v in row] for row in expected]

    xlsx = await client.get(f"/api/v1/reports/volume/export?format=xlsx&{query}", headers=SUPERVISOR)
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == headers
    assert cells[1:] == expected


async def test_every_table_exports(client: httpx.AsyncClient, seeded: Seeded) -> None:
    for name in ("volume", "totals", "spso", "satisfaction", "repeat", "root-causes", "provinces"):
        table = (await client.get(f"/api/v1/reports/{name}?{SCOPE}", headers=AUDITOR)).json()
        got = await client.get(f"/api/v1/reports/{name}/export?format=csv&{SCOPE}", headers=AUDITOR)
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8").lstrip("\ufeff"))))
        assert len(rows) == len(table["rows"]) + 1, name
        xlsx = await client.get(f"/api/v1/reports/{name}/export?format=xlsx&{SCOPE}", headers=AUDITOR)
        sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).active
        assert sheet is not None and sheet.max_row == len(table["rows"]) + 1, name


async def test_case_list_export_is_logged_and_has_no_personal_data(
    client: httpx.AsyncClient, db: Database, seeded: Seeded
) -> None:
    before = datetime.now(UTC)
    got = await client.get(f"/api/v1/reports/cases/export?format=csv&{SCOPE}&lang=en", headers=SUPERVISOR)
    assert got.status_code == 200
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8").lstrip("\ufeff"))))
    assert len(rows) == await _count(db)
    assert set(rows[0]) >= {"Case", "Received", "Status", "Province", "Region", "Agencies", "Overdue"}
    text_ = got.text
    for personal in ("complainant", "+66", "report seed"):
        assert personal not in text_
    async with db.sessions() as session:
        logged = (
            (await session.execute(select(AccessLog).where(AccessLog.at >= before, AccessLog.what == "report:cases")))
            .scalars()
            .all()
        )
    assert [(r.actor_id, r.case_id) for r in logged] == [("sup-1", "*")]


async def test_background_export_shows_progress_and_belongs_to_its_owner(
    app: FastAPI, client: httpx.AsyncClient, db: Database, seeded: Seeded
) -> None:
    started = await client.post(f"/api/v1/reports/cases/jobs?format=xlsx&{SCOPE}", headers=SUPERVISOR)
    assert started.status_code == 202
    job = started.json()
    assert job["total"] == await _count(db) and job["status"] in {"running", "done"}
    await app.state.report_jobs.wait()
    status = (await client.get(f"/api/v1/reports/jobs/{job['id']}", headers=SUPERVISOR)).json()
    assert (status["status"], status["percent"], status["done"]) == ("done", 100, job["total"])
    assert (await client.get(f"/api/v1/reports/jobs/{job['id']}", headers=AUDITOR)).status_code == 404
    page = await client.get(f"/reports/jobs/{job['id']}", headers=SUPERVISOR)
    assert page.status_code == 200 and 'value="100"' in page.text and status["download"] in page.text
    file = await client.get(status["download"], headers=SUPERVISOR)
    book = openpyxl.load_workbook(io.BytesIO(file.content), read_only=True)
    sheet = book.active
    assert sheet is not None and sheet.max_row == job["total"] + 1

    csv_job = (await client.post(f"/api/v1/reports/spso/jobs?format=csv&{SCOPE}", headers=SUPERVISOR)).json()
    await app.state.report_jobs.wait()
    done = (await client.get(f"/api/v1/reports/jobs/{csv_job['id']}", headers=SUPERVISOR)).json()
    spso = (await client.get(f"/api/v1/reports/spso?{SCOPE}", headers=SUPERVISOR)).json()
    body = (await client.get(done["download"], headers=SUPERVISOR)).content.decode("utf-8")
    assert len(list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))) == len(spso["rows"]) + 1


async def test_reports_page(client: httpx.AsyncClient, seeded: Seeded) -> None:
    assert (await client.get("/reports")).status_code == 303
    page = await client.get(f"/reports?{SCOPE}&by=strategy", headers=SUPERVISOR)
    assert page.status_code == 200
    html = page.text
    assert html.count("<svg") == 4 and 'role="img"' in html
    assert "ไตรมาส 1/2566" in html and "ยุทธศาสตร์ชาติ" in html
    assert "/api/v1/reports/cases/export?format=xlsx" in html
    english = await client.get(f"/reports?{SCOPE}&lang=en", headers=SUPERVISOR)
    assert "Q1 2023" in english.text and "SPSO indicators" in english.text
    # The province is chosen from the list by name; the agency typed, with the codes and names offered.
    assert '<option value="เชียงใหม่" >Chiang Mai</option>' in english.text
    assert '<option value="BMA">Bangkok Metropolitan Administration</option>' in english.text
    chosen = await client.get(f"/reports?{SCOPE}&lang=en&province=Bangkok&agency=bma", headers=SUPERVISOR)
    assert '<option value="กรุงเทพมหานคร" selected>Bangkok</option>' in chosen.text
    assert "Showing only the cases of agency <strong>Bangkok Metropolitan Administration</strong>" in chosen.text


async def test_progress_while_an_export_runs(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Half-way through, the job says 50 % and its page reloads itself; then it finishes."""
    import asyncio

    from reports.jobs import ExportJob

    jobs = app.state.report_jobs if hasattr(app.state, "report_jobs") else None
    if jobs is None:
        await client.get("/api/v1/reports/jobs/none", headers=SUPERVISOR)  # creates the registry
        jobs = app.state.report_jobs
    halfway, finish = asyncio.Event(), asyncio.Event()

    async def produce(job: ExportJob) -> None:
        job.progress(300)
        halfway.set()
        await finish.wait()
        job.path.write_text("done", encoding="utf-8")
        job.progress(600)

    job = jobs.start(owner="sup-1", report="cases", fmt="csv", total=600, produce=produce)
    await halfway.wait()
    status = (await client.get(f"/api/v1/reports/jobs/{job.id}", headers=SUPERVISOR)).json()
    assert (status["status"], status["percent"], status["download"]) == ("running", 50, None)
    page = (await client.get(f"/reports/jobs/{job.id}", headers=SUPERVISOR)).text
    assert 'http-equiv="refresh"' in page and 'value="50"' in page and "300 / 600" in page
    assert (await client.get(f"/api/v1/reports/jobs/{job.id}/file", headers=SUPERVISOR)).status_code == 404
    finish.set()
    await jobs.wait()
    page = (await client.get(f"/reports/jobs/{job.id}", headers=SUPERVISOR)).text
    assert 'http-equiv="refresh"' not in page and 'value="100"' in page


async def test_pages_start_with_the_last_five_quarters(client: httpx.AsyncClient) -> None:
    from datetime import date

    from api.routes.reports import default_since
    from sla.calendar import BANGKOK

    assert default_since(date(2026, 12, 1)) == date(2025, 10, 1)
    assert default_since(date(2026, 1, 15)) == date(2025, 1, 1)
    page = await client.get("/reports", headers=SUPERVISOR)
    since = default_since(datetime.now(BANGKOK).date())
    assert f'name="since" value="{since}"' in page.text


async def test_reports_read_from_their_own_pool_with_the_longer_wait(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, seeded: Seeded
) -> None:
    """A report over years is one long statement: it reads from the reports' pool, which waits
    ``report_timeout_seconds``, so a slow report is never answered "the database is away" after the request
    pool's shorter wait. Every report route takes its connection there; the request pool serves only the
    sign-in's checks."""
    from sqlalchemy import event

    read: dict[str, list[str]] = {"requests": [], "reports": []}
    engines = {"requests": app.state.db.engine.sync_engine, "reports": app.state.report_db.engine.sync_engine}

    def listener(name: str) -> Any:
        return lambda _c, _cur, statement, *_a: read[name].append(" ".join(statement.split()))

    listeners = {name: listener(name) for name in engines}
    for name, engine in engines.items():
        event.listen(engine, "before_cursor_execute", listeners[name])
    try:
        for path in ("/api/v1/reports/spso", "/api/v1/reports/cases/export", "/reports", "/api/v1/reports/points"):
            answer = await client.get(f"{path}?{SCOPE}", headers=SUPERVISOR)
            assert answer.status_code == 200, (path, answer.text[:200])
    finally:
        for name, engine in engines.items():
            event.remove(engine, "before_cursor_execute", listeners[name])
    assert sum(" FROM cases" in s for s in read["reports"]) >= 4, read["reports"]
    assert not [s for s in read["requests"] if " FROM cases" in s or "agency_tasks" in s], read["requests"]
    if not settings.database_url.startswith("sqlite"):
        assert app.state.report_db.engine.pool.timeout() == settings.report_timeout_seconds
        assert app.state.db.engine.pool.timeout() == settings.database_timeout_seconds
