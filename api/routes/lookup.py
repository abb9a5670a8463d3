"""Tracking without the code: the 13-digit citizen ID and the last four digits of the phone, as DSI tracks.

POST only, so the ID never sits in a URL (access logs, browser history, proxies). Every answer has the same
shape, and "no such ID", "wrong digits" and "no cases" are the same empty list, so the endpoint cannot tell
anyone whether an ID is in the system. Guesses cost: a per-address limit per minute, and a per-ID limit
over a quarter of an hour (counted for every ID alike, known or not).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints
from sqlalchemy import select

from api.deps import SessionDep
from api.errors import BilingualError
from api.limits import RateLimiter, limit, too_many_requests
from api.responses import StateOut
from api.schemas import CitizenId
from api.views import BANGKOK, expected_date, state_view
from store import models

router = APIRouter(prefix="/api/v1/track", tags=["public"])

_ID_TRIES, _ID_WINDOW = 5, 900.0
_MAX_CASES = 50
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def _arabic(value: object) -> object:
    return value.translate(_THAI_DIGITS) if isinstance(value, str) else value


def _four_digits(value: str) -> str:
    if len(value) != 4 or not (value.isascii() and value.isdigit()):
        raise BilingualError(
            "Give the last 4 digits of the phone number given with the complaint.",
            "โปรดระบุเลข 4 หลักท้ายของหมายเลขโทรศัพท์ที่ให้ไว้ตอนยื่นเรื่อง",
        )
    return value


PhoneLast4 = Annotated[
    str, BeforeValidator(_arabic), StringConstraints(strip_whitespace=True, max_length=8), AfterValidator(_four_digits)
]


class LookupIn(BaseModel):
    """The person's citizen ID and the last four digits of the phone they gave with their complaints."""

    model_config = ConfigDict(extra="forbid")

    citizen_id: CitizenId
    phone_last4: PhoneLast4


class LookupCaseOut(BaseModel):
    tracking_code: str
    status: StateOut
    received_at: str
    expected_by: date | None
    closed_at: str | None


class LookupOut(BaseModel):
    """The same shape whatever was found: a list (maybe empty) and one message."""

    cases: list[LookupCaseOut]
    message: str
    message_th: str


_MESSAGE = (
    "Cases filed with this citizen ID and phone number are listed here; if none are, check both or use the "
    "tracking code on your receipt."
)
_MESSAGE_TH = (
    "รายการนี้แสดงเรื่องที่ยื่นไว้ด้วยเลขประจำตัวประชาชนและหมายเลขโทรศัพท์นี้ หากไม่พบ โปรดตรวจสอบข้อมูลทั้งสองอย่าง หรือใช้รหัสติดตามบนใบรับเรื่อง"
)


def _case_out(case: models.Case) -> LookupCaseOut:
    return LookupCaseOut(
        tracking_code=case.tracking_code,
        status=StateOut(**state_view(case.status)),
        received_at=case.received_at.astimezone(BANGKOK).isoformat(),
        expected_by=expected_date(case.expected_by) if case.closed_at is None else None,
        closed_at=case.closed_at.astimezone(BANGKOK).isoformat() if case.closed_at else None,
    )


@router.post("/by-citizen-id", response_model=LookupOut, dependencies=[Depends(limit("track_by_id"))])
async def track_by_citizen_id(body: LookupIn, session: SessionDep, request: Request) -> LookupOut:
    """Your cases by your 13-digit citizen ID and the last 4 digits of your phone: their tracking codes and
    where each stands. The same answer for an unknown ID as for a wrong phone number."""
    limiter: RateLimiter = request.app.state.rate_limiter
    # The limiter's key is a digest: the ID itself stays out of memory dumps of the limiter too.
    key = hashlib.sha256(body.citizen_id.encode()).hexdigest()
    wait = limiter.check("track_by_id_per_id", key, _ID_TRIES, window=_ID_WINDOW)
    if wait is not None:
        raise too_many_requests(wait)
    query = (
        select(models.Case)
        .where(models.Case.complainant_citizen_id == body.citizen_id)
        .order_by(models.Case.received_at.desc())
        .limit(_MAX_CASES)
    )
    found = list((await session.execute(query)).scalars())
    mine = [c for c in found if hmac.compare_digest((c.complainant_phone or "")[-4:], body.phone_last4)]
    return LookupOut(cases=[_case_out(c) for c in mine], message=_MESSAGE, message_th=_MESSAGE_TH)
