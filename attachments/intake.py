"""Filing a complaint that comes with files, for every channel that brings some (web, officers, email)."""

from __future__ import annotations

from collections.abc import Sequence

from api.schemas import LAT_RANGE, LON_RANGE, ComplaintIn
from api.service import IntakeDesk
from attachments import service
from attachments.files import Prepared
from attachments.storage import Storage
from config.settings import Settings
from intake.idempotency import Idempotency
from intake_channels.filing import Filed, file
from workflows.process import Actor

# ComplaintIn's own limit on the references a complaint carries.
MAX_REFERENCES = 20


def with_photo_place(body: dict[str, object], files: Sequence[Prepared], settings: Settings) -> dict[str, object]:
    """The complaint with the first photo's GPS position as its place, when it gave none and that is in Thailand."""
    if body.get("location") is not None or not settings.attachment_gps_to_place:
        return body
    for f in files:
        if f.latitude is None or f.longitude is None:
            continue
        if LAT_RANGE[0] <= f.latitude <= LAT_RANGE[1] and LON_RANGE[0] <= f.longitude <= LON_RANGE[1]:
            return body | {"location": {"latitude": round(f.latitude, 6), "longitude": round(f.longitude, 6)}}
    return body


def complete(complaint: ComplaintIn, files: Sequence[Prepared], settings: Settings) -> dict[str, object]:
    """The complaint's JSON with references to ``files`` and, perhaps, a photo's place; validate it again."""
    if len(complaint.attachments) + len(files) > MAX_REFERENCES:
        raise service.too_many(MAX_REFERENCES)
    body = complaint.model_dump(mode="json", exclude_none=True)
    refs = [service.file_ref(f).model_dump(mode="json", exclude_none=True) for f in files]
    body["attachments"] = [*body.get("attachments", []), *refs]
    return with_photo_place(body, files, settings)


async def file_with_files(
    desk: IntakeDesk,
    *,
    storage: Storage,
    complaint: ComplaintIn,
    files: Sequence[Prepared],
    actor: Actor,
    owner: Actor | None = None,
    public: bool,
    label: str | None = None,
    idempotency: Idempotency | None = None,
) -> Filed:
    """Store the files, file the complaint (already completed by :func:`complete`), then record the files on
    the new case as ``owner``'s (the complainant's own when an officer keys in what they brought)."""
    await service.store_blobs(storage, files)
    filed = await file(desk, complaint=complaint, actor=actor, idempotency=idempotency)
    # A retry with the same key gets the first answer; its files are already on the case (same hashes).
    async with desk.db.session() as session:
        await service.record(
            session, case_id=filed.case_id, files=files, actor=owner or actor, public=public, label=label
        )
    await service.still_stored(storage, files)
    return filed
