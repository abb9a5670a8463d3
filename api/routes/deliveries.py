"""The delivery log for supervisors and auditors: every attempt to deliver a notification, per case and gateway."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from api.deps import CurrentActor, SessionDep
from api.errors import forbidden, not_found
from delivery.queries import case_notifications, list_attempts
from store import models
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1", tags=["supervisor"])

_LOG_READERS = frozenset({Role.SUPERVISOR, Role.AUDITOR})


class AttemptResult(StrEnum):
    sent = "sent"
    retry = "retry"  # failed for now, tried again later
    fallback = "fallback"  # failed for good; the complainant's next preferred channel is tried
    failed = "failed"  # failed for good with no channel left; the message stays in the web inbox
    expired = "expired"  # too old to send when its turn came; in the web inbox only


class Gateway(StrEnum):
    sms = "sms"
    line = "line"
    email = "email"
    inbox = "inbox"
    log = "log"
    webhook = "webhook"


class AttemptView(BaseModel):
    notification_id: int | None  # a message to a person, or
    webhook_id: int | None  # a call to a partner system
    partner: str | None
    case_id: str
    seq: int
    audience: str
    channel: str
    gateway: str
    attempt: int
    at: datetime
    ok: bool
    result: str
    status_code: int | None
    error: str | None
    duration_ms: int | None


class GatewayTotal(BaseModel):
    gateway: str
    result: str
    count: int


class AttemptPage(BaseModel):
    items: list[AttemptView]
    total: int
    page: int
    page_size: int
    totals: list[GatewayTotal]


class NotificationView(BaseModel):
    id: int
    seq: int
    event: str
    state: str
    audience: str
    channel: str
    recipient: str  # "complainant", an agency code or "supervisors": never an address
    status: str
    gateway: str | None
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    log: list[AttemptView]


class CaseDeliveries(BaseModel):
    case_id: str
    notifications: list[NotificationView]


def _require_log_reader(actor: Actor) -> None:
    if actor.role not in _LOG_READERS:
        raise forbidden(
            "The delivery log is for supervisors and auditors.",
            "บันทึกการส่งข้อความสำหรับผู้บังคับบัญชาและผู้ตรวจสอบเท่านั้น",
        )


def _attempt_view(attempt: models.DeliveryAttempt) -> AttemptView:
    return AttemptView.model_validate(attempt, from_attributes=True)


@router.get("/deliveries", response_model=AttemptPage)
async def list_deliveries(
    actor: CurrentActor,
    session: SessionDep,
    case_id: Annotated[str | None, Query(max_length=32)] = None,
    gateway: Annotated[Gateway | None, Query(description="The gateway that was tried")] = None,
    status: Annotated[AttemptResult | None, Query(description="The attempt's result")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AttemptPage:
    """Delivery attempts, newest first, with totals per gateway and result (supervisors and auditors)."""
    _require_log_reader(actor)
    found = await list_attempts(
        session,
        case_id=case_id,
        gateway=gateway.value if gateway else None,
        result=status.value if status else None,
        page=page,
        page_size=page_size,
    )
    return AttemptPage(
        items=[_attempt_view(a) for a in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
        totals=[GatewayTotal(gateway=g, result=r, count=n) for g, r, n in found.summary],
    )


@router.get("/cases/{case_id}/deliveries", response_model=CaseDeliveries)
async def case_deliveries(
    case_id: Annotated[str, Path(max_length=32)], actor: CurrentActor, session: SessionDep
) -> CaseDeliveries:
    """Every message of one case: who it was for, how it went out, and each attempt (supervisors and auditors)."""
    _require_log_reader(actor)
    if await session.get(models.Case, case_id) is None:
        raise not_found(f"No case {case_id}.", f"ไม่พบเรื่องเลขที่ {case_id}")
    return CaseDeliveries(
        case_id=case_id,
        notifications=[
            NotificationView(
                id=row.id,
                seq=row.seq,
                event=row.event,
                state=row.state,
                audience=row.audience,
                channel=row.channel,
                recipient=row.recipient,
                status=row.status,
                gateway=row.gateway,
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                sent_at=row.sent_at,
                last_error=row.last_error,
                log=[_attempt_view(a) for a in log],
            )
            for row, log in await case_notifications(session, case_id)
        ],
    )
