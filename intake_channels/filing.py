"""The one place the intake channels file a complaint (so intake changes land in one spot).

Web uploads with files, officers' intake, email intake, LINE and Open311 all come here; this calls the API's own intake
service, so a complaint from any channel is filed exactly as ``POST /api/v1/complaints`` files it: committed
in the database with its tracking code, its workflow started by the intake relay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from intake.idempotency import Idempotency
from workflows.process import Actor


@dataclass(frozen=True)
class Filed:
    """What intake answered: the case and code, the receipt (body of ``POST /api/v1/complaints``), its status."""

    case_id: str
    tracking_code: str
    receipt: dict[str, Any]
    status_code: int
    location: str | None

    @property
    def expected_by(self) -> date | None:
        """The date the complainant may expect an answer, as the receipt promised it."""
        expected = self.receipt.get("expected_by")
        return date.fromisoformat(expected) if expected else None


async def file(
    desk: IntakeDesk, *, complaint: ComplaintIn, actor: Actor, idempotency: Idempotency | None = None
) -> Filed:
    """File ``complaint`` as ``actor`` (with the caller's idempotency key, if any)."""
    answer = await file_complaint(desk, complaint=complaint, actor=actor, idempotency=idempotency)
    body = answer.body
    return Filed(
        case_id=str(body["case_id"]),
        tracking_code=str(body["tracking_code"]),
        receipt=body,
        status_code=answer.status_code,
        location=answer.location,
    )
