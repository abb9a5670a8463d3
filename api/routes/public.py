"""Public tracking by tracking code: no sign-in, no personal data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, TemporalDep
from api.errors import not_found
from api.ids import normalise_tracking_code
from api.routes.cases import run_action, tasks_and_context, timeline_of
from api.views import tracking_view
from store import models
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/track", tags=["public"])


async def _case_by_code(session: AsyncSession, tracking_code: str) -> models.Case:
    code = normalise_tracking_code(tracking_code)
    case = (
        (await session.execute(select(models.Case).where(models.Case.tracking_code == code))).scalar_one_or_none()
        if code
        else None
    )
    if case is None:
        raise not_found(
            "No case has this tracking code. Check the code on your receipt (10 letters and digits).",
            "ไม่พบเรื่องที่มีรหัสติดตามนี้ กรุณาตรวจสอบรหัส 10 หลักบนใบรับเรื่อง",
        )
    return case


async def _tracking(session: AsyncSession, case: models.Case, request: Request) -> dict[str, Any]:
    _, ctx = await tasks_and_context(session, case, request)
    events = await timeline_of(session, case)
    return tracking_view(case, events=events, agencies=request.app.state.agencies, ctx=ctx)


@router.get("/{tracking_code}")
async def track(
    tracking_code: Annotated[str, Path(max_length=32)], session: SessionDep, request: Request
) -> dict[str, Any]:
    """Where a case stands: status, who handles it, the expected date, the public timeline, what you can do."""
    return await _tracking(session, await _case_by_code(session, tracking_code), request)


@router.post("/{tracking_code}/actions/{action}")
async def citizen_action(
    tracking_code: Annotated[str, Path(max_length=32)],
    action: Annotated[str, Path(max_length=32)],
    session: SessionDep,
    client: TemporalDep,
    request: Request,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """The complainant's own actions, with the tracking code as the key: reply, rate, request_review, withdraw."""
    case = await _case_by_code(session, tracking_code)
    actor = Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN)
    await run_action(case=case, action=action, actor=actor, body=body, session=session, client=client, request=request)
    await session.refresh(case)
    return await _tracking(session, case, request)
