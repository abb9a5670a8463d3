"""Attachments over HTTP: files with a new complaint, files added later (complainant, staff, agencies), and
downloads through an authorised route only (never a static path).

The complainant holds the tracking code and sees their own files and the ones staff made public (an agency's
before/after photos); staff see what their role may see (``attachments.service.Audience``). Everyone but the
centre's own staff is served the copy without metadata; officers, supervisors and auditors may ask for the
original with ``?original=true``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import filetype
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.casework import case_by_code
from api.deps import CurrentActor, CurrentCase, OptionalActor, SessionDep, SettingsDep
from api.errors import AppError, forbidden, not_found
from api.limits import limit
from api.responses import IdempotencyKeyHeader, ReceiptOut, answer_response
from api.schemas import ComplaintIn
from attachments import service
from attachments.files import Prepared
from attachments.intake import complete, file_with_files
from attachments.storage import Storage, StorageError, storage_from_settings
from config.settings import Settings
from domain.complaint import OFFICER_CHANNELS
from intake.idempotency import Answer, idempotency_of
from store import models
from store.db import release
from workflows.process import TERMINAL_STATES, Actor, Role, State

router = APIRouter(prefix="/api/v1", tags=["attachments"])

UPLOAD_PATHS = ("/attachments", "/api/v1/complaints/with-attachments", "/api/v1/intake/")
# The consoles' complaint forms, which may carry photos (api/routes/citizen.py, staff.py).
FORM_UPLOAD_PATHS = frozenset({"/file", "/officer/intake"})


def is_upload_path(path: str) -> bool:
    """Routes that take files: the body limit is the attachments' one (settings), not the JSON one."""
    return path in FORM_UPLOAD_PATHS or path.endswith(UPLOAD_PATHS[0]) or path.startswith(UPLOAD_PATHS[1:])


class AttachmentOut(BaseModel):
    id: int
    name: str
    content_type: str
    size_bytes: int
    label: str | None = None
    public: bool
    by: str | None = None
    at: str
    download: str
    original: str | None = None
    uploaded_by: str | None = None
    gps: dict[str, float] | None = None


class AttachmentList(BaseModel):
    items: list[AttachmentOut]


Files = Annotated[list[UploadFile], File(description="Photos (JPEG, PNG, WebP, HEIC) and PDF documents")]
Label = Annotated[str | None, Form(max_length=32, description="e.g. before, after, letter, screenshot")]


def storage_of(request: Request) -> Storage:
    """The app's store of attachment bytes, made on first use from the settings."""
    state = request.app.state
    if getattr(state, "attachment_storage", None) is None:
        state.attachment_storage = storage_from_settings(state.settings)
    return state.attachment_storage  # type: ignore[no-any-return]


StorageDep = Annotated[Storage, Depends(storage_of)]


def parse_complaint(raw: str | dict[str, Any]) -> ComplaintIn:
    """The ``complaint`` form field: the same JSON ``POST /api/v1/complaints`` takes, checked the same way
    (also for a complaint this package completed: links, files and a photo's place added)."""
    try:
        if isinstance(raw, str):
            return ComplaintIn.model_validate_json(raw)
        return ComplaintIn.model_validate(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", "complaint", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


async def file_with_attachments(
    *,
    request: Request,
    settings: Settings,
    storage: Storage,
    complaint: ComplaintIn,
    files: list[Prepared],
    actor: Actor,
    public: bool,
    label: str | None = None,
    owner: Actor | None = None,
    key: str | None = None,
    scope: str,
) -> Response:
    """File ``complaint`` with ``files`` (attachments/intake.py) and answer as ``POST /api/v1/complaints`` does."""
    completed = parse_complaint(complete(complaint, files, settings))
    filed = await file_with_files(
        request.app.state.intake,
        storage=storage,
        complaint=completed,
        files=files,
        actor=actor,
        owner=owner,
        public=public,
        label=label,
        idempotency=idempotency_of(scope, key),
    )
    return answer_response(Answer(filed.status_code, filed.receipt, filed.location))


@router.post(
    "/complaints/with-attachments",
    status_code=201,
    response_model=ReceiptOut,
    response_model_exclude_unset=True,
    tags=["intake"],
    dependencies=[Depends(limit("intake"))],
)
async def create_with_attachments(
    request: Request,
    settings: SettingsDep,
    storage: StorageDep,
    actor: OptionalActor,
    complaint: Annotated[str, Form(description="The complaint as JSON, as for POST /api/v1/complaints")],
    files: Files = [],  # noqa: B006 - FastAPI copies defaults
    key: IdempotencyKeyHeader = None,
) -> Response:
    """File a complaint with photos or PDFs (multipart): the files' type is judged from their content."""
    body = parse_complaint(complaint)
    if body.channel in OFFICER_CHANNELS:
        raise forbidden(
            "Complaints from the hotline, the counter, letters and social media are keyed in by officers "
            "at /api/v1/intake/officer.",
            "เรื่องจากสายด่วน เคาน์เตอร์ จดหมาย และสื่อสังคมออนไลน์ ต้องบันทึกโดยเจ้าหน้าที่ที่ /api/v1/intake/officer",
            code="role_not_allowed",
        )
    prepared = await service.read_uploads(files, settings)
    filer = actor if actor is not None and actor.role in {Role.OFFICER, Role.SUPERVISOR} else None
    if actor is not None and filer is None:
        raise forbidden(
            "Only the complainant or the centre's officers file complaints.",
            "ผู้ร้องหรือเจ้าหน้าที่ของศูนย์เท่านั้นที่ยื่นเรื่องได้",
            code="role_not_allowed",
        )
    citizen = Actor(id=f"citizen:{body.channel.value}", role=Role.CITIZEN)
    # The complainant's own files: they see them on the tracking page.
    return await file_with_attachments(
        request=request,
        settings=settings,
        storage=storage,
        complaint=body,
        files=prepared,
        actor=filer or citizen,
        owner=citizen,
        public=True,
        key=key,
        scope=f"staff:{filer.id}" if filer else f"public:{body.channel.value}",
    )


# --- the complainant, by tracking code ------------------------------------------------------------------


def _citizen(case: models.Case) -> Actor:
    return Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN)


def _links(prefix: str, rows: list[models.Attachment], audience: service.Audience) -> list[dict[str, Any]]:
    original = audience.may_read_original()
    return [
        service.attachment_view(row, link=f"{prefix}/{row.id}", original=original)
        for row in rows
        if audience.may_see(row)
    ]


async def _serve(storage: Storage, row: models.Attachment, *, original: bool) -> Response:
    key = row.storage_key if original else row.public_key
    try:
        data = await storage.get(key)
    except StorageError:
        raise service.storage_unavailable() from None
    kind = filetype.guess(data)
    media = kind.mime if kind is not None else row.content_type
    # Downloaded, never rendered in our origin: a crafted PDF or image cannot run anything here.
    return Response(
        content=data,
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(row.name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _quote(name: str) -> str:
    return quote(name, safe="")


async def _row(session: SessionDep, case_id: str, attachment_id: int) -> models.Attachment:
    row = await session.get(models.Attachment, attachment_id)
    if row is None or row.case_id != case_id:
        raise not_found("No such attachment on this case.", "ไม่พบไฟล์แนบนี้ในเรื่องนี้")
    return row


def _closed_to_uploads(case: models.Case) -> None:
    if State(case.status) in TERMINAL_STATES:
        raise AppError(
            status=409,
            code="case_finished",
            message="This case is finished; files can no longer be added.",
            message_th="เรื่องนี้ยุติแล้ว ไม่สามารถแนบไฟล์เพิ่มได้",
        )


@router.get(
    "/track/{tracking_code}/attachments",
    response_model=AttachmentList,
    tags=["public"],
    dependencies=[Depends(limit("tracking"))],
)
async def citizen_attachments(
    tracking_code: Annotated[str, Path(max_length=32)], session: SessionDep
) -> dict[str, Any]:
    """Your files on the case and the ones the centre or agencies shared with you (metadata removed)."""
    case = await case_by_code(session, tracking_code)
    rows = await service.of_case(session, case.case_id)
    prefix = f"/api/v1/track/{case.tracking_code}/attachments"
    return {"items": _links(prefix, rows, service.Audience(_citizen(case)))}


@router.post(
    "/track/{tracking_code}/attachments",
    status_code=201,
    response_model=AttachmentList,
    tags=["public"],
    dependencies=[Depends(limit("citizen_action"))],
)
async def citizen_upload(
    tracking_code: Annotated[str, Path(max_length=32)],
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    files: Files,
) -> dict[str, Any]:
    """Add photos or documents to your case, with the tracking code."""
    case = await case_by_code(session, tracking_code)
    _closed_to_uploads(case)
    prepared = await service.read_uploads(files, settings)
    await service.check_room(session, case.case_id, len(prepared), settings)
    await release(session)  # not held while the files are stored
    await service.store_blobs(storage, prepared)
    actor = _citizen(case)
    rows = await service.record(session, case_id=case.case_id, files=prepared, actor=actor, public=True)
    await session.commit()
    await service.still_stored(storage, prepared)
    prefix = f"/api/v1/track/{case.tracking_code}/attachments"
    return {"items": _links(prefix, rows, service.Audience(actor))}


@router.get(
    "/track/{tracking_code}/attachments/{attachment_id}",
    tags=["public"],
    dependencies=[Depends(limit("tracking"))],
    response_class=Response,
)
async def citizen_download(
    tracking_code: Annotated[str, Path(max_length=32)],
    attachment_id: int,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """Download one of the case's files you may see (the copy without metadata)."""
    case = await case_by_code(session, tracking_code)
    row = await _row(session, case.case_id, attachment_id)
    if not service.Audience(_citizen(case)).may_see(row):
        raise not_found("No such attachment on this case.", "ไม่พบไฟล์แนบนี้ในเรื่องนี้")
    return await _serve(storage, row, original=False)


# --- staff and agencies ---------------------------------------------------------------------------------


def _staff_audience(actor: Actor, case: models.Case) -> service.Audience:
    return service.Audience(actor, confidential_case=bool(case.confidential))


@router.get("/cases/{case_id}/attachments", response_model=AttachmentList, tags=["cases"])
async def case_attachments(case: CurrentCase, actor: CurrentActor, session: SessionDep) -> dict[str, Any]:
    """The case's files the caller may see."""
    rows = await service.of_case(session, case.case_id)
    return {"items": _links(f"/api/v1/cases/{case.case_id}/attachments", rows, _staff_audience(actor, case))}


@router.post("/cases/{case_id}/attachments", status_code=201, response_model=AttachmentList, tags=["cases"])
async def staff_upload(
    case: CurrentCase,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    files: Files,
    label: Label = None,
    public: Annotated[bool, Form(description="Show on the complainant's tracking page")] = False,
) -> dict[str, Any]:
    """Add files to a case you work on (e.g. an agency's before/after photos with its response)."""
    if actor.role not in {Role.OFFICER, Role.SUPERVISOR, Role.AGENCY}:
        raise forbidden(
            "Only officers, supervisors and the agencies on the case add files to it.",
            "เฉพาะเจ้าหน้าที่ ผู้บังคับบัญชา และหน่วยงานที่รับผิดชอบเรื่องเท่านั้นที่แนบไฟล์ได้",
            code="role_not_allowed",
        )
    _closed_to_uploads(case)
    prepared = await service.read_uploads(files, settings)
    await service.check_room(session, case.case_id, len(prepared), settings)
    await release(session)  # not held while the files are stored
    await service.store_blobs(storage, prepared)
    rows = await service.record(session, case_id=case.case_id, files=prepared, actor=actor, public=public, label=label)
    await session.commit()
    await service.still_stored(storage, prepared)
    return {"items": _links(f"/api/v1/cases/{case.case_id}/attachments", rows, _staff_audience(actor, case))}


@router.get("/cases/{case_id}/attachments/{attachment_id}", tags=["cases"], response_class=Response)
async def staff_download(
    case: CurrentCase,
    attachment_id: int,
    actor: CurrentActor,
    session: SessionDep,
    storage: StorageDep,
    original: Annotated[bool, Query(description="The original with its metadata (centre staff only)")] = False,
) -> Response:
    """Download a file of the case: the copy without metadata, or the original for the centre's staff."""
    row = await _row(session, case.case_id, attachment_id)
    audience = _staff_audience(actor, case)
    if not audience.may_see(row):
        raise not_found("No such attachment on this case.", "ไม่พบไฟล์แนบนี้ในเรื่องนี้")
    if original and not audience.may_read_original():
        raise forbidden(
            "Only the centre's officers, supervisors and auditors read originals; this is the copy without metadata.",
            "เฉพาะเจ้าหน้าที่ ผู้บังคับบัญชา และผู้ตรวจสอบของศูนย์เท่านั้นที่เปิดไฟล์ต้นฉบับได้",
        )
    return await _serve(storage, row, original=original)
