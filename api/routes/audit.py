"""For auditors: the access log, a case's history from Temporal (and its state at any moment), the codec."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from api.auth import Principal, StaffRole
from api.deps import CurrentCase, SessionDep, TemporalDep, log_read, require_roles
from api.errors import AppError
from api.history import entries_of_runs, fetch_runs, state_as_of
from api.views import BANGKOK
from store import audit
from store.db import release
from store.models import Case, CaseEvent

router = APIRouter(prefix="/api/v1", tags=["audit"])
codec_router = APIRouter(prefix="/codec", tags=["audit"])

Auditor = Annotated[Principal, Depends(require_roles(StaffRole.AUDITOR))]
HistoryReader = Annotated[Principal, Depends(require_roles(StaffRole.AUDITOR, StaffRole.SUPERVISOR))]
# Operators of the Temporal UI: auditors, and administrators who run the deployment.
CodecUser = Annotated[Principal, Depends(require_roles(StaffRole.AUDITOR, StaffRole.ADMIN))]


class AccessLogEntry(BaseModel):
    at: datetime
    actor_id: str
    actor_role: str
    actor_agency: str | None
    case_id: str
    what: str
    reason: str | None


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    total: int
    page: int
    page_size: int


@router.get("/audit/access-log", response_model=AccessLogPage)
async def read_access_log(
    _: Auditor,
    session: SessionDep,
    case_id: Annotated[str | None, Query(max_length=32)] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccessLogPage:
    """Who read which case's personal data, when and why: newest first (auditors only)."""
    rows, total = await audit.access_log(
        session, case_id=case_id, actor_id=actor_id, since=since, page=page, page_size=page_size
    )
    items = [
        AccessLogEntry(
            at=r.at.astimezone(BANGKOK),
            actor_id=r.actor_id,
            actor_role=r.actor_role,
            actor_agency=r.actor_agency,
            case_id=r.case_id,
            what=r.what,
            reason=r.reason,
        )
        for r in rows
    ]
    return AccessLogPage(items=items, total=total, page=page, page_size=page_size)


class HistoryEntryOut(BaseModel):
    event_id: int
    at: datetime
    kind: str
    detail: dict[str, Any]
    state: str | None


class AsOf(BaseModel):
    at: datetime
    state: str | None = Field(description="The case's state at that moment as the Temporal history states it")
    timeline_state: str | None = Field(description="The same from the case event log (includes deadline-driven moves)")


class CaseHistory(BaseModel):
    case_id: str
    entries: list[HistoryEntryOut]
    as_of: AsOf | None = None


@router.get("/cases/{case_id}/history", response_model=CaseHistory)
async def case_history(
    case: CurrentCase,
    _: HistoryReader,
    session: SessionDep,
    client: TemporalDep,
    request: Request,
    as_of: Annotated[datetime | None, Query(description="A moment (ISO 8601 with offset): the state then")] = None,
) -> CaseHistory:
    """The case's timeline from Temporal's event history, decoded; with ``as_of`` its state at that moment."""
    await release(session)  # no connection held while Temporal answers
    runs = await fetch_runs(client, case_id=case.case_id)
    return await history_view(case, session, request, runs, client.data_converter, as_of)


async def history_view(
    case: Case,
    session: AsyncSession,
    request: Request,
    runs: list[WorkflowHistory],
    converter: DataConverter,
    as_of: datetime | None,
    rows: Sequence[CaseEvent] | None = None,
) -> CaseHistory:
    """The history of ``runs`` (the case's, fetched once by the caller) as its reader sees it; the read is
    logged. ``rows``: the case's event log, if the caller has read it already."""
    entries = await entries_of_runs(runs, converter)
    await log_read(session, request, case_id=case.case_id, what="history")
    moment, timeline_state = None, None
    if as_of is not None:
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=BANGKOK)
        if rows is None:
            rows = await audit.case_events(session, case_id=case.case_id)
        then = [e for e in rows if e.at <= moment]
        timeline_state = then[-1].to_state if then else None
    out = [
        HistoryEntryOut(event_id=e.event_id, at=e.at.astimezone(BANGKOK), kind=e.kind, detail=e.detail, state=e.state)
        for e in entries
        if moment is None or e.at <= moment
    ]
    return CaseHistory(
        case_id=case.case_id,
        entries=out,
        as_of=AsOf(at=moment, state=state_as_of(entries, moment), timeline_state=timeline_state) if moment else None,
    )


# --- the remote codec (Temporal's codec server protocol) ----------------------------------------------------


class JsonPayload(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)
    data: str = ""


class JsonPayloads(BaseModel):
    payloads: list[JsonPayload] = Field(max_length=1000)


def _to_proto(payloads: JsonPayloads) -> list[Payload]:
    try:
        return [
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
                data=base64.b64decode(p.data, validate=True),
            )
            for p in payloads.payloads
        ]
    except (binascii.Error, ValueError):
        raise _bad_payload() from None


def _to_json(payloads: list[Payload]) -> JsonPayloads:
    return JsonPayloads(
        payloads=[
            JsonPayload(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


def _bad_payload() -> AppError:
    return AppError(
        422,
        "bad_payload",
        "The payloads are not valid base64 or cannot be decoded with this deployment's key.",
        "ข้อมูล payload ไม่ถูกต้องหรือถอดรหัสด้วยกุญแจของระบบนี้ไม่ได้",
    )


@codec_router.post("/decode", response_model=JsonPayloads)
async def codec_decode(body: JsonPayloads, _: CodecUser, client: TemporalDep) -> JsonPayloads:
    """Decrypt payloads for the Temporal Web UI (remote codec protocol), for signed-in auditors and operators."""
    codec = client.data_converter.payload_codec
    assert codec is not None
    try:
        return _to_json(await codec.decode(_to_proto(body)))
    except (ValueError, InvalidTag):  # InvalidTag: another key's payload, or one tampered with
        raise _bad_payload() from None


@codec_router.post("/encode", response_model=JsonPayloads)
async def codec_encode(body: JsonPayloads, _: CodecUser, client: TemporalDep) -> JsonPayloads:
    """Encrypt payloads as the workers do (remote codec protocol)."""
    codec = client.data_converter.payload_codec
    assert codec is not None
    return _to_json(await codec.encode(_to_proto(body)))
