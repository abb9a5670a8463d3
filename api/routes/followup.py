"""The follow-up over HTTP: the complainant answers "was it fixed?" with the tracking code; supervisors and
auditors read the totals and the answers left for a supervisor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import StaffRole
from api.casework import case_by_code
from api.deps import SessionDep, TemporalDep, require_roles
from api.limits import limit
from api.views import BANGKOK, state_view
from followup import answers
from followup.answers import Answer

router = APIRouter(prefix="/api/v1", tags=["follow-up"])


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Answer = Field(description="fixed or not_fixed")
    comment: str | None = Field(default=None, max_length=1000)


class FollowUpOut(BaseModel):
    asked_at: str
    answer: str | None = None
    answered_at: str | None = None
    outcome: str | None = None  # recorded | reopened | for_supervisor
    status: dict[str, str] | None = None  # the case's status after the answer


class WaitingOut(BaseModel):
    case_id: str
    answered_at: str | None


class FollowUpReport(BaseModel):
    totals: dict[str, int]
    waiting_for_supervisor: list[WaitingOut]


def _local(at: datetime | None) -> str | None:
    return at.astimezone(BANGKOK).isoformat() if at else None


@router.post(
    "/track/{tracking_code}/followup",
    response_model=FollowUpOut,
    tags=["public"],
    dependencies=[Depends(limit("citizen_action"))],
)
async def answer_followup(
    tracking_code: Annotated[str, Path(max_length=32)],
    body: AnswerIn,
    session: SessionDep,
    client: TemporalDep,
    request: Request,
) -> dict[str, Any]:
    """Answer "was the problem fixed?"; "not_fixed" reopens the case when it still can, or goes to a supervisor."""
    case = await case_by_code(session, tracking_code)
    row = await answers.answer(
        db=request.app.state.db,
        session=session,
        client=client,
        request=request,
        case=case,
        given=body.answer,
        comment=body.comment,
    )
    await session.refresh(case)
    return {
        "asked_at": _local(row.asked_at),
        "answer": row.answer,
        "answered_at": _local(row.answered_at),
        "outcome": row.outcome,
        "status": state_view(case.status),
    }


@router.get(
    "/reports/followups",
    response_model=FollowUpReport,
    dependencies=[Depends(require_roles(StaffRole.SUPERVISOR, StaffRole.AUDITOR, StaffRole.OFFICER))],
)
async def followup_report(
    session: SessionDep, since: Annotated[datetime | None, Query(description="Questions asked since")] = None
) -> dict[str, Any]:
    """How many were asked and answered, fixed or not, reopened, and the answers waiting for a supervisor."""
    waiting = await answers.waiting_for_supervisor(session)
    return {
        "totals": await answers.counts(session, since=since),
        "waiting_for_supervisor": [{"case_id": w.case_id, "answered_at": _local(w.answered_at)} for w in waiting],
    }
