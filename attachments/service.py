"""Taking files in and handing them out: limits, storage, the read-model row, and who may see which copy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile  # what FastAPI and a parsed form both give

from activities.projection import insert_ignoring_duplicates
from api.errors import AppError
from api.views import BANGKOK
from attachments.files import Prepared, prepare, too_large
from attachments.storage import Storage, StorageError, content_key
from config.settings import Settings
from domain.complaint import FileRef
from store import models
from workflows.process import Actor, Role

log = structlog.get_logger(__name__)

A = models.Attachment
# Who reads a case's originals (with their metadata): the centre's own staff, never agencies or the public.
ORIGINAL_READERS = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.AUDITOR})
UPLOAD_REF = "upload:"


def too_many(limit: int, *, per_case: bool = False) -> AppError:
    where_en, where_th = ("this case", "เรื่องนี้") if per_case else ("one request", "การส่งหนึ่งครั้ง")
    return AppError(
        status=422,
        code="too_many_attachments",
        message=f"At most {limit} files may be attached to {where_en}.",
        message_th=f"แนบไฟล์ได้ไม่เกิน {limit} ไฟล์ต่อ{where_th}",
    )


def storage_unavailable() -> AppError:
    return AppError(
        status=503,
        code="attachment_storage_unavailable",
        message="The file store is not available; nothing was saved. Please try again in a minute.",
        message_th="ที่เก็บไฟล์ไม่พร้อมใช้งานชั่วคราว ยังไม่ได้บันทึก กรุณาลองใหม่อีกครั้งในอีกสักครู่",
        headers={"Retry-After": "60"},
    )


async def read_uploads(files: Sequence[UploadFile], settings: Settings) -> list[Prepared]:
    """Read and check every uploaded file (count, size, type) before anything is stored."""
    files = [f for f in files if f.filename or f.size]
    if len(files) > settings.attachment_max_files:
        raise too_many(settings.attachment_max_files)
    prepared = []
    for upload in files:
        data = await upload.read(settings.attachment_max_bytes + 1)
        if len(data) > settings.attachment_max_bytes:
            raise too_large(settings.attachment_max_bytes)
        # Decoding, turning upright and re-encoding a photo without its metadata is CPU work (0.29 s for a 9 MB
        # 12-megapixel JPEG here): in a thread (Pillow lets go of the GIL), not on the event loop, where it held
        # up every other request of the process.
        prepared.append(
            await asyncio.to_thread(prepare, upload.filename, data, max_bytes=settings.attachment_max_bytes)
        )
    return prepared


async def store_blobs(storage: Storage, files: Sequence[Prepared]) -> None:
    """Write each file's private original and served copy (content-addressed: a second write is a no-op)."""
    try:
        for f in files:
            await storage.put(content_key("original", f.sha256), f.data, f.content_type)
            if f.public_data is not f.data:
                await storage.put(content_key("public", f.sha256), f.public_data, f.public_type)
    except StorageError as exc:
        log.error("attachment_store_failed", storage=storage.name, error=str(exc))
        raise storage_unavailable() from None


async def still_stored(storage: Storage, files: Sequence[Prepared]) -> None:
    """After the files' rows are committed: each file is still in the store, or is put back. A file is named
    by its content, so one sent now may be one an ended case had; ``rongtuk db archive --delete`` deletes such
    a file when no row refers to it, and checks again after deleting (putting it back if a row appeared).
    This check after the row closes the other side: a file deleted between this upload's write and its row
    is written again here."""
    try:
        for f in files:
            keys = [("original", f.data, f.content_type)]
            if f.public_data is not f.data:
                keys.append(("public", f.public_data, f.public_type))
            for kind, data, content_type in keys:
                key = content_key(kind, f.sha256)
                if not await storage.exists(key):
                    log.warning("attachment_written_again", kind=kind)
                    await storage.put(key, data, content_type)
    except StorageError as exc:
        log.error("attachment_store_failed", storage=storage.name, error=str(exc))
        raise storage_unavailable() from None


def file_ref(f: Prepared) -> FileRef:
    """How the complaint itself refers to a stored file (kept in the case's history)."""
    return FileRef(name=f.name, url_or_ref=f"{UPLOAD_REF}{f.sha256}", content_type=f.content_type, size_bytes=f.size)


async def count_for(session: AsyncSession, case_id: str) -> int:
    return int((await session.execute(select(func.count()).where(A.case_id == case_id))).scalar_one())


async def check_room(session: AsyncSession, case_id: str, adding: int, settings: Settings) -> None:
    """422 when these files would take the case past its limit."""
    if await count_for(session, case_id) + adding > settings.attachment_max_per_case:
        raise too_many(settings.attachment_max_per_case, per_case=True)


async def record(
    session: AsyncSession,
    *,
    case_id: str,
    files: Sequence[Prepared],
    actor: Actor,
    public: bool,
    label: str | None = None,
) -> list[models.Attachment]:
    """The read-model rows of ``files`` on a case (a file already on the case keeps its first row)."""
    now = datetime.now(UTC)
    if files:
        rows = [
            {
                "case_id": case_id,
                "sha256": f.sha256,
                "name": f.name,
                "content_type": f.content_type,
                "size_bytes": f.size,
                "storage_key": content_key("original", f.sha256),
                "public_key": content_key("public" if f.public_data is not f.data else "original", f.sha256),
                "label": label,
                "public": public,
                "uploaded_by": actor.id[:64],
                "uploader_role": actor.role.value,
                "uploader_agency": actor.agency,
                "latitude": f.latitude,
                "longitude": f.longitude,
                "at": now,
            }
            for f in files
        ]
        await session.execute(insert_ignoring_duplicates(session, A, rows, ["case_id", "sha256"]))
    shas = [f.sha256 for f in files]
    found = (await session.execute(select(A).where(A.case_id == case_id, A.sha256.in_(shas)))).scalars()
    by_sha = {row.sha256: row for row in found}
    log.info("attachments_recorded", case_id=case_id, count=len(files), role=actor.role.value)
    return [by_sha[s] for s in shas if s in by_sha]


async def of_case(session: AsyncSession, case_id: str) -> list[models.Attachment]:
    return list((await session.execute(select(A).where(A.case_id == case_id).order_by(A.at, A.id))).scalars())


@dataclass(frozen=True)
class Audience:
    """Who is looking: the complainant (by tracking code), or a staff actor."""

    actor: Actor
    confidential_case: bool = False

    def may_see(self, row: models.Attachment) -> bool:
        role = self.actor.role
        if role is Role.CITIZEN:
            return row.uploader_role == Role.CITIZEN.value or row.public
        if role is Role.AGENCY:
            # Photos and scans may show or name a confidential complainant; their own agency's files always.
            own = row.uploader_agency is not None and row.uploader_agency == self.actor.agency
            return own or not self.confidential_case
        return role in ORIGINAL_READERS

    def may_read_original(self) -> bool:
        return self.actor.role in ORIGINAL_READERS


def attachment_view(row: models.Attachment, *, link: str, original: bool) -> dict[str, object]:
    """One attachment as a case or tracking view lists it (the position only for those who read originals)."""
    out: dict[str, object] = {
        "id": row.id,
        "name": row.name,
        "content_type": row.content_type,
        "size_bytes": row.size_bytes,
        "label": row.label,
        "public": row.public,
        "by": row.uploader_agency if row.uploader_role == Role.AGENCY.value else row.uploader_role,
        "at": row.at.astimezone(BANGKOK).isoformat(),
        "download": link,
    }
    if original:
        out["original"] = f"{link}?original=true"
        out["uploaded_by"] = row.uploaded_by
        if row.latitude is not None:
            out["gps"] = {"latitude": row.latitude, "longitude": row.longitude}
    return out


async def listed(session: AsyncSession, case: models.Case, actor: Actor, *, prefix: str) -> list[dict[str, object]]:
    """The case's files ``actor`` may see, as the case and tracking views list them, with links under
    ``prefix``; references that are not uploads (a post's link, a registry number) are listed too."""
    audience = Audience(actor, confidential_case=bool(case.confidential))
    every = await of_case(session, case.case_id)
    rows = [r for r in every if audience.may_see(r)]
    original = audience.may_read_original()
    out = [attachment_view(row, link=f"{prefix}/{row.id}", original=original) for row in rows]
    if actor.role is not Role.CITIZEN and not (actor.role is Role.AGENCY and case.confidential):
        # References the complaint carries that are not stored files here: a post's link, a registry number.
        stored = {f"{UPLOAD_REF}{row.sha256}" for row in every}
        out += [ref for ref in case.attachments or [] if ref.get("url_or_ref") not in stored]
    return out


def timeline_entries(rows: list[dict[str, object]], events: Sequence[models.CaseEvent]) -> list[dict[str, object]]:
    """Timeline entries for files added (``attachment_added``), placed after the last event before each."""
    entries = []
    for item in rows:
        if "id" not in item:
            continue
        at = datetime.fromisoformat(str(item["at"]))
        seq = max((e.seq for e in events if e.at <= at), default=0)
        entries.append(
            {
                "seq": seq,
                "event": "attachment_added",
                "label_en": "File added",
                "label_th": "แนบไฟล์",
                "at": str(item["at"]),
                "state": next((e.to_state for e in reversed(events) if e.seq == seq), "received"),
                "by": item.get("by"),
                "attachment_id": item["id"],
                "name": item["name"],
            }
        )
    return entries


def merged_timeline(timeline: list[dict[str, object]], extra: list[dict[str, object]]) -> list[dict[str, object]]:
    """The workflow's timeline with entries from beside it, in time order (stable for equal times)."""
    return sorted([*timeline, *extra], key=lambda e: datetime.fromisoformat(str(e["at"])))
