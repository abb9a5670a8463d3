"""Filing a complaint (any of the six channels)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import OptionalActor, SettingsDep, TemporalDep
from api.schemas import Channel, ComplaintIn
from api.service import file_complaint
from api.views import expected_date, state_view
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/complaints", tags=["intake"])

# Channels where a PSC officer keys the complaint in; citizens file themselves on the others.
_STAFF_CHANNELS = {Channel.walk_in, Channel.letter, Channel.hotline}


@router.post("", status_code=201, responses={202: {"description": "Accepted; the receipt is still being made"}})
async def create_complaint(
    body: ComplaintIn, response: Response, client: TemporalDep, settings: SettingsDep, actor: OptionalActor
) -> dict[str, Any]:
    """File a complaint; answers with its case number, tracking code and the date to expect an answer."""
    filed_by = actor or Actor(id=f"citizen:{body.channel.value}", role=Role.CITIZEN)
    summary, case_id, tracking_code = await file_complaint(
        client=client,
        task_queue=settings.task_queue,
        complaint=body,
        actor=filed_by,
        wait_seconds=settings.intake_wait_seconds,
        search_attributes=settings.search_attributes,
        auto_screen=settings.auto_screen,
    )
    response.headers["Location"] = f"/api/v1/track/{tracking_code}"
    if summary is None:
        response.status_code = 202
        return {
            "case_id": case_id,
            "tracking_code": tracking_code,
            "status": state_view("received"),
            "expected_by": None,
        }
    return {
        "case_id": summary.case_id,
        "tracking_code": summary.tracking_code,
        "status": state_view(summary.status.value),
        "expected_by": expected_date(summary.expected_by),
        "due_at": summary.expected_by.isoformat() if summary.expected_by else None,
    }
