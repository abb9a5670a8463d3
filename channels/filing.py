"""The one place the channels file a complaint, so intake changes (DB-first, idempotency) reach them all at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from intake.idempotency import idempotency_of
from workflows.process import Actor


@dataclass(frozen=True)
class Filed:
    """What a channel tells the person: the case's numbers and the date to expect an answer."""

    case_id: str
    tracking_code: str
    status: str
    expected_by: date | None
    pending: bool = False  # kept for callers' sake: DB-first intake always has the case number at once


async def file_from_channel(
    *, desk: IntakeDesk, complaint: ComplaintIn, actor: Actor, idempotency_key: str | None = None
) -> Filed:
    """File ``complaint`` as ``actor`` through the API's intake; raises the intake's AppError when it cannot.

    ``idempotency_key`` names the attempt (a LINE webhook event, an Open311 client's request): the same key
    files once and gives back the first answer. It is scoped by the actor, so channels never collide.
    """
    answer = await file_complaint(
        desk, complaint=complaint, actor=actor, idempotency=idempotency_of(actor.id, idempotency_key)
    )
    body = answer.body
    expected = body.get("expected_by")
    return Filed(
        case_id=str(body["case_id"]),
        tracking_code=str(body["tracking_code"]),
        status=str((body.get("status") or {}).get("code", "received")),
        expected_by=date.fromisoformat(expected) if expected else None,
    )
