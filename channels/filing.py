"""The one place the channels file a complaint, so intake changes (DB-first, idempotency) reach them all at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from temporalio.client import Client

from api.schemas import ComplaintIn
from api.service import file_complaint
from api.views import expected_date
from config.settings import Settings
from workflows.process import Actor


@dataclass(frozen=True)
class Filed:
    """What a channel tells the person: the case's numbers and the date to expect an answer (None while the
    receipt is still being made: the case is filed all the same)."""

    case_id: str
    tracking_code: str
    status: str
    expected_by: date | None
    expected_at: datetime | None
    pending: bool = False  # the receipt is still being made: the case number is not visible yet


async def file_from_channel(
    *, client: Client, settings: Settings, complaint: ComplaintIn, actor: Actor, idempotency_key: str | None = None
) -> Filed:
    """File ``complaint`` as ``actor`` through the API's intake; raises the intake's AppError when it cannot.

    ``idempotency_key`` names the attempt (a LINE webhook event, an Open311 client's request) for an intake
    that deduplicates; today's intake does not take one yet.
    """
    del idempotency_key  # accepted now so callers need not change when the intake takes it
    summary, case_id, tracking_code = await file_complaint(
        client=client,
        task_queue=settings.task_queue,
        complaint=complaint,
        actor=actor,
        wait_seconds=settings.intake_wait_seconds,
        search_attributes=settings.search_attributes,
        auto_screen=settings.auto_screen,
    )
    if summary is None:
        return Filed(case_id, tracking_code, "received", None, None, pending=True)
    return Filed(
        case_id=summary.case_id,
        tracking_code=summary.tracking_code,
        status=summary.status.value,
        expected_by=expected_date(summary.expected_by),
        expected_at=summary.expected_by,
    )
