"""Response models of the case, tracking, intake and board routes: the contract ``/docs`` shows.

The views in ``api/views.py`` build these shapes; declaring them as ``response_model`` makes FastAPI check
every answer against them, so the documentation cannot drift from what the API sends.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict


class StateOut(BaseModel):
    code: str
    label_en: str
    label_th: str


class AgencyOut(BaseModel):
    code: str
    name_th: str
    name_en: str


class TaskOut(BaseModel):
    status: str
    outcome: str | None = None


class CaseAgencyOut(AgencyOut):
    task: TaskOut | None = None


class ActorOut(BaseModel):
    id: str
    role: str
    agency: str | None = None


class EventOut(BaseModel):
    """One timeline entry. Public entries add the event's public data (question, advice, response, ...)."""

    model_config = ConfigDict(extra="allow")

    seq: int
    event: str
    label_en: str
    label_th: str
    at: str
    state: str
    by: str | None = None
    from_state: str | None = None
    actor: ActorOut | None = None
    data: dict[str, Any] | None = None


class FieldOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    kind: str
    required: bool


class AllowedActionOut(BaseModel):
    action: str
    label_en: str
    label_th: str
    leads_to: str
    fields: list[FieldOut]


class ComplainantOut(BaseModel):
    """Personal data (PDPA): only staff who may see it, and the complainant with the second factor."""

    name: str | None = None
    citizen_id: str | None = None
    phone: str | None = None
    email: str | None = None
    line_user_id: str | None = None
    preferred_channels: list[str] | None = None
    confidential: bool
    address: str | None = None


class LocationOut(BaseModel):
    province: str | None = None
    district: str | None = None
    subdistrict: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class CaseOut(BaseModel):
    """A case for staff and agencies: the case, its timeline and what the caller may do now."""

    case_id: str
    tracking_code: str | None
    status: StateOut
    channel: str
    subject: str | None
    description: str
    category: str | None
    complainant: ComplainantOut
    location: LocationOut
    attachments: list[dict[str, Any]]
    agencies: list[CaseAgencyOut]
    handler_id: str | None
    outcome: str | None
    received_at: str
    expected_by: date | None  # the date promised to the complainant
    due_at: str | None  # the current step's deadline
    closed_at: str | None
    timeline: list[EventOut]
    allowed_actions: list[AllowedActionOut]


class TrackingOut(BaseModel):
    """What anyone holding the tracking code sees (no personal data unless the second factor was given)."""

    tracking_code: str
    status: StateOut
    handled_by: list[AgencyOut]
    received_at: str
    expected_by: date | None
    closed_at: str | None
    outcome: str | None
    closure_reason: str | None
    duplicate_of: str | None
    review_deadline: str | None
    timeline: list[EventOut]
    allowed_actions: list[AllowedActionOut]
    complainant: ComplainantOut | None = None


class ReceiptOut(BaseModel):
    """The answer to a complaint: 201 once durable and visible, 202 while the receipt is still being made."""

    case_id: str
    tracking_code: str
    status: StateOut
    expected_by: date | None
    due_at: str | None = None


class BoardItemOut(BaseModel):
    case_id: str
    tracking_code: str | None
    status: StateOut
    stage: int | None
    province: str | None
    agencies: list[AgencyOut]
    received_at: str | None
    due_at: str | None
    due_date: str | None
    due_rule: str | None
    overdue: bool
    working_days_late: int
    escalation_level: int


class BoardPage(BaseModel):
    items: list[BoardItemOut]
    total: int
    # False when more cases match than the board counts (store.queries.COUNT_CAP): ``total`` is then a
    # lower bound, to be shown as "10,000+".
    total_exact: bool = True
    page: int
    page_size: int
    as_of: str


class StuckCaseOut(BaseModel):
    case_id: str
    tracking_code: str
    status: StateOut
    last_seq: int
    stuck_at: str | None
    reason: str | None


class StuckPage(BaseModel):
    items: list[StuckCaseOut]
    total: int
    remedy: str


class ScreeningOut(BaseModel):
    """The screening of a case (screening/service.py): completeness, suggestions with reasons, duplicates."""

    model_config = ConfigDict(extra="allow")

    completeness: dict[str, Any]
    stated_category: Any = None
    categories: list[dict[str, Any]]
    agencies: list[dict[str, Any]]
    similar_cases: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    model: dict[str, Any]
    decision: dict[str, Any]
    actions: Any = None
