"""Staff and agency work on cases: read a case with its allowed actions, perform an action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.casework import action_request_view, run_action, tasks_and_context, timeline_of
from api.deps import CurrentActor, CurrentCase, SessionDep, TemporalDep, log_read
from api.errors import forbidden
from api.responses import ACTION_RESPONSES, ActionRequestOut, CaseOut, IdempotencyKeyHeader, answer_response
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


async def render(
    session: AsyncSession, case: models.Case, actor: Actor, request: Request, *, action: str | None = None
) -> dict[str, Any]:
    """The staff view of the case; the read goes into the access log (PDPA: who saw what): the case opened,
    or for an action's answer (which shows the case too) ``action:<action>``, committed by ``run_action`` with
    the key's answer."""
    what = "case" if action is None else f"action:{action}"
    await log_read(session, request, case_id=case.case_id, what=what, commit=action is None)
    tasks, ctx = await tasks_and_context(session, case, request)
    events = await timeline_of(session, case)
    state = request.app.state
    view = case_view(
        case,
        events=events,
        tasks=tasks,
        actor=actor,
        agencies=state.agencies,
        ctx=ctx,
        centres=state.centres,
        policy=state.policy,
    )
    return await with_attachments(session, case, actor, view, events, prefix=f"/api/v1/cases/{case.case_id}")


@router.get("/{case_id}", openapi_extra=REASON_PARAMETER, response_model=CaseOut, response_model_exclude_unset=True)
async def get_case(case: CurrentCase, actor: CurrentActor, session: SessionDep, request: Request) -> dict[str, Any]:
    """The case, its timeline and the actions the caller may take now (with the fields each needs)."""
    return await render(session, case, actor, request)


@router.post(
    "/{case_id}/actions/{action}",
    response_model=CaseOut,
    response_model_exclude_unset=True,
    responses=ACTION_RESPONSES,
)
async def act(
    case: CurrentCase,
    action: Annotated[str, Path(max_length=32)],
    actor: CurrentActor,
    session: SessionDep,
    client: TemporalDep,
    request: Request,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Perform ``action`` (screen, accept, agency_accept, respond, close, ...) on the case. With an
    ``Idempotency-Key`` a retry acts once and gets the same answer; 202 with a Location when the case's
    workflow has not answered in time (the result is then read there)."""
    if actor.role is Role.AUDITOR:
        raise forbidden(
            "Auditors read cases; they never act on them.",
            "ผู้ตรวจสอบอ่านข้อมูลเรื่องได้เท่านั้น ไม่สามารถดำเนินการกับเรื่องได้",
            code="role_not_allowed",
        )

    async def view() -> dict[str, Any]:
        return CaseOut.model_validate(await render(session, case, actor, request, action=action)).model_dump(
            mode="json", exclude_unset=True
        )

    answer = await run_action(
        case=case,
        action=action,
        actor=actor,
        body=body,
        session=session,
        client=client,
        request=request,
        key=key,
        render=view,
    )
    return answer_response(answer)


@router.get("/{case_id}/action-requests/{request_id}", response_model=ActionRequestOut)
async def action_request(
    case: CurrentCase,
    request_id: Annotated[str, Path(max_length=64)],
    actor: CurrentActor,
    session: SessionDep,
    client: TemporalDep,
    request: Request,
) -> dict[str, Any]:
    """The result of an action that was answered 202: pending, applied or refused."""

    async def view(action: str) -> dict[str, Any]:
        # The action's answer, kept for the caller's retry with its key: access-logged as the action's answer
        # (this reply itself shows only where the action stands), committed here as the key is kept apart.
        await session.refresh(case)
        out = CaseOut.model_validate(await render(session, case, actor, request, action=action)).model_dump(
            mode="json", exclude_unset=True
        )
        await session.commit()
        return out

    return await action_request_view(
        case=case, request_id=request_id, actor=actor, session=session, client=client, request=request, render=view
    )
