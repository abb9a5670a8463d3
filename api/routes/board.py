"""The supervisor board (cases, most late first) and the Prometheus metrics, both read from the read model.

Neither keeps state in the process: every replica of the API answers from the same tables, so the board
and the metrics agree whichever replica is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from api.deps import CurrentActor, SessionDep
from api.errors import AppError, ErrorDetail, forbidden
from api.responses import BoardPage, StuckPage
from api.schemas import find_province
from api.views import BANGKOK, agency_view, classification_view, expected_date
from config.agencies import Agency
from config.centres import Centres
from config.reference import regions_by_province
from delivery.queries import delivery_collector
from domain.complaint import Kind, Priority
from intake.relay import lag_collector
from screening.service import reference_from_settings
from sla.calendar import WorkingCalendar
from sla.policy import SlaPolicy
from store.queries import (
    CaseItem,
    count_stuck_cases,
    event_totals,
    list_cases,
    open_cases_by_state,
    overdue_tasks_by_agency,
    stuck_cases,
)
from workflows.process import STATE_LABELS, Actor, Role, State

__all__ = ["CalendarDep", "board_item_view", "get_calendar", "list_board", "metrics", "metrics_router", "router"]

router = APIRouter(prefix="/api/v1/cases", tags=["supervisor"])
metrics_router = APIRouter(tags=["ops"])


# Staff who oversee all cases; agency staff see their own agency's work only, citizens none of it.
_ALL_CASES_ROLES = frozenset({Role.SUPERVISOR, Role.OFFICER, Role.AUDITOR})


# --- the working-day calendar ------------------------------------------------------------------------------


def get_calendar(request: Request) -> WorkingCalendar:
    """The app's working-day calendar (built once, at start-up, from the settings)."""
    return request.app.state.calendar  # type: ignore[no-any-return]


CalendarDep = Annotated[WorkingCalendar, Depends(get_calendar)]


# --- the board ---------------------------------------------------------------------------------------------


def _scope(actor: Actor, agency: str | None) -> str | None:
    """The agency filter the caller may use: agency staff are held to their own agency."""
    if actor.role in _ALL_CASES_ROLES:
        return agency
    if actor.role is Role.AGENCY:
        if agency is not None and agency != actor.agency:
            raise forbidden(
                f"Agency staff see their own agency's cases only; leave out 'agency' or use {actor.agency}.",
                f"เจ้าหน้าที่หน่วยงานดูได้เฉพาะเรื่องของหน่วยงานตนเอง โปรดไม่ระบุ agency หรือระบุ {actor.agency}",
            )
        return actor.agency
    raise forbidden(
        "The case board is for complaint-centre and agency staff. "
        "Citizens follow their case with its tracking code at /api/v1/track/{code}.",
        "รายการเรื่องร้องทุกข์สำหรับเจ้าหน้าที่ศูนย์และหน่วยงานเท่านั้น ผู้ร้องติดตามเรื่องได้ด้วยรหัสติดตามที่ /api/v1/track/{code}",
    )


def agency_meant(agencies: Mapping[str, Agency], raw: str) -> str | None:
    """The agency a filter value means: its code in any case, its Thai or English name, or a part of a name
    only one agency has ("ลาดพร้าว" is the Lat Phrao district office, typed into a page's field without picking
    from its list); None when nothing or several match."""
    typed = raw.strip().casefold()
    if typed.upper() in agencies:
        return typed.upper()
    names = [(a.code, a.name_th.casefold(), a.name_en.casefold()) for a in agencies.values()]
    if exact := [code for code, th, en in names if typed in (th, en)]:
        return exact[0] if len(exact) == 1 else None
    partial = [code for code, th, en in names if typed in th or typed in en]
    return partial[0] if len(partial) == 1 else None


def province_meant(raw: str) -> str | None:
    """The read model's (geothai's Thai) name of the province a Thai or English name, a name people use (กทม,
    bkk) or a DOPA code means; None for none."""
    found = find_province(raw)
    return found.name_th if found else None


# What to say of a value a filter does not know, and where to find the ones it does.
_UNKNOWN = {
    "agency": (
        "no agency has this code or name, or several do; GET /api/v1/agencies lists them.",
        "ไม่มีหน่วยงานที่มีรหัสหรือชื่อนี้ หรือมีหลายหน่วยงาน ดูรายชื่อหน่วยงานได้ที่ GET /api/v1/agencies",
    ),
    "province": (
        "no province has this name; give its Thai or English name (or กทม, bkk), or its DOPA code.",
        "ไม่พบจังหวัดนี้ โปรดระบุชื่อจังหวัดภาษาไทยหรืออังกฤษ (หรือ กทม, bkk) หรือรหัสจังหวัดของกรมการปกครอง",
    ),
    "centre": (
        "no receiving centre has this code; GET /api/v1/centres lists them.",
        "ไม่มีศูนย์รับเรื่องรหัสนี้ ดูรายชื่อศูนย์ได้ที่ GET /api/v1/centres",
    ),
    "region": ("must be one of: {regions}.", "ต้องเป็นภาคใดภาคหนึ่งต่อไปนี้: {regions}"),
    "category": (
        "no category or group has this code; GET /api/v1/categories lists them.",
        "ไม่มีประเภทหรือกลุ่มประเภทรหัสนี้ ดูรายการได้ที่ GET /api/v1/categories",
    ),
}


def known_filters(request: Request, **given: str | None) -> dict[str, str | None]:
    """Each filter value as the read model keeps it (None when not given), or one 422 naming every value the
    board does not know: compared as given, a mistyped agency or centre code, a province the read model has no
    name for or a category not in the reference data listed nothing, and an empty board (or report: the
    reports use this too) reads as "no such cases". The board page refuses them too."""
    state = request.app.state
    reference = reference_from_settings(state.settings)
    regions = sorted({r.code for r in regions_by_province().values()})
    meant: dict[str, Callable[[str], str | None]] = {
        "agency": lambda v: agency_meant(state.agencies, v),
        "province": province_meant,
        "centre": lambda v: v.upper() if state.centres is None or v.upper() in state.centres else None,
        "region": lambda v: v.lower() if v.lower() in regions else None,
        "category": lambda v: v if v in reference.categories or v in reference.groups else None,
    }
    known: dict[str, str | None] = {}
    problems: list[ErrorDetail] = []
    for name, raw in given.items():
        value = raw.strip() if raw else ""
        known[name] = meant[name](value) if value else None
        if value and known[name] is None:
            en, th = (text.format(regions=", ".join(regions)) for text in _UNKNOWN[name])
            shown = f"“{value[:40]}”"
            problems.append(ErrorDetail(field=f"query.{name}", message=f"{shown}: {en}", message_th=f"{shown}: {th}"))
    if problems:
        named = ", ".join(p.field or "" for p in problems)
        raise AppError(
            status=422,
            code="unknown_filter",
            message=f"The board has no such filter value: {named}.",
            message_th=f"ไม่มีค่าตัวกรองนี้ในรายการเรื่อง: {named}",
            details=problems,
        )
    return known


def _status_view(status: str) -> dict[str, str]:
    # A state added to the process before its labels must not break the whole board.
    try:
        en, th = STATE_LABELS[State(status)]
    except (KeyError, ValueError):
        en = th = status
    return {"code": status, "label_en": en, "label_th": th}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(BANGKOK).isoformat() if moment else None


def board_item_view(
    item: CaseItem,
    *,
    actor: Actor,
    agencies: Mapping[str, Agency],
    centres: Centres | None = None,
    policy: SlaPolicy | None = None,
) -> dict[str, Any]:
    """One board row as the API shows it: deadline facts, never the complainant's identity."""
    expected = expected_date(item.due_at)  # the day that due_at ends
    return {
        "case_id": item.case_id,
        # Agencies never see a confidential complainant's tracking code (as on the case page).
        "tracking_code": None if actor.role is Role.AGENCY and item.confidential else item.tracking_code,
        "status": _status_view(item.status),
        "stage": item.stage,
        "province": item.province,
        "category": item.category,
        **classification_view(
            kind=item.kind,
            priority=item.priority,
            centre=item.centre,
            sla_class=item.sla_class,
            region=item.region,
            centres=centres,
            policy=policy,
        ),
        "agencies": [agency_view(code, dict(agencies)) for code in item.agencies],
        "received_at": _iso(item.received_at),
        "due_at": _iso(item.due_at),
        # The calendar day the current step is due (``expected_by`` is only ever the date promised to the
        # complainant).
        "due_date": expected.isoformat() if expected else None,
        "due_rule": item.due_rule,
        "overdue": item.overdue,
        # Whole working days after the deadline's date: 0 on the day a case falls due at midnight, though
        # it is already overdue then.
        "working_days_late": item.working_days_late,
        # Due by the end of the next working day and not yet overdue (what ``at_risk=true`` selects).
        "at_risk": item.at_risk,
        "escalation_level": item.escalation_level,
    }


@router.get("", response_model=BoardPage, response_model_exclude_unset=True)
async def list_board(
    actor: CurrentActor,
    session: SessionDep,
    calendar: CalendarDep,
    request: Request,
    overdue: Annotated[bool | None, Query(description="Open cases past their deadline (false: all others)")] = None,
    at_risk: Annotated[
        bool | None, Query(description="Open cases due by the end of the next working day, not yet overdue")
    ] = None,
    open_only: Annotated[bool | None, Query(description="Cases not ended yet (false: the ended ones)")] = None,
    agency: Annotated[
        str | None,
        Query(max_length=200, description="Cases with a task this agency (code, or its name) has not answered yet"),
    ] = None,
    stage: Annotated[int | None, Query(ge=1, le=2, description="SPSO stage")] = None,
    province: Annotated[
        str | None, Query(max_length=100, description="Province: Thai or English name (or กทม, bkk), or DOPA code")
    ] = None,
    status: Annotated[State | None, Query(description="Process state")] = None,
    kind: Annotated[Kind | None, Query(description="complaint, suggestion, request or tipoff")] = None,
    priority: Annotated[Priority | None, Query(description="normal or urgent")] = None,
    centre: Annotated[
        str | None, Query(max_length=32, description="Receiving centre code (config/centres.yaml)")
    ] = None,
    region: Annotated[
        str | None, Query(max_length=16, description="Region of the province (config/regions.yaml, six regions)")
    ] = None,
    category: Annotated[
        str | None, Query(max_length=100, description="Category code, or a group code for all its categories")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Open cases before ended ones, urgent first, then most late first, for supervisors, officers and
    auditors (all) and agency staff (their own); filtered by kind, priority, receiving centre, region, category
    and more."""
    known = known_filters(request, agency=agency, province=province, centre=centre, region=region, category=category)
    scoped_agency = _scope(actor, known["agency"])
    now = datetime.now(UTC)
    result = await list_cases(
        session,
        now=now,
        calendar=calendar,
        overdue=overdue,
        at_risk=at_risk,
        open_only=open_only,
        agency=scoped_agency,
        stage=stage,
        province=known["province"],
        status=status.value if status is not None else None,
        kind=kind.value if kind is not None else None,
        priority=priority.value if priority is not None else None,
        centre=known["centre"],
        region=known["region"],
        category=known["category"],
        page=page,
        page_size=page_size,
    )
    agencies: Mapping[str, Agency] = request.app.state.agencies
    return {
        "items": [
            board_item_view(
                item, actor=actor, agencies=agencies, centres=request.app.state.centres, policy=request.app.state.policy
            )
            for item in result.items
        ],
        "total": result.total,
        "total_exact": result.total_exact,
        "page": result.page,
        "page_size": result.page_size,
        "as_of": now.astimezone(BANGKOK).isoformat(),
    }


@router.get("/stuck", response_model=StuckPage)
async def list_stuck(actor: CurrentActor, session: SessionDep) -> dict[str, Any]:
    """Cases whose latest transition the read model refused: they go on in Temporal, their rows lag behind."""
    if actor.role not in {Role.SUPERVISOR, Role.AUDITOR, Role.OFFICER}:
        raise forbidden("Only PSC staff see stuck cases.", "เฉพาะเจ้าหน้าที่ศูนย์ฯ ดูรายการเรื่องที่ค้างได้")
    items, total = await stuck_cases(session)
    return {
        "items": [
            {
                "case_id": c.case_id,
                "tracking_code": c.tracking_code,
                "status": _status_view(c.status),
                "last_seq": c.last_seq,
                "stuck_at": _iso(c.stuck_at),
                "reason": c.stuck_reason,
            }
            for c in items
        ],
        "total": total,
        "remedy": "rongtuk db rebuild --case CASE_ID (after fixing the cause)",
    }


# --- metrics -----------------------------------------------------------------------------------------------


class _ReadModelCollector(Collector):
    """Figures read from the read model at scrape time, served as Prometheus metric families."""

    def __init__(
        self,
        open_cases: Mapping[str, int],
        overdue_tasks: Mapping[str, int],
        totals: Mapping[str, int],
        stuck: int = 0,
    ):
        self._open_cases = open_cases
        self._overdue_tasks = overdue_tasks
        self._totals = totals
        self._stuck = stuck

    def collect(self) -> Iterable[Metric]:
        open_cases = GaugeMetricFamily("rongtuk_open_cases", "Cases in progress, by process state.", labels=["state"])
        for state, n in sorted(self._open_cases.items()):
            open_cases.add_metric([state], n)
        yield open_cases
        overdue = GaugeMetricFamily(
            "rongtuk_overdue_tasks",
            "Agency tasks not answered yet (assigned or accepted) whose deadline has passed, by agency.",
            labels=["agency"],
        )
        for agency, n in sorted(self._overdue_tasks.items()):
            overdue.add_metric([agency], n)
        yield overdue
        # Counters named without "_total": the client library appends it.
        yield CounterMetricFamily(
            "rongtuk_sla_breaches", "SLA breaches recorded on case timelines.", value=self._totals["sla_breaches"]
        )
        yield GaugeMetricFamily(
            "rongtuk_stuck_cases",
            "Cases whose latest transition the read model refused (see GET /api/v1/cases/stuck).",
            value=self._stuck,
        )
        yield CounterMetricFamily(
            "rongtuk_escalations",
            "Escalations recorded on case timelines, by the system and by hand.",
            value=self._totals["escalations"],
        )


@metrics_router.get("/metrics", response_class=Response)
async def metrics(session: SessionDep, request: Request) -> Response:
    """Prometheus metrics computed from the read model, so that every replica reports the same figures."""
    now = datetime.now(UTC)
    collector = _ReadModelCollector(
        await open_cases_by_state(session),
        await overdue_tasks_by_agency(session, now=now),
        await event_totals(session),
        await count_stuck_cases(session),
    )
    # A registry per scrape: the figures belong to this request, and no process metric (which would differ
    # between replicas) slips in from the global registry.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    registry.register(await delivery_collector(session, now=now))
    registry.register(await lag_collector(session, now=now))
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry), media_type=content_type)
