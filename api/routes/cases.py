"""Staff and agency work on cases: read a case with its allowed actions, perform an action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.casework import run_action, tasks_and_context, timeline_of
from api.deps import CurrentActor, CurrentCase, SessionDep, TemporalDep, log_read
from api.errors import forbidden
from api.responses import CaseOut
from api.views import case_view
from attachments.views import with_attachments
from store import models
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
# Documented here, read by access_reason(): why the reader opens the case, for the access log.
REASON_PARAMETER: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Access-Reason",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "Why you open this case (kept in the access log auditors read)",
        }
    ]
}


async def render(session: AsyncSession, case: models.Case, actor: Actor, request: Request) -> dict[str, Any]:
    """The staff view of the case; the read goes into the access log (PDPA: who saw what)."""
    await log_read(session, request, case_id=case.case_id, what="case")
    tasks, ctx = await tasks_and_context(session, case, request)
    events = await timeline_of(session, case)
    view = case_view(case, events=events, tasks=tasks, actor=actor, agencies=request.app.state.agencies, ctx=ctx)
    return await with_attachments(session, case, actor, view, events, prefix=f"/api/v1/cases/{case.case_id}")


@router.get("/{case_id}", openapi_extra=REASON_PARAMETER, response_model=CaseOut, response_model_exclude_unset=True)
async def get_case(case: CurrentCase, actor: CurrentActor, session: SessionDep, request: Request) -> dict[str, Any]:
    """The case, its timeline and the actions the caller may take now (with the fields each needs)."""
    return await render(session, case, actor, request)


@router.post("/{case_id}/actions/{action}", response_model=CaseOut, response_model_exclude_unset=True)
async def act(
    case: CurrentCase,
    action: Annotated[str, Path(max_length=32)],
    actor: CurrentActor,
    session: SessionDep,
    client: TemporalDep,
    request: Request,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """Perform ``action`` (screen, accept, agency_accept, respond, close, ...) on the case."""
    if actor.role is Role.AUDITOR:
        raise forbidden(
            "Auditors read cases; they never act on them.",
            "ผู้ตรวจสอบอ่านข้อมูลเรื่องได้เท่านั้น ไม่สามารถดำเนินการกับเรื่องได้",
            code="role_not_allowed",
        )
    await run_action(case=case, action=action, actor=actor, body=body, session=session, client=client, request=request)
    await session.refresh(case)
    return await render(session, case, actor, request)
