"""The citizen's web inbox: the messages sent about a case, read with its tracking code (no sign-in)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from api.deps import SessionDep, SettingsDep
from api.routes.public import _case_by_code
from delivery.dispatcher import message_facts
from delivery.queries import inbox_rows
from delivery.templates import Language, Templates

router = APIRouter(prefix="/api/v1/track", tags=["public"])

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


@router.get("/{tracking_code}/messages", response_model=Inbox)
async def inbox(
    tracking_code: Annotated[str, Path(max_length=32)],
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    lang: Annotated[Language, Query(description="th (default) or en")] = "th",
) -> Inbox:
    """The messages about your case, newest last, whatever channel they also went out by."""
    case = await _case_by_code(session, tracking_code)
    templates = _templates(settings.notification_templates_file)
    messages = []
    for rows in await inbox_rows(session, case.case_id):
        first = rows[0]
        facts = message_facts(first, case, agencies=request.app.state.agencies, base_url=settings.public_base_url)
        rendered = templates.render(facts, lang)
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
