"""Public tracking by tracking code: no sign-in, no personal data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from api.deps import SessionDep
from api.errors import not_found
from api.ids import normalise_tracking_code
from api.views import tracking_view
from store import models

router = APIRouter(prefix="/api/v1/track", tags=["public"])


@router.get("/{tracking_code}")
async def track(
    tracking_code: Annotated[str, Path(max_length=32)], session: SessionDep, request: Request
) -> dict[str, Any]:
    """Where a case stands: status, who handles it, the expected date and the public timeline."""
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
    events = (
        (
            await session.execute(
                select(models.CaseEvent).where(models.CaseEvent.case_id == case.case_id).order_by(models.CaseEvent.seq)
            )
        )
        .scalars()
        .all()
    )
    return tracking_view(case, events=list(events), agencies=request.app.state.agencies)
