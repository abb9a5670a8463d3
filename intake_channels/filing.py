"""The one place the intake channels of this package file a complaint (so intake changes land in one spot).

Web uploads with files, officers' intake and email intake all come here; this calls the API's own intake
service, so a complaint from any channel is filed exactly as ``POST /api/v1/complaints`` files it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from api.schemas import ComplaintIn
from api.service import file_complaint
from api.views import expected_date, state_view
from config.settings import Settings
from workflows.process import Actor


@dataclass(frozen=True)
class Filed:
    """What intake answered: the case and code, and whether the receipt is complete (201) or pending (202)."""

    case_id: str
    tracking_code: str
    receipt: dict[str, Any]
    complete: bool


async def file(*, client: Client, settings: Settings, complaint: ComplaintIn, actor: Actor) -> Filed:
    """File ``complaint`` as ``actor``; the receipt has the shape of ``POST /api/v1/complaints``'s answer."""
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
        receipt: dict[str, Any] = {
            "case_id": case_id,
            "tracking_code": tracking_code,
            "status": state_view("received"),
            "expected_by": None,
        }
        return Filed(case_id, tracking_code, receipt, complete=False)
    receipt = {
        "case_id": summary.case_id,
        "tracking_code": summary.tracking_code,
        "status": state_view(summary.status.value),
        "expected_by": expected_date(summary.expected_by),
        "due_at": summary.due_at.isoformat() if summary.due_at else None,
    }
    return Filed(summary.case_id, summary.tracking_code, receipt, complete=True)
