"""Staff and agency work on cases: read a case with its allowed actions, perform an action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.actions import action_model
from api.deps import CurrentActor, CurrentCase, SessionDep, TemporalDep, log_read
from api.errors import AppError, ErrorDetail, forbidden
from api.service import perform_action, refusal
from api.views import case_view, context_of
from store import models
from workflows.models import ActionRequest
from workflows.process import EVENTS, SYSTEM_EVENTS, Actor, Context, Role, State, decide

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
ACTIONS = sorted(EVENTS - SYSTEM_EVENTS)


async def timeline_of(session: AsyncSession, case: models.Case) -> list[models.CaseEvent]:
    """The case's transitions, in order."""
    query = select(models.CaseEvent).where(models.CaseEvent.case_id == case.case_id).order_by(models.CaseEvent.seq)
    return list((await session.execute(query)).scalars().all())


async def tasks_and_context(
    session: AsyncSession, case: models.Case, request: Request
) -> tuple[list[models.AgencyTask], Context]:
    """The case's agency tasks and the guards' context, from the read model."""
    query = select(models.AgencyTask).where(models.AgencyTask.case_id == case.case_id).order_by(models.AgencyTask.id)
    tasks = list((await session.execute(query)).scalars().all())
    return tasks, context_of(case, tasks, request.app.state.policy, datetime.now(UTC))


async def render(session: AsyncSession, case: models.Case, actor: Actor, request: Request) -> dict[str, Any]:
    """The staff view of the case; the read goes into the access log (PDPA: who saw what)."""
    await log_read(session, request, case_id=case.case_id, what="case")
    tasks, ctx = await tasks_and_context(session, case, request)
    events = await timeline_of(session, case)
    return case_view(case, events=events, tasks=tasks, actor=actor, agencies=request.app.state.agencies, ctx=ctx)


def _unknown_action(action: str) -> AppError:
    listed = ", ".join(ACTIONS)
    return AppError(
        status=422,
        code="unknown_action",
        message=f"'{action}' is not an action. Actions: {listed}.",
        message_th=f"ไม่มีการดำเนินการ '{action}' การดำเนินการที่มี: {listed}",
    )


async def run_action(
    *,
    case: models.Case,
    action: str,
    actor: Actor,
    body: dict[str, Any] | None,
    session: AsyncSession,
    client: Client,
    request: Request,
) -> None:
    """Validate ``action`` against the table and its field specs, then send it to the case's workflow."""
    if action not in EVENTS or action in SYSTEM_EVENTS:
        raise _unknown_action(action)
    _, ctx = await tasks_and_context(session, case, request)
    # The workflow's validator has the last word; this early check answers from the read model without a
    # round trip and gives the same reasons.
    early = decide(State(case.status), action, actor, None, ctx)
    if not early.allowed and early.code != "missing_fields":
        raise refusal(early.code, early.reason)
    try:
        payload = action_model(action).model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    data = payload.model_dump(mode="json", exclude_none=True)
    await _check_references(data, case, session, request)
    await perform_action(client=client, case_id=case.case_id, request=ActionRequest(action, actor, data))


async def _check_references(data: dict[str, Any], case: models.Case, session: AsyncSession, request: Request) -> None:
    """Agency codes and case numbers named in the payload must exist."""
    known = request.app.state.agencies
    codes = list(data.get("agencies", [])) + ([data["agency"]] if "agency" in data else [])
    if unknown := [code for code in codes if code not in known]:
        field = "agencies" if "agencies" in data else "agency"
        raise AppError(
            status=422,
            code="unknown_agency",
            message=f"Unknown agency code(s): {', '.join(unknown)}.",
            message_th=f"ไม่พบรหัสหน่วยงาน: {', '.join(unknown)}",
            details=[
                ErrorDetail(
                    field=field, message=f"Unknown: {', '.join(unknown)}.", message_th=f"ไม่พบ: {', '.join(unknown)}"
                )
            ],
        )
    if "agencies" in data:
        data["agencies"] = list(dict.fromkeys(data["agencies"]))
    original = data.get("original_case_id")
    if original is not None and (original == case.case_id or await session.get(models.Case, original) is None):
        raise AppError(
            status=422,
            code="unknown_case",
            message=f"Case {original} does not exist or is this case itself.",
            message_th=f"ไม่พบเรื่องเลขที่ {original} หรือเป็นเรื่องเดียวกัน",
            details=[
                ErrorDetail(
                    field="original_case_id", message="Name another existing case.", message_th="ระบุเลขที่เรื่องอื่นที่มีอยู่"
                )
            ],
        )


@router.get("/{case_id}", openapi_extra=REASON_PARAMETER)
async def get_case(case: CurrentCase, actor: CurrentActor, session: SessionDep, request: Request) -> dict[str, Any]:
    """The case, its timeline and the actions the caller may take now (with the fields each needs)."""
    return await render(session, case, actor, request)


@router.post("/{case_id}/actions/{action}")
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
