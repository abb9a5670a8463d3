"""The one place the intake channels of this package file a complaint (so intake changes land in one spot).

Web uploads with files, officers' intake and email intake all come here; this calls the API's own intake
service, so a complaint from any channel is filed exactly as ``POST /api/v1/complaints`` files it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from intake.idempotency import idempotency_of
from workflows.process import Actor


@dataclass(frozen=True)
class Filed:
    """What intake answered: the case and code, the receipt, and whether it is complete (always, DB-first)."""

    case_id: str
    tracking_code: str
    receipt: dict[str, Any]
    complete: bool


async def file(*, desk: IntakeDesk, complaint: ComplaintIn, actor: Actor, idempotency_key: str | None = None) -> Filed:
    """File ``complaint`` as ``actor``; the receipt has the shape of ``POST /api/v1/complaints``'s answer.

    ``idempotency_key`` (scoped by the actor) makes a retry file nothing and give back the first receipt.
    """
    answer = await file_complaint(
        desk, complaint=complaint, actor=actor, idempotency=idempotency_of(actor.id, idempotency_key)
    )
    body = answer.body
    return Filed(str(body["case_id"]), str(body["tracking_code"]), body, complete=answer.status_code == 201)
