"""Reports for supervisors, auditors and executives: JSON tables, pages with charts and a map, CSV and Excel.

Who may read: complaint-centre staff (officers, supervisors, auditors) see every figure; agency staff and
agency heads see the figures of their own agency's cases only (any other ``agency`` is refused); citizens
(not signed in) get 401, administrators 403. Figures are counts; the case list and the map's case points,
which show single cases, are recorded in the access log (case ``*``: many cases, ``what`` names the report).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import AGENCY_ROLES, Principal, StaffRole
from api.deps import OptionalPrincipal, ReportSessionDep, SettingsDep, get_principal
from api.errors import AppError, forbidden, not_found
from api.routes import pages as site
from api.routes.board import known_filters
from api.schemas import Channel
from api.views import province_choices
from reports.caselist import CASE_COLUMNS, case_rows, count_cases
from reports.dimensions import DIMENSIONS, Lookup, lookup
from reports.export import csv_lines, csv_stream, rows_of, write_xlsx
from reports.figures import Filters, totals, volume
from reports.jobs import ExportJob, ExportJobs
from reports.mapdata import POINT_LIMIT, case_points, province_table
from reports.periods import Grain
from reports.spso import repeat_complaints, root_causes, satisfaction, spso_quarterly
from reports.table import Table
from reports.thaimap import BOUNDARY_CREDIT, bins, choropleth_svg, load_map
from sla.calendar import BANGKOK
from store import audit
from store.db import Database

__all__ = ["router"]

api = APIRouter(prefix="/api/v1/reports", tags=["reports"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()

_ALL_FIGURES = frozenset({StaffRole.OFFICER, StaffRole.SUPERVISOR, StaffRole.AUDITOR})


class ReportName(StrEnum):
    VOLUME = "volume"
    TOTALS = "totals"
    SPSO = "spso"
    SATISFACTION = "satisfaction"
    REPEAT = "repeat"
    ROOT_CAUSES = "root-causes"
    PROVINCES = "provinces"
    CASES = "cases"  # the case list: export only


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


# --- who may read, and what ------------------------------------------------------------------------------------


def report_reader(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """Staff who may read reports: centre staff, and agency staff for their own agency (403 for others)."""
    if principal.role in _ALL_FIGURES or principal.role in AGENCY_ROLES:
        return principal
    raise forbidden(
        "Reports are for complaint-centre and agency staff.",
        "รายงานสำหรับเจ้าหน้าที่ศูนย์รับเรื่องและหน่วยงานเท่านั้น",
    )


Reader = Annotated[Principal, Depends(report_reader)]


def _unprocessable(message: str, message_th: str, field: str) -> AppError:
    detail = {"field": field, "message": message, "message_th": message_th}
    return AppError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_report_query", message, message_th, details=[detail])


@dataclass(frozen=True)
class ReportQuery:
    """A report request: period grain, breakdown, filters (already held to the reader's scope), language."""

    grain: Grain
    by: str | None
    filters: Filters
    lang: str

    def params(self) -> dict[str, str]:
        """The query string that asks for the same report (links, exports)."""
        out = {"grain": self.grain.value, "lang": self.lang}
        if self.by:
            out["by"] = self.by
        for name in ("since", "until", "agency", "province", "category", "channel"):
            value = getattr(self.filters, name)
            if value is not None:
                out[name] = str(value)
        return out


def make_query(
    request: Request,
    reader: Principal,
    *,
    grain: Grain = Grain.QUARTER,
    by: str | None = None,
    since: date | None = None,
    until: date | None = None,
    agency: str | None = None,
    province: str | None = None,
    category: str | None = None,
    channel: str | None = None,
) -> ReportQuery:
    """Check a report request and hold it to what ``reader`` may see."""
    by = by or None
    if by is not None and by not in DIMENSIONS:
        raise _unprocessable(
            f"Unknown breakdown '{by}'; use one of: {', '.join(DIMENSIONS)}.",
            f"ไม่รู้จักการจำแนก '{by}' โปรดใช้: {', '.join(DIMENSIONS)}",
            "by",
        )
    if since is not None and until is not None and since > until:
        raise _unprocessable("'since' must not be after 'until'.", "วันเริ่มต้น (since) ต้องไม่อยู่หลังวันสิ้นสุด (until)", "since")
    if reader.role in AGENCY_ROLES:
        if agency not in (None, "", reader.agency):
            raise forbidden(
                f"Agency staff see their own agency's figures only; leave out 'agency' or use {reader.agency}.",
                f"เจ้าหน้าที่หน่วยงานดูได้เฉพาะตัวเลขของหน่วยงานตนเอง โปรดไม่ระบุ agency หรือระบุ {reader.agency}",
            )
        agency = reader.agency
    # A value the read model does not hold was an empty report, read as "no complaints there": the agency,
    # province and category as the board takes them (a code in any case, a name), else 422.
    known = known_filters(request, agency=agency, province=province, category=category)
    if channel and channel not in {c.value for c in Channel}:
        listed = ", ".join(c.value for c in Channel)
        raise _unprocessable(
            f"Unknown channel '{channel[:16]}'; use one of: {listed}.",
            f"ไม่รู้จักช่องทาง '{channel[:16]}' โปรดใช้: {listed}",
            "channel",
        )
    filters = Filters(
        since=since,
        until=until,
        agency=known["agency"],
        province=known["province"],
        category=known["category"],
        channel=channel or None,
    )
    return ReportQuery(grain=grain, by=by, filters=filters, lang=site._lang(request))


def report_query(
    request: Request,
    reader: Reader,
    grain: Grain = Grain.QUARTER,
    by: Annotated[str | None, Query(max_length=32, description="a dimension: " + ", ".join(DIMENSIONS))] = None,
    since: date | None = None,
    until: date | None = None,
    agency: Annotated[str | None, Query(max_length=200, description="Agency code, or its name")] = None,
    province: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
) -> ReportQuery:
    """The report request in the query string, held to the reader's scope (422 for a bad one)."""
    return make_query(
        request,
        reader,
        grain=grain,
        by=by,
        since=since,
        until=until,
        agency=agency,
        province=province,
        category=category,
        channel=channel,
    )


QueryDep = Annotated[ReportQuery, Depends(report_query)]


def _lookup(request: Request) -> Lookup:
    settings = request.app.state.settings
    return lookup(settings.categories_file, settings.regions_file)


async def build_table(name: ReportName, q: ReportQuery, session: AsyncSession, request: Request) -> Table:
    """The table a report name stands for."""
    lk, now = _lookup(request), datetime.now(UTC)
    match name:
        case ReportName.VOLUME:
            dimension = DIMENSIONS[q.by] if q.by else None
            return await volume(
                session, grain=q.grain, dimension=dimension, filters=q.filters, lk=lk, now=now, lang=q.lang
            )
        case ReportName.TOTALS:
            return await totals(
                session, dimension=DIMENSIONS[q.by or "category"], filters=q.filters, lk=lk, now=now, lang=q.lang
            )
        case ReportName.PROVINCES:
            return await province_table(session, filters=q.filters, now=now, lang=q.lang)
        case ReportName.SPSO:
            policy = request.app.state.policy
            return await spso_quarterly(
                session,
                filters=q.filters,
                calendar=request.app.state.calendar,
                stage1_limit=policy.stage1_response,
                stage2_limit=policy.stage2_response,
                lang=q.lang,
            )
        case ReportName.SATISFACTION:
            return await satisfaction(session, filters=q.filters, lang=q.lang)
        case ReportName.REPEAT:
            return await repeat_complaints(session, filters=q.filters, lang=q.lang)
        case ReportName.ROOT_CAUSES:
            return await root_causes(session, filters=q.filters, lang=q.lang)
    raise not_found("The case list is an export: use /api/v1/reports/cases/export.", "รายการเรื่องมีให้ส่งออกเท่านั้น")


async def log_report_read(session: AsyncSession, principal: Principal, what: str, request: Request) -> None:
    """Record that ``principal`` read case-level rows of a report (many cases: case id ``*``)."""
    await audit.record_access(
        session,
        at=datetime.now(UTC),
        actor_id=principal.subject,
        actor_role=principal.role.value,
        actor_agency=principal.agency,
        case_id="*",
        what=f"report:{what}"[:32],
        reason=(request.query_params.get("reason") or None),
    )


# --- JSON ------------------------------------------------------------------------------------------------------


class ColumnOut(BaseModel):
    key: str
    name: str
    numeric: bool


class TableOut(BaseModel):
    code: str
    title: str
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]


class DimensionOut(BaseModel):
    code: str
    name: str


class CatalogueOut(BaseModel):
    reports: list[str]
    dimensions: list[DimensionOut]
    grains: list[str]


class JobOut(BaseModel):
    id: str
    report: str
    format: str
    status: str
    done: int
    total: int
    percent: int
    progress_page: str
    download: str | None


def table_out(table: Table, lang: str) -> TableOut:
    return TableOut(
        code=table.code,
        title=table.title,
        columns=[ColumnOut(key=c.key, name=c.name(lang), numeric=c.numeric) for c in table.columns],
        rows=table.records(),
    )


def job_out(job: ExportJob) -> JobOut:
    return JobOut(
        id=job.id,
        report=job.report,
        format=job.fmt,
        status=job.status,
        done=job.done,
        total=job.total,
        percent=job.percent,
        progress_page=f"/reports/jobs/{job.id}",
        download=f"/api/v1/reports/jobs/{job.id}/file" if job.status == "done" else None,
    )


@api.get("", response_model=CatalogueOut)
async def catalogue(request: Request, reader: Reader) -> CatalogueOut:
    """What reports, breakdowns and period lengths there are."""
    lang = site._lang(request)
    return CatalogueOut(
        reports=[r.value for r in ReportName],
        dimensions=[DimensionOut(code=d.code, name=d.name(lang)) for d in DIMENSIONS.values()],
        grains=[g.value for g in Grain],
    )


def _jobs(request: Request) -> ExportJobs:
    jobs: ExportJobs | None = getattr(request.app.state, "report_jobs", None)
    if jobs is None:
        jobs = ExportJobs(request.app.state.settings.data_dir / "exports")
        request.app.state.report_jobs = jobs
    return jobs


@api.get("/jobs/{job_id}", response_model=JobOut)
async def job_status(job_id: str, request: Request, reader: Reader) -> JobOut:
    """How far a background export has got."""
    job = _jobs(request).get(job_id, reader.subject)
    if job is None:
        raise not_found()
    return job_out(job)


@api.get("/jobs/{job_id}/file")
async def job_file(job_id: str, request: Request, reader: Reader) -> Response:
    """The finished export's file."""
    job = _jobs(request).get(job_id, reader.subject)
    if job is None or job.status != "done":
        raise not_found("No finished export with this identifier.", "ไม่พบไฟล์ส่งออกที่เสร็จแล้วตามรหัสนี้")
    return FileResponse(job.path, filename=job.filename, media_type=_MEDIA[Format(job.fmt)])


class PointOut(BaseModel):
    latitude: float
    longitude: float
    state: str


@api.get("/points", response_model=list[PointOut])
async def points(q: QueryDep, request: Request, reader: Reader, session: ReportSessionDep) -> list[PointOut]:
    """The latest cases' map positions (at most 5,000; confidential ones about 1 km off), access-logged."""
    await log_report_read(session, reader, "points", request)
    found = await case_points(session, filters=q.filters, now=datetime.now(UTC))
    return [PointOut(latitude=p.latitude, longitude=p.longitude, state=p.state) for p in found]


@api.get("/{name}", response_model=TableOut)
async def report(name: ReportName, q: QueryDep, session: ReportSessionDep, request: Request) -> TableOut:
    """One report table, aggregated in the database, labelled in the caller's language (``?lang=en``)."""
    return table_out(await build_table(name, q, session, request), q.lang)


_MEDIA = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _disposition(name: str, fmt: Format) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return {"Content-Disposition": f'attachment; filename="rongtuk-{name}-{stamp}.{fmt.value}"'}


@api.get("/{name}/export")
async def export(
    name: ReportName,
    q: QueryDep,
    request: Request,
    reader: Reader,
    background: BackgroundTasks,
    format: Format = Format.CSV,
) -> Response:
    """The report as CSV (streamed as rows are read) or Excel; ``cases`` is the case list (access-logged)."""
    db: Database = request.app.state.report_db
    if name is ReportName.CASES:
        async with db.sessions() as session:
            await log_report_read(session, reader, "cases", request)
        lk, now = _lookup(request), datetime.now(UTC)

        async def rows() -> AsyncIterator[tuple[Any, ...]]:
            async with db.sessions() as session:
                async for row in case_rows(session, q.filters, lk, now=now):
                    yield row

        if format is Format.CSV:
            return StreamingResponse(
                csv_stream(CASE_COLUMNS, rows(), q.lang), media_type=_MEDIA[format], headers=_disposition(name, format)
            )
        path = await _xlsx_file([("cases", CASE_COLUMNS, rows())], q.lang)
        background.add_task(_remove, path)
        return FileResponse(path, media_type=_MEDIA[format], headers=_disposition(name, format))
    async with db.sessions() as session:
        table = await build_table(name, q, session, request)
    if format is Format.CSV:
        return StreamingResponse(
            iter(csv_lines(table.columns, table.rows, q.lang)),
            media_type=_MEDIA[format],
            headers=_disposition(name, format),
        )
    path = await _xlsx_file([(table.code, table.columns, rows_of(table))], q.lang)
    background.add_task(_remove, path)
    return FileResponse(path, media_type=_MEDIA[format], headers=_disposition(name, format))


async def _xlsx_file(sheets: Any, lang: str) -> Path:
    handle = tempfile.NamedTemporaryFile(prefix="rongtuk-report-", suffix=".xlsx", delete=False)
    handle.close()
    path = Path(handle.name)
    try:
        await write_xlsx(path, sheets=sheets, lang=lang)
    except BaseException:
        _remove(path)
        raise
    return path


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@api.post("/{name}/jobs", response_model=JobOut, status_code=202)
async def start_job(
    name: ReportName,
    q: QueryDep,
    request: Request,
    reader: Reader,
    session: ReportSessionDep,
    format: Format = Format.CSV,
) -> JobOut:
    """Start an export in the background; follow ``progress_page`` (or poll this job) until it is done."""
    db: Database = request.app.state.report_db
    lk, now = _lookup(request), datetime.now(UTC)
    if name is ReportName.CASES:
        await log_report_read(session, reader, "cases", request)
        total = await count_cases(session, q.filters)
    else:
        total = 1

    async def produce(job: ExportJob) -> None:
        async with db.sessions() as s:
            if name is ReportName.CASES:
                rows: AsyncIterator[tuple[Any, ...]] = case_rows(s, q.filters, lk, now=now)
                columns = CASE_COLUMNS
            else:
                table = await build_table(name, q, s, request)
                job.total = max(len(table.rows), 1)
                rows, columns = rows_of(table), table.columns
            if format is Format.XLSX:
                await write_xlsx(job.path, sheets=[(name.value, columns, rows)], lang=q.lang, progress=job.progress)
            else:
                with job.path.open("w", encoding="utf-8", newline="") as out:
                    async for chunk in csv_stream(columns, rows, q.lang, progress=job.progress):
                        out.write(chunk)

    job = _jobs(request).start(owner=reader.subject, report=name.value, fmt=format.value, total=total, produce=produce)
    return job_out(job)


# --- pages -----------------------------------------------------------------------------------------------------

TEXTS: dict[str, dict[str, str]] = {
    "th": {
        "title": "รายงาน",
        "lead": "สถิติเรื่องร้องทุกข์จากฐานข้อมูลของระบบ นับตามวันที่รับเรื่อง (เวลาประเทศไทย)",
        "scope": "แสดงเฉพาะเรื่องของหน่วยงาน",
        "since": "ตั้งแต่วันที่",
        "until": "ถึงวันที่",
        "grain": "ช่วงเวลา",
        "by": "จำแนกตาม",
        "agency": "หน่วยงาน",
        "all_provinces": "ทุกจังหวัด",
        "province": "จังหวัด",
        "show": "แสดงรายงาน",
        "month": "รายเดือน",
        "quarter": "รายไตรมาส",
        "year": "รายปี",
        "fiscal_year": "รายปีงบประมาณ",
        "overview": "ภาพรวม",
        "breakdown": "จำแนกตาม",
        "spso": "ตัวชี้วัดตามแบบ SPSO",
        "spso_lead": "ร้อยละของเรื่องที่ยุติภายในกำหนด (วันทำการ นับตาม ป.พ.พ. มาตรา 193/3) แยกตามขั้นตอน",
        "satisfaction": "ความพึงพอใจ",
        "learning": "การเรียนรู้จากเรื่องร้องเรียน",
        "map": "แผนที่รายจังหวัด",
        "export": "ส่งออก",
        "cases_export": "รายการเรื่องทั้งหมด (ไม่มีข้อมูลส่วนบุคคล)",
        "with_progress": "ส่งออกพร้อมแสดงความคืบหน้า",
        "empty": "ไม่มีข้อมูลในช่วงนี้",
        "chart_note": "ข้อมูลเดียวกับตารางด้านล่าง",
        "job": "การส่งออกรายงาน",
        "job_running": "กำลังส่งออก",
        "job_done": "ส่งออกเสร็จแล้ว",
        "job_failed": "ส่งออกไม่สำเร็จ กรุณาลองอีกครั้ง",
        "download": "ดาวน์โหลดไฟล์",
        "rows": "แถว",
        "back": "กลับไปหน้ารายงาน",
    },
    "en": {
        "title": "Reports",
        "lead": "Complaint figures from the system's own records, counted by the date received (Thailand time).",
        "scope": "Showing only the cases of agency",
        "since": "From",
        "until": "To",
        "grain": "Period",
        "by": "Break down by",
        "agency": "Agency",
        "all_provinces": "All provinces",
        "province": "Province",
        "show": "Show report",
        "month": "Monthly",
        "quarter": "Quarterly",
        "year": "Yearly",
        "fiscal_year": "By fiscal year",
        "overview": "Overview",
        "breakdown": "Breakdown by",
        "spso": "SPSO indicators",
        "spso_lead": "Share of cases closed in time, per stage (working days, counted per Civil and Commercial "
        "Code s.193/3).",
        "satisfaction": "Satisfaction",
        "learning": "Learning from complaints",
        "map": "Map by province",
        "export": "Export",
        "cases_export": "All cases (no personal data)",
        "with_progress": "Export with progress",
        "empty": "No figures for this period.",
        "chart_note": "The same figures as the table below.",
        "job": "Report export",
        "job_running": "Exporting",
        "job_done": "Export finished",
        "job_failed": "The export failed; please try again.",
        "download": "Download the file",
        "rows": "rows",
        "back": "Back to the reports",
    },
}


@dataclass(frozen=True)
class Section:
    """A block of the reports page: a table, its chart and its exports."""

    id: str
    heading: str
    table: Table
    report: str
    chart: str | None = None
    lead: str | None = None
    params: str = ""


def default_since(today: date) -> date:
    """Where the pages start when no range is asked for: the same quarter a year ago (five quarters), so a
    page opened without thinking stays quick on years of cases; the form widens it."""
    return date(today.year - 1, 3 * ((today.month - 1) // 3) + 1, 1)


def _today() -> date:
    return datetime.now(UTC).astimezone(BANGKOK).date()


def _login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def _query_string(params: dict[str, str], **extra: str) -> str:
    from urllib.parse import urlencode

    return urlencode({**params, **extra})


@pages.get("/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    session: ReportSessionDep,
    grain: Grain = Grain.QUARTER,
    by: Annotated[str | None, Query(max_length=32)] = None,
    since: date | None = None,
    until: date | None = None,
    agency: Annotated[str | None, Query(max_length=200, description="Agency code, or its name")] = None,
    province: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The reports page: overview, a breakdown, the SPSO indicators, satisfaction, repeats and root causes."""
    if principal is None:
        return _login(request)
    reader = report_reader(principal)
    if since is None and until is None:
        since = default_since(_today())
    q = make_query(
        request, reader, grain=grain, by=by or "category", since=since, until=until, agency=agency, province=province
    )
    t, lk, now = TEXTS[q.lang], _lookup(request), datetime.now(UTC)
    by = q.by or "category"
    overview = await volume(session, grain=q.grain, dimension=None, filters=q.filters, lk=lk, now=now, lang=q.lang)
    breakdown = await totals(session, dimension=DIMENSIONS[by], filters=q.filters, lk=lk, now=now, lang=q.lang)
    spso = await build_table(ReportName.SPSO, q, session, request)
    sat = await satisfaction(session, filters=q.filters, lang=q.lang)
    repeats = await repeat_complaints(session, filters=q.filters, lang=q.lang)
    causes = await root_causes(session, filters=q.filters, lang=q.lang)

    def series(table: Table, *keys: str) -> list[Any]:
        from reports.charts import Series

        return [Series(table.columns[table.index(k)].name(q.lang), table.column(k)) for k in keys]

    from reports.charts import bar_chart, line_chart

    labels = overview.column("period_label")
    top = breakdown.rows[:12]
    top_table = Table(breakdown.code, breakdown.title, breakdown.columns, top)
    params = q.params()
    sections = [
        Section(
            "overview",
            t["overview"],
            overview,
            "volume",
            bar_chart(overview.title, labels, series(overview, "received", "open", "overdue", "closed")),
            params=_query_string({k: v for k, v in params.items() if k != "by"}),
        ),
        Section(
            "breakdown",
            f"{t['breakdown']} {DIMENSIONS[by].name(q.lang)}",
            breakdown,
            "totals",
            bar_chart(breakdown.title, top_table.column("label"), series(top_table, "received", "overdue")),
            params=_query_string(params),
        ),
        Section(
            "spso",
            t["spso"],
            spso,
            "spso",
            line_chart(
                spso.title, spso.column("period_label"), series(spso, "s1_within_pct", "s2_within_pct"), top=100
            ),
            lead=t["spso_lead"],
            params=_query_string(params),
        ),
        Section(
            "satisfaction",
            t["satisfaction"],
            sat,
            "satisfaction",
            line_chart(sat.title, sat.column("period_label"), series(sat, "average"), top=5),
            params=_query_string(params),
        ),
        Section("repeat", repeats.title, repeats, "repeat", params=_query_string(params)),
        Section("root-causes", causes.title, causes, "root-causes", params=_query_string(params)),
    ]
    return site._render(
        request,
        settings,
        "reports.html",
        r=t,
        user=principal,
        q=q,
        sections=sections,
        dimensions=list(DIMENSIONS.values()),
        grains=list(Grain),
        all_agencies=reader.role not in AGENCY_ROLES,
        agencies=request.app.state.agencies,
        provinces=province_choices(q.lang),
        cases_params=_query_string(params),
    )


@pages.get("/reports/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(job_id: str, request: Request, settings: SettingsDep, principal: OptionalPrincipal) -> Response:
    """An export's progress; the page reloads itself every two seconds until the file is ready."""
    if principal is None:
        return _login(request)
    job = _jobs(request).get(job_id, principal.subject)
    if job is None:
        raise not_found()
    lang = site._lang(request)
    return site._render(request, settings, "reports_job.html", r=TEXTS[lang], job=job_out(job))


MAP_TEXTS: dict[str, dict[str, str]] = {
    "th": {
        "title": "แผนที่เรื่องร้องทุกข์รายจังหวัด",
        "received": "จำนวนเรื่อง",
        "overdue_pct": "ร้อยละเรื่องเกินกำหนด",
        "measure": "แสดงสีตาม",
        "points": "จุดที่ตั้งของเรื่อง (ล่าสุด {n} เรื่อง)",
        "no_points": "ไม่แสดงจุดที่ตั้ง",
        "show_points": "แสดงจุดที่ตั้งของเรื่อง",
        "overdue": "เกินกำหนด",
        "open": "กำลังดำเนินการ",
        "closed": "ยุติแล้ว",
        "none": "ไม่มี",
        "missing": "ยังไม่ได้ติดตั้งข้อมูลขอบเขตจังหวัด (make install) จึงแสดงเฉพาะตาราง",
        "table": "ตารางข้อมูลของแผนที่",
    },
    "en": {
        "title": "Complaints by province",
        "received": "Cases received",
        "overdue_pct": "% of open cases overdue",
        "measure": "Colour by",
        "points": "Case positions (latest {n})",
        "no_points": "Hide case positions",
        "show_points": "Show case positions",
        "overdue": "Overdue",
        "open": "Open",
        "closed": "Closed",
        "none": "None",
        "missing": "The province boundaries are not installed (make install): showing the table only.",
        "table": "The map's figures as a table",
    },
}


@pages.get("/reports/map", response_class=HTMLResponse)
async def map_page(
    request: Request,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    session: ReportSessionDep,
    measure: Literal["received", "overdue_pct"] = "received",
    points: bool = True,
    since: date | None = None,
    until: date | None = None,
    agency: Annotated[str | None, Query(max_length=200, description="Agency code, or its name")] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Thailand by province: a choropleth of the cases received or the share overdue, the cases' points,
    and the same figures as a table."""
    if principal is None:
        return _login(request)
    reader = report_reader(principal)
    if since is None and until is None:
        since = default_since(_today())
    q = make_query(request, reader, since=since, until=until, agency=agency, category=category, channel=channel)
    t, now = MAP_TEXTS[q.lang], datetime.now(UTC)
    table = await province_table(session, filters=q.filters, now=now, lang=q.lang)
    values = {row[0]: row[table.index(measure)] for row in table.rows}
    limits = bins([v for v in values.values() if v is not None])
    thai_map = load_map()
    shown: list[Any] = []
    if points:
        await log_report_read(session, reader, "points", request)
        shown = await case_points(session, filters=q.filters, now=now)
    unit = "%" if measure == "overdue_pct" else ""
    svg = (
        choropleth_svg(
            thai_map,
            values=values,
            names=dict(zip(table.column("code"), table.column("label"), strict=True)),
            limits=limits,
            title=f"{t['title']}: {t[measure]}",
            unit=unit,
            points=shown,
        )
        if thai_map is not None
        else None
    )
    params = {k: v for k, v in q.params().items() if k not in {"grain", "by"}}
    legend = [
        (f"rt-sw{i + 1}", f"≤ {limit:,.1f}{unit}" if unit else f"≤ {limit:,.0f}") for i, limit in enumerate(limits)
    ]
    return site._render(
        request,
        settings,
        "reports_map.html",
        r=TEXTS[q.lang],
        m=t,
        measure=measure,
        svg=svg,
        table=table,
        legend=legend,
        points=points,
        point_count=len(shown),
        point_limit=POINT_LIMIT,
        credit=BOUNDARY_CREDIT[0 if q.lang == "en" else 1],
        params=_query_string(params),
        measure_links={
            m: _query_string(params, measure=m, points=str(points).lower()) for m in ("received", "overdue_pct")
        },
        points_link=_query_string(params, measure=measure, points=str(not points).lower()),
    )


router.include_router(api)
router.include_router(pages)
