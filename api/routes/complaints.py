"""Filing a complaint (any of the six channels)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from api.deps import OptionalActor, SettingsDep, TemporalDep
from api.errors import forbidden, unauthorized
from api.limits import limit
from api.responses import ReceiptOut
from api.schemas import Channel, ComplaintIn
from api.service import file_complaint
from api.views import expected_date, state_view
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/complaints", tags=["intake"])

# Channels where a PSC officer keys the complaint in; citizens file themselves on the others, and staff who
# work cases (officers, supervisors) may file those on a citizen's behalf.
_STAFF_CHANNELS = {Channel.walk_in, Channel.letter, Channel.hotline, Channel.social}
_FILERS = frozenset({Role.OFFICER, Role.SUPERVISOR})


def _check_filer(channel: Channel, actor: Actor | None) -> None:
    """Staff channels need a signed-in officer; citizens' channels take anyone but staff who do no filing."""
    staff_channel = channel in _STAFF_CHANNELS
    if staff_channel and actor is None:
        raise unauthorized(
            "Complaints from the hotline, the counter and letters are keyed in by a signed-in officer.",
            "เรื่องจากสายด่วน เคาน์เตอร์ และจดหมาย ต้องบันทึกโดยเจ้าหน้าที่ที่เข้าสู่ระบบแล้ว",
        )
    if actor is None or (actor.role is Role.OFFICER) or (not staff_channel and actor.role in _FILERS):
        return
    raise forbidden(
        "Only officers key in complaints from the hotline, the counter and letters; citizens file the others.",
        "เฉพาะเจ้าหน้าที่รับเรื่องเท่านั้นที่บันทึกเรื่องจากสายด่วน เคาน์เตอร์ และจดหมายได้ ช่องทางอื่นผู้ร้องยื่นเอง",
        code="role_not_allowed",
    )


@router.post(
    "",
    status_code=201,
    response_model=ReceiptOut,
    response_model_exclude_unset=True,
    responses={202: {"description": "Accepted; the receipt is still being made", "model": ReceiptOut}},
    dependencies=[Depends(limit("intake"))],
)
async def create_complaint(
    body: ComplaintIn, response: Response, client: TemporalDep, settings: SettingsDep, actor: OptionalActor
) -> dict[str, Any]:
    """File a complaint; answers with its case number, tracking code and the date to expect an answer."""
    _check_filer(body.channel, actor)
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
        "due_at": summary.due_at.isoformat() if summary.due_at else None,
    }
