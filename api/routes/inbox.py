"""The web inboxes: the citizen's (the messages about a case, by tracking code, no sign-in) and staff's (the
messages addressed to their agency or to the centre's supervisors)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from api.casework import case_by_code
from api.deps import CurrentActor, SessionDep, SettingsDep
from api.errors import forbidden
from api.limits import limit
from config.settings import Settings
from delivery.dispatcher import message_facts
from delivery.queries import inbox_rows, staff_inbox_rows
from delivery.templates import Language, Message, Templates
from store import models
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1")

# Gateways that reached the person outside the inbox.
_OUTSIDE = frozenset({"sms", "line", "email"})


class InboxMessage(BaseModel):
    seq: int
    event: str
    at: datetime
    subject: str
    text: str
    lang: str
    # Channels the message also went out by (sms, line, email); empty while waiting or if only in this inbox.
    delivered_by: list[str]
    pending: bool


class Inbox(BaseModel):
    tracking_code: str
    messages: list[InboxMessage]


@lru_cache(maxsize=4)
def _templates(path: FilePath | None) -> Templates:
    return Templates.load(path)


def _render(
    row: models.Notification, case: models.Case, *, settings: Settings, request: Request, lang: Language
) -> Message:
    """An outbox row's message as it reads today (the templates and the case as they are now)."""
    state = request.app.state
    facts = message_facts(row, case, agencies=state.agencies, centres=state.centres, base_url=settings.public_base_url)
    return _templates(settings.notification_templates_file).render(facts, lang)


@router.get(
    "/track/{tracking_code}/messages",
    response_model=Inbox,
    tags=["public"],
    dependencies=[Depends(limit("tracking"))],
)
async def inbox(
    tracking_code: Annotated[str, Path(max_length=32)],
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    lang: Annotated[Language, Query(description="th (default) or en")] = "th",
) -> Inbox:
    """The messages about your case, newest last, whatever channel they also went out by."""
    case = await case_by_code(session, tracking_code)
    messages = []
    for rows in await inbox_rows(session, case.case_id):
        first = rows[0]
        rendered = _render(first, case, settings=settings, request=request, lang=lang)
        messages.append(
            InboxMessage(
                seq=first.seq,
                event=first.event,
                at=first.created_at,
                subject=rendered.subject,
                text=rendered.text,
                lang=lang,
                delivered_by=sorted({r.channel for r in rows if r.status == "sent" and r.gateway in _OUTSIDE}),
                pending=any(r.status in {"pending", "sending"} for r in rows),
            )
        )
    return Inbox(tracking_code=case.tracking_code, messages=messages)


class StaffMessage(BaseModel):
    id: int
    case_id: str
    seq: int
    event: str
    at: datetime
    recipient: str
    subject: str
    text: str
    lang: str
    status: str  # also emailed to the agency's contact address when that is configured
    gateway: str | None


class StaffInbox(BaseModel):
    items: list[StaffMessage]
    total: int
    # False past the newest 10,000 messages (delivery.queries.STAFF_INBOX_CAP): ``total`` is then the cap.
    total_exact: bool = True
    page: int
    page_size: int


def _staff_recipients(actor: Actor) -> list[str]:
    if actor.role is Role.AGENCY and actor.agency:
        return [actor.agency, f"{actor.agency}:head"]
    if actor.role in {Role.SUPERVISOR, Role.OFFICER}:
        return ["supervisors"]
    raise forbidden(
        "The staff inbox is for agency and complaint-centre staff.",
        "กล่องข้อความนี้สำหรับเจ้าหน้าที่หน่วยงานและเจ้าหน้าที่ศูนย์เท่านั้น",
    )


@router.get("/inbox", response_model=StaffInbox, tags=["staff"])
async def staff_inbox(
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    lang: Annotated[Language, Query(description="th (default) or en")] = "th",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> StaffInbox:
    """Messages for your agency (agency staff) or for the centre's supervisors (PSC staff), newest first."""
    found = await staff_inbox_rows(session, recipients=_staff_recipients(actor), page=page, page_size=page_size)
    items = []
    for row, case in found.rows:
        rendered = _render(row, case, settings=settings, request=request, lang=lang)
        items.append(
            StaffMessage(
                id=row.id,
                case_id=row.case_id,
                seq=row.seq,
                event=row.event,
                at=row.created_at,
                recipient=row.recipient,
                subject=rendered.subject,
                text=rendered.text,
                lang=lang,
                status=row.status,
                gateway=row.gateway,
            )
        )
    return StaffInbox(items=items, total=found.total, total_exact=found.total_exact, page=page, page_size=page_size)
