"""Public tracking by tracking code: no sign-in; personal data of the case only with a second factor.

The second factor is the last four digits of the phone number given at intake, sent as ``X-Phone-Last4``
(a header, so it stays out of URLs and access logs). Wrong guesses are counted per case: after
``_FACTOR_TRIES`` in ``_FACTOR_WINDOW`` seconds the case answers 429 to further tries.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.casework import action_request_view, case_by_code, run_action, tasks_and_context, timeline_of
from api.deps import SessionDep, TemporalDep
from api.errors import forbidden
from api.limits import RateLimiter, limit, too_many_requests
from api.responses import ACTION_RESPONSES, ActionRequestOut, IdempotencyKeyHeader, TrackingOut, answer_response
from api.views import complainant_view, tracking_view
from attachments.views import with_attachments
from store import models
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/track", tags=["public"])


_FACTOR_TRIES, _FACTOR_WINDOW = 5, 900.0
PhoneLast4 = Annotated[str | None, Header(alias="X-Phone-Last4", max_length=8)]


def _second_factor(case: models.Case, last4: str | None, request: Request) -> bool:
    """True if the caller proved the phone's last four digits; 403 for a wrong answer, None sent: False."""
    if last4 is None:
        return False
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.check("second_factor", case.tracking_code, _FACTOR_TRIES, window=_FACTOR_WINDOW)
    if wait is not None:
        raise too_many_requests(wait)
    phone = case.complainant_phone or ""
    if not (last4.isdigit() and len(last4) == 4 and phone and hmac.compare_digest(phone[-4:], last4)):
        raise forbidden(
            "These are not the last four digits of the phone number given with the complaint.",
            "เลข 4 หลักท้ายไม่ตรงกับหมายเลขโทรศัพท์ที่ให้ไว้ตอนยื่นเรื่อง",
            code="second_factor_failed",
        )
    return True


async def _tracking(
    session: AsyncSession, case: models.Case, request: Request, *, personal: bool = False
) -> dict[str, Any]:
    _, ctx = await tasks_and_context(session, case, request)
    events = await timeline_of(session, case)
    view = tracking_view(
        case, events=events, agencies=request.app.state.agencies, ctx=ctx, centres=request.app.state.centres
    )
    citizen = Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN)
    view = await with_attachments(session, case, citizen, view, events, prefix=f"/api/v1/track/{case.tracking_code}")
    if personal:
        view["complainant"] = complainant_view(case) | {"address": case.address}
    return view


@router.get(
    "/{tracking_code}",
    dependencies=[Depends(limit("tracking"))],
    response_model=TrackingOut,
    response_model_exclude_unset=True,
)
async def track(
    tracking_code: Annotated[str, Path(max_length=32)],
    session: SessionDep,
    request: Request,
    last4: PhoneLast4 = None,
) -> dict[str, Any]:
    """Where a case stands: status, who handles it, the expected date, the public timeline, what you can do.
    With ``X-Phone-Last4`` (the last four digits of the phone given at intake) also your own details."""
    case = await case_by_code(session, tracking_code)
    return await _tracking(session, case, request, personal=_second_factor(case, last4, request))


@router.post(
    "/{tracking_code}/actions/{action}",
    dependencies=[Depends(limit("citizen_action"))],
    response_model=TrackingOut,
    response_model_exclude_unset=True,
    responses=ACTION_RESPONSES,
)
async def citizen_action(
    tracking_code: Annotated[str, Path(max_length=32)],
    action: Annotated[str, Path(max_length=32)],
    session: SessionDep,
    client: TemporalDep,
    request: Request,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """The complainant's own actions, with the tracking code as the key: reply, rate, request_review, withdraw.
    With an ``Idempotency-Key`` a retry acts once and gets the same answer; 202 with a Location when the
    case has not answered in time."""
    case = await case_by_code(session, tracking_code)
    actor = Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN)

    async def view() -> dict[str, Any]:
        return TrackingOut.model_validate(await _tracking(session, case, request)).model_dump(
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


@router.get(
    "/{tracking_code}/action-requests/{request_id}",
    dependencies=[Depends(limit("tracking"))],
    response_model=ActionRequestOut,
)
async def citizen_action_request(
    tracking_code: Annotated[str, Path(max_length=32)],
    request_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    client: TemporalDep,
    request: Request,
) -> dict[str, Any]:
    """The result of your action that was answered 202: pending, applied or refused."""
    case = await case_by_code(session, tracking_code)

    async def view(_action: str) -> dict[str, Any]:
        await session.refresh(case)
        return TrackingOut.model_validate(await _tracking(session, case, request)).model_dump(
            mode="json", exclude_unset=True
        )

    return await action_request_view(
        case=case,
        request_id=request_id,
        actor=Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN),
        session=session,
        client=client,
        request=request,
        render=view,
    )
