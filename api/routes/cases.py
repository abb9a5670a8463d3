"""Staff and agency work on cases: read a case with its allowed actions, perform an action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select

from api.actions import action_model
from api.deps import CurrentActor, CurrentCase, SessionDep, TemporalDep
from api.errors import AppError, ErrorDetail, conflict
from api.service import perform_action
from api.views import case_view
from store import models
from workflows.models import ActionRequest
from workflows.process import EVENTS, State, TaskStatus, TaskView, decide

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


async def _load(session: SessionDep, case_id: str) -> tuple[list[models.CaseEvent], list[models.AgencyTask]]:
    events = (
        (
            await session.execute(
                select(models.CaseEvent).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
            )
        )
        .scalars()
        .all()
    )
    tasks = (
        (
            await session.execute(
                select(models.AgencyTask).where(models.AgencyTask.case_id == case_id).order_by(models.AgencyTask.id)
            )
        )
        .scalars()
        .all()
    )
    return list(events), list(tasks)


@router.get("/{case_id}")
async def get_case(case: CurrentCase, actor: CurrentActor, session: SessionDep, request: Request) -> dict[str, Any]:
    """The case, its timeline and the actions the caller may take now (with the fields each needs)."""
    events, tasks = await _load(session, case.case_id)
    return case_view(case, events=events, tasks=tasks, actor=actor, agencies=request.app.state.agencies)


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
    """Perform ``action`` (screen, accept, agency_accept, respond, close, withdraw) on the case."""
    if action not in EVENTS:
        raise AppError(
            status=422,
            code="unknown_action",
            message=f"'{action}' is not an action. Actions: {', '.join(sorted(EVENTS))}.",
            message_th=f"ไม่มีการดำเนินการ '{action}' การดำเนินการที่มี: {', '.join(sorted(EVENTS))}",
        )
    _, tasks = await _load(session, case.case_id)
    # The workflow's validator has the last word; this early check answers from the read model without a
    # round trip and gives the same reasons.
    early = decide(State(case.status), action, actor, None, [TaskView(t.agency, TaskStatus(t.status)) for t in tasks])
    if not early.allowed and early.code not in {"missing_fields"}:
        if early.code in {"role_not_allowed", "no_task"}:
            raise AppError(status=403, code=early.code, message=early.reason, message_th="ท่านไม่มีสิทธิ์ดำเนินการนี้กับเรื่องนี้")
        raise conflict(early.reason, "ไม่สามารถดำเนินการนี้ได้ในสถานะปัจจุบันของเรื่อง", code=early.code)
    try:
        payload = action_model(action).model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    data = payload.model_dump(mode="json", exclude_none=True)
    if "agencies" in data:
        known = request.app.state.agencies
        unknown = [code for code in data["agencies"] if code not in known]
        if unknown:
            raise AppError(
                status=422,
                code="unknown_agency",
                message=f"Unknown agency code(s): {', '.join(unknown)}.",
                message_th=f"ไม่พบรหัสหน่วยงาน: {', '.join(unknown)}",
                details=[
                    ErrorDetail(
                        field="agencies",
                        message=f"Unknown: {', '.join(unknown)}.",
                        message_th=f"ไม่พบ: {', '.join(unknown)}",
                    )
                ],
            )
        data["agencies"] = list(dict.fromkeys(data["agencies"]))
    await perform_action(client=client, case_id=case.case_id, request=ActionRequest(action, actor, data))
    await session.refresh(case)
    events, tasks = await _load(session, case.case_id)
    return case_view(case, events=events, tasks=tasks, actor=actor, agencies=request.app.state.agencies)
