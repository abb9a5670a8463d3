"""The auditor's console: any case's timeline and Temporal history (with its state at any moment), the access
log, and the event log's verification against its hash chain and against Temporal's history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import StaffRole
from api.deps import OptionalPrincipal, SessionDep, SettingsDep, TemporalDep
from api.errors import not_found
from api.history import check_against_history, fetch_runs
from api.routes import audit as audit_route
from api.routes.pages import render_page
from api.routes.staff import gate
from api.views import BANGKOK, ENGINE_KINDS, HISTORY_LABELS
from store import audit, models
from store.db import release

router = APIRouter(tags=["pages"], include_in_schema=False)
AUDITORS = frozenset({StaffRole.AUDITOR})
HISTORY_READERS = frozenset({StaffRole.AUDITOR, StaffRole.SUPERVISOR})


@router.get("/audit", response_class=HTMLResponse)
async def audit_home(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    case_id: Annotated[str | None, Query(max_length=32)] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Open a case's history, and read the access log (newest first)."""
    if (refused := gate(request, principal, AUDITORS)) is not None:
        return refused
    if request.query_params.get("open"):
        target = quote(request.query_params["open"].strip()[:32], safe="")
        return RedirectResponse(f"/audit/case/{target}", status_code=303)
    assert principal is not None
    log = await audit_route.read_access_log(principal, session, case_id or None, actor_id or None, None, page, 50)
    return render_page(
        request, settings, "audit.html", log=log, case_id=case_id or "", actor_id=actor_id or "", wide=True
    )


@router.get("/audit/case/{case_id}", response_class=HTMLResponse)
async def audit_case(
    case_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    principal: OptionalPrincipal,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
    engine: bool = False,
) -> Response:
    """The case's Temporal history (decoded), its state at ``as_of`` (a time in Bangkok unless it says its own
    offset), and the event log's verification. ``engine``: show the engine's own steps too."""
    if (refused := gate(request, principal, HISTORY_READERS)) is not None:
        return refused
    assert principal is not None
    case = await session.get(models.Case, case_id[:32])
    if case is None:
        raise not_found(f"No case {case_id}.", f"ไม่พบเรื่องเลขที่ {case_id}")
    moment, bad_as_of = None, False
    if as_of:
        try:
            moment = datetime.fromisoformat(as_of.strip())
        except ValueError:
            bad_as_of = True  # the page says so, and shows the whole history
    # One fetch of the history and one read of the event log, for both the table and the check; no connection
    # held while Temporal answers.
    await release(session)
    runs = await fetch_runs(client, case_id=case.case_id)
    rows = await audit.case_events(session, case_id=case.case_id)
    history = await audit_route.history_view(case, session, request, runs, client.data_converter, moment, rows)
    report = audit.chain_report(case.case_id, rows)
    if report.ok:
        report = await check_against_history(report, rows, runs, client.data_converter)
    await session.commit()
    return render_page(
        request,
        settings,
        "audit_case.html",
        case=case,
        history=history,
        report=report,
        as_of=_local_input(history.as_of.at) if history.as_of else (as_of or ""),
        bad_as_of=bad_as_of,
        engine=engine,
        engine_kinds=ENGINE_KINDS,
        labels=HISTORY_LABELS,
        wide=True,
    )


def _local_input(moment: datetime) -> str:
    """A moment as a ``datetime-local`` field holds it: Bangkok's wall clock, to the second."""
    return moment.astimezone(BANGKOK).replace(tzinfo=None).isoformat(timespec="seconds")
