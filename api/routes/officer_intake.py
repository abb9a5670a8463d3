"""Officers' intake: complaints from the hotline, the counter, letters and social media, keyed in by an officer.

The officer is recorded as the filer; a scanned letter, or the post's screenshot, comes as attachments, and a
social-media post's link is kept with the complaint. Multipart, so the files go with the complaint in one
request; the consoles' intake form posts here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from api.deps import CurrentActor, SettingsDep
from api.errors import AppError, ErrorDetail, forbidden
from api.responses import IdempotencyKeyHeader, ReceiptOut
from api.routes.attachments import Files, Label, StorageDep, file_with_attachments, parse_complaint
from api.schemas import ComplaintIn
from attachments import service
from domain.complaint import OFFICER_CHANNELS, Channel
from workflows.process import Actor, Role

router = APIRouter(prefix="/api/v1/intake", tags=["intake"])

# What a file is, by channel, unless the officer says otherwise.
_DEFAULT_LABEL = {Channel.letter: "letter", Channel.social: "screenshot"}


def _bad(field: str, message: str, message_th: str) -> AppError:
    return AppError(
        status=422,
        code="invalid_request",
        message=message,
        message_th=message_th,
        details=[ErrorDetail(field=field, message=message, message_th=message_th)],
    )


def _with_post_link(complaint: ComplaintIn, post_url: str | None) -> ComplaintIn:
    if complaint.channel is not Channel.social:
        return complaint
    if not post_url or not post_url.lower().startswith(("https://", "http://")):
        raise _bad(
            "post_url",
            "A complaint found on social media needs the post's link (https://...).",
            "เรื่องจากสื่อสังคมออนไลน์ต้องระบุลิงก์ของโพสต์ (https://...)",
        )
    body = complaint.model_dump(mode="json", exclude_none=True)
    body["attachments"] = [*body.get("attachments", []), {"name": "post", "url_or_ref": post_url}]
    return parse_complaint(body)


@router.post(
    "/officer",
    status_code=201,
    response_model=ReceiptOut,
    response_model_exclude_unset=True,
    responses={202: {"description": "Accepted; the receipt is still being made", "model": ReceiptOut}},
)
async def officer_intake(
    request: Request,
    actor: CurrentActor,
    settings: SettingsDep,
    storage: StorageDep,
    complaint: Annotated[str, Form(description="The complaint as JSON, as for POST /api/v1/complaints")],
    files: Files = [],  # noqa: B006 - FastAPI copies defaults
    post_url: Annotated[str | None, Form(max_length=2000, description="Social media: the post's link")] = None,
    label: Label = None,
    share_with_complainant: Annotated[bool, Form(description="Show the files on the tracking page")] = False,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Key in a complaint from the hotline, the counter, a letter or social media, with its files."""
    if actor.role is not Role.OFFICER:
        raise forbidden(
            "Only officers key in complaints from the hotline, the counter, letters and social media.",
            "เฉพาะเจ้าหน้าที่รับเรื่องเท่านั้นที่บันทึกเรื่องจากสายด่วน เคาน์เตอร์ จดหมาย และสื่อสังคมออนไลน์ได้",
            code="role_not_allowed",
        )
    body = parse_complaint(complaint)
    if body.channel not in OFFICER_CHANNELS:
        names = ", ".join(sorted(c.value for c in OFFICER_CHANNELS))
        raise _bad(
            "channel",
            f"Officers' intake is for these channels: {names}; citizens file the others themselves.",
            f"การบันทึกโดยเจ้าหน้าที่ใช้กับช่องทาง: {names} เท่านั้น ช่องทางอื่นผู้ร้องยื่นเอง",
        )
    body = _with_post_link(body, post_url)
    prepared = await service.read_uploads(files, settings)
    return await file_with_attachments(
        request=request,
        settings=settings,
        storage=storage,
        complaint=body,
        files=prepared,
        actor=Actor(id=actor.id, role=actor.role, agency=actor.agency),
        public=share_with_complainant,
        label=label or _DEFAULT_LABEL.get(body.channel),
        key=key,
        scope=f"staff:{actor.id}",
    )
