"""Response models of the case, tracking, intake and board routes: the contract ``/docs`` shows.

The views in ``api/views.py`` build these shapes; declaring them as ``response_model`` makes FastAPI check
every answer against them, so the documentation cannot drift from what the API sends.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from intake.idempotency import Answer


class StateOut(BaseModel):
    code: str
    label_en: str
    label_th: str


class AgencyOut(BaseModel):
    code: str
    name_th: str
    name_en: str


class HandlerOut(AgencyOut):
    """An agency handling a complainant's case, with its public hotline (config/agencies.yaml ``contact``)."""

    phone: str | None = None


class TaskOut(BaseModel):
    status: str
    outcome: str | None = None
    stage: int = 1
    # The task's deadline; while a question waits for the complainant, when that wait lapses.
    due_at: str | None = None
    waiting_for_complainant_since: str | None = None


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


class LabelledOut(BaseModel):
    """A code with its English and Thai labels."""

    code: str
    label_en: str
    label_th: str


class DirectoryAgencyOut(AgencyOut):
    """One agency of the directory (config/agencies.yaml): the code cases and the board use, and whom to call."""

    kind: str
    parent: str | None = None
    areas: list[str]  # "TH" for the whole country, else DOPA province or district codes
    contact: dict[str, str]


class CentreOut(BaseModel):
    """A receiving centre (config/centres.yaml): the ``centre`` of a case and of the board's filter."""

    code: str
    kind: str
    name_th: str
    name_en: str
    province_code: str | None = None
    agency: str | None = None


class CategoryOut(BaseModel):
    code: str
    name_th: str
    name_en: str


class CategoryGroupOut(CategoryOut):
    """A group of complaint categories (its code filters the board and reports for all of them)."""

    categories: list[CategoryOut]


class CaseOut(BaseModel):
    """A case for staff and agencies: the case, its timeline and what the caller may do now."""

    case_id: str
    tracking_code: str | None
    status: StateOut
    channel: str
    subject: str | None
    description: str
    category: str | None
    kind: LabelledOut  # complaint, suggestion, request, tipoff
    priority: LabelledOut  # normal, urgent
    centre: LabelledOut | None  # the receiving centre
    sla_class: LabelledOut | None  # whose allowances the deadlines count
    region: LabelledOut | None  # of the province (config/regions.yaml)
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
    # What happens next, for the complainant, in this state.
    next_step: LabelledOut | None = None
    kind: LabelledOut
    priority: LabelledOut
    centre: LabelledOut | None
    handled_by: list[HandlerOut]
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
    # Your files and the ones shared with you (attachments/): links to the copies without metadata.
    attachments: list[dict[str, Any]] | None = None
    # The "was it fixed?" question after a closure (followup/), with where to answer while it is open.
    followup: dict[str, Any] | None = None


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
    category: str | None = None
    kind: LabelledOut | None = None
    priority: LabelledOut | None = None
    centre: LabelledOut | None = None
    sla_class: LabelledOut | None = None
    region: LabelledOut | None = None
    agencies: list[AgencyOut]
    received_at: str | None
    due_at: str | None
    due_date: str | None
    due_rule: str | None
    overdue: bool
    working_days_late: int
    at_risk: bool = False
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


# --- idempotent answers (intake/idempotency.py) -----------------------------------------------------------

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string (e.g. a UUID) of up to 64 characters: a retry with the same key acts "
        "once and gets the same answer; the same key with another request is refused (422).",
    ),
]


class ActionRequestOut(BaseModel):
    """Where an action answered 202 stands: ``pending``, ``applied`` (with the case's status) or ``refused``."""

    request_id: str
    case_id: str
    action: str
    state: Literal["pending", "applied", "refused"]
    status: StateOut | None = None
    seq: int | None = None
    error: dict[str, Any] | None = None


class ActionPendingOut(BaseModel):
    """202: the action is on record and not applied yet; its result will be at the Location header."""

    request_id: str
    case_id: str
    action: str
    state: Literal["pending"]
    message: str
    message_th: str


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Recorded, not applied yet: read the result at the Location", "model": ActionPendingOut},
    429: {"description": "Too many requests on this case now; Retry-After says when to retry"},
    503: {"description": "The case service is away or restarting; Retry-After says when to retry"},
}


def answer_response(answer: Answer) -> JSONResponse:
    """An :class:`intake.idempotency.Answer` as the HTTP response (first answer and every replay alike)."""
    headers = {"Location": answer.location} if answer.location else {}
    if answer.status_code == 202:
        headers["Retry-After"] = "2"
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)
