"""The LINE intake conversation as plain code: a stage, a draft, and one pure step per incoming message.

No I/O here: the bot (channels/line_bot.py) loads the conversation from the database, calls :func:`advance`,
saves what it returns and does what the step asks (file the complaint, answer a tracking question, reply).
Places are checked by a :class:`Places` given in, so the table of stages is tested without geothai or LINE.

Stages, in order: ``description`` -> ``place`` -> ``photos`` -> ``consent`` -> ``filing`` -> ``idle``.
Cancel, restart, help and tracking words work in every stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import ComplaintIn
from domain.complaint import Channel, NotifyChannel

MIN_DESCRIPTION = 10  # as ComplaintIn asks
MAX_DESCRIPTION = 5000


class Stage(StrEnum):
    IDLE = "idle"
    DESCRIPTION = "description"
    PLACE = "place"
    PHOTOS = "photos"
    CONSENT = "consent"
    FILING = "filing"  # the complaint is being filed: every message waits for it


class PhotoRef(BaseModel):
    """A photo the user sent: LINE's message id, and what fetching its content told (when it could)."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    content_type: str | None = None
    size_bytes: int | None = None


class Draft(BaseModel):
    """What the user has said so far. Personal data: stored with the conversation, never logged."""

    model_config = ConfigDict(frozen=True)

    description: str | None = None
    place: dict[str, Any] | None = None  # api.schemas.Location fields, already checked
    photos: tuple[PhotoRef, ...] = ()
    photos_done: bool = False
    consent: bool | None = None
    filing_key: str | None = None  # names the filing attempt, so a resumed filing is the same one


class Conversation(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage = Stage.IDLE
    draft: Draft = Field(default_factory=Draft)


# --- what comes in ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextIn:
    text: str


@dataclass(frozen=True)
class LocationIn:
    latitude: float
    longitude: float
    address: str | None = None


@dataclass(frozen=True)
class PhotoIn:
    photo: PhotoRef


@dataclass(frozen=True)
class OtherIn:
    """A sticker, a video, a file: not something the conversation takes."""


Incoming = TextIn | LocationIn | PhotoIn | OtherIn


class PlaceError(ValueError):
    """A place that cannot be used; ``message_th`` tells the user why."""

    def __init__(self, message_th: str) -> None:
        super().__init__(message_th)
        self.message_th = message_th


class Places(Protocol):
    """Turns what the user sent into checked ``Location`` fields, or raises :class:`PlaceError`."""

    def typed(self, text: str) -> dict[str, Any]: ...

    def point(self, latitude: float, longitude: float, address: str | None) -> dict[str, Any]: ...


# --- what goes out ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    text: str
    choices: tuple[str, ...] = ()  # quick-reply buttons that send their label as text


@dataclass(frozen=True)
class Step:
    """The conversation after one message, what to say, and what the bot must do."""

    conversation: Conversation
    replies: list[Reply] = field(default_factory=list)
    file: bool = False  # file the draft now (the conversation is in FILING)
    track: str | None = None  # answer the status of this tracking code ("" lists the user's own cases)


# --- words --------------------------------------------------------------------------------------------------

CANCEL = frozenset({"ยกเลิก", "cancel", "หยุด", "stop"})
RESTART = frozenset({"เริ่มใหม่", "restart", "start over"})
HELP = frozenset({"ช่วยเหลือ", "วิธีใช้", "help", "?"})
START = frozenset({"ร้องเรียน", "แจ้งเรื่อง", "ร้องทุกข์", "แจ้งปัญหา", "complain", "report", "เริ่ม", "start"})
DONE = frozenset({"เสร็จ", "เสร็จแล้ว", "ไม่มี", "ไม่มีรูป", "ข้าม", "ต่อไป", "done", "skip", "next", "no photo"})
YES = frozenset({"ยินยอม", "ตกลง", "ใช่", "yes", "ok", "agree"})
NO = frozenset({"ไม่ยินยอม", "ไม่", "ไม่ตกลง", "no", "disagree"})
_TRACK = re.compile(r"^(?:ติดตาม|track)(?:\s+|$)(.*)$", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")

# --- what the bot says (Thai: the LINE official account's language) ------------------------------------------

ASK_DESCRIPTION = "โปรดเล่าปัญหาที่ต้องการร้องเรียน: เกิดอะไรขึ้น ที่ไหน ตั้งแต่เมื่อไร (อย่างน้อย 10 ตัวอักษร)"
TOO_SHORT = "รายละเอียดสั้นเกินไป โปรดเล่าเพิ่มอีกเล็กน้อย (อย่างน้อย 10 ตัวอักษร)"
ASK_PLACE = (
    "เกิดเหตุที่ไหน? ส่งตำแหน่ง (กด + แล้วเลือก ตำแหน่งที่ตั้ง) หรือพิมพ์ชื่อจังหวัดและอำเภอ/เขต เช่น เชียงใหม่ สันทราย หรือ กรุงเทพ บางรัก"
)
ASK_PHOTOS = "ส่งรูปภาพประกอบได้ (สูงสุด {max} รูป) หรือพิมพ์ 'ไม่มี' เพื่อไปต่อ"
PHOTO_TAKEN = "ได้รับรูปภาพแล้ว ({n} รูป) ส่งเพิ่มได้ หรือพิมพ์ 'เสร็จ' เพื่อไปต่อ"
PHOTO_LIMIT = "รับรูปภาพได้สูงสุด {max} รูป รูปนี้จึงไม่ได้แนบ พิมพ์ 'เสร็จ' เพื่อไปต่อ"
ASK_CONSENT = (
    "ท่านยินยอมให้ศูนย์รับเรื่องใช้บัญชี LINE นี้แจ้งความคืบหน้าของเรื่อง "
    "และส่งรายละเอียดเรื่องให้หน่วยงานที่เกี่ยวข้องหรือไม่? "
    "ตอบ 'ยินยอม' หรือ 'ไม่ยินยอม' (ถ้าไม่ยินยอม เรื่องจะถูกบันทึกโดยไม่ระบุตัวตน และติดตามได้ด้วยรหัสติดตามเท่านั้น)"
)
PLACE_TAKEN = "ได้รับสถานที่แล้ว: {where}"
CANCELLED = "ยกเลิกเรื่องที่กำลังแจ้งแล้ว หากต้องการร้องเรียนใหม่ พิมพ์ 'ร้องเรียน'"
NOTHING_TO_CANCEL = "ไม่มีเรื่องที่กำลังแจ้งอยู่ หากต้องการร้องเรียน พิมพ์ 'ร้องเรียน'"
RESTARTED = "เริ่มใหม่แล้ว"
GREETING = (
    "สวัสดีครับ ศูนย์รับเรื่องร้องทุกข์ยินดีให้บริการ\n"
    "- พิมพ์ 'ร้องเรียน' หรือเล่าปัญหาได้เลย เพื่อแจ้งเรื่อง\n"
    "- พิมพ์ 'ติดตาม' ตามด้วยรหัสติดตาม เพื่อดูสถานะ เช่น ติดตาม 7KQ2M-X4B9T\n"
    "- พิมพ์ 'ยกเลิก' เพื่อยกเลิก หรือ 'เริ่มใหม่' เพื่อเริ่มแจ้งใหม่"
)
FILING_WAIT = "กำลังบันทึกเรื่องของท่าน โปรดรอสักครู่"
NOT_TAKEN = "ขออภัย รับได้เฉพาะข้อความ ตำแหน่งที่ตั้ง และรูปภาพ"


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def _where(place: dict[str, Any]) -> str:
    parts = [place.get("address"), place.get("subdistrict"), place.get("district"), place.get("province")]
    named = ", ".join(str(p) for p in parts if p)
    if named:
        return named
    return f"{place.get('latitude'):.5f}, {place.get('longitude'):.5f}"


def next_stage(draft: Draft) -> Stage:
    """The first thing the draft still lacks."""
    if draft.description is None:
        return Stage.DESCRIPTION
    if draft.place is None:
        return Stage.PLACE
    if not draft.photos_done:
        return Stage.PHOTOS
    return Stage.CONSENT


def prompt(stage: Stage, *, max_photos: int) -> Reply:
    """The question asked in ``stage``."""
    if stage is Stage.DESCRIPTION:
        return Reply(ASK_DESCRIPTION, ("ยกเลิก",))
    if stage is Stage.PLACE:
        return Reply(ASK_PLACE, ("ยกเลิก",))
    if stage is Stage.PHOTOS:
        return Reply(ASK_PHOTOS.format(max=max_photos), ("ไม่มี", "ยกเลิก"))
    if stage is Stage.CONSENT:
        return Reply(ASK_CONSENT, ("ยินยอม", "ไม่ยินยอม", "ยกเลิก"))
    if stage is Stage.FILING:
        return Reply(FILING_WAIT)
    return Reply(GREETING, ("ร้องเรียน",))


def _moved(draft: Draft, *, max_photos: int, before: list[Reply] | None = None) -> Step:
    """Go to what the draft lacks next, and ask for it (after ``before``)."""
    if max_photos == 0 and not draft.photos_done:
        draft = draft.model_copy(update={"photos_done": True})
    stage = next_stage(draft)
    return Step(Conversation(stage=stage, draft=draft), [*(before or []), prompt(stage, max_photos=max_photos)])


def advance(conversation: Conversation, incoming: Incoming, *, places: Places, max_photos: int = 5) -> Step:
    """The conversation after ``incoming``: pure, so every path is a unit test."""
    stage, draft = conversation.stage, conversation.draft
    if isinstance(incoming, TextIn):
        command = _command(conversation, incoming.text, max_photos=max_photos)
        if command is not None:
            return command
    if stage is Stage.FILING:
        return Step(conversation, [Reply(FILING_WAIT)])
    if isinstance(incoming, OtherIn):
        return Step(conversation, [Reply(NOT_TAKEN), prompt(stage, max_photos=max_photos)])
    if isinstance(incoming, LocationIn):
        return _location(conversation, incoming, places=places, max_photos=max_photos)
    if isinstance(incoming, PhotoIn):
        return _photo(conversation, incoming.photo, max_photos=max_photos)
    text = incoming.text.strip()
    if stage is Stage.IDLE:
        if normalise(text) in START:
            return _moved(Draft(), max_photos=max_photos)
        if len(text) < MIN_DESCRIPTION:
            return Step(conversation, [prompt(Stage.IDLE, max_photos=max_photos)])
        return _moved(Draft(description=text[:MAX_DESCRIPTION]), max_photos=max_photos)
    if stage is Stage.DESCRIPTION:
        if len(text) < MIN_DESCRIPTION:
            return Step(conversation, [Reply(TOO_SHORT, ("ยกเลิก",))])
        return _moved(draft.model_copy(update={"description": text[:MAX_DESCRIPTION]}), max_photos=max_photos)
    if stage is Stage.PLACE:
        try:
            place = places.typed(text)
        except PlaceError as exc:
            return Step(conversation, [Reply(exc.message_th), prompt(stage, max_photos=max_photos)])
        taken = Reply(PLACE_TAKEN.format(where=_where(place)))
        return _moved(draft.model_copy(update={"place": place}), max_photos=max_photos, before=[taken])
    if stage is Stage.PHOTOS:
        if normalise(text) in DONE:
            return _moved(draft.model_copy(update={"photos_done": True}), max_photos=max_photos)
        return Step(conversation, [prompt(stage, max_photos=max_photos)])
    # CONSENT
    answer = normalise(text)
    if answer in YES or answer in NO:
        consented = draft.model_copy(update={"consent": answer in YES})
        return Step(Conversation(stage=Stage.FILING, draft=consented), [], file=True)
    return Step(conversation, [prompt(stage, max_photos=max_photos)])


def _command(conversation: Conversation, text: str, *, max_photos: int) -> Step | None:
    """Words that work in every stage: tracking, cancel, restart, help."""
    word = normalise(text)
    track = _TRACK.match(text.strip())
    if track is not None:
        return Step(conversation, track=track.group(1).strip())
    if conversation.stage is Stage.FILING:
        return None
    if word in CANCEL:
        said = CANCELLED if conversation.stage is not Stage.IDLE else NOTHING_TO_CANCEL
        return Step(Conversation(), [Reply(said, ("ร้องเรียน",))])
    if word in RESTART:
        return _moved(Draft(), max_photos=max_photos, before=[Reply(RESTARTED)])
    if word in HELP:
        again = [] if conversation.stage is Stage.IDLE else [prompt(conversation.stage, max_photos=max_photos)]
        return Step(conversation, [Reply(GREETING), *again])
    return None


def _location(conversation: Conversation, incoming: LocationIn, *, places: Places, max_photos: int) -> Step:
    try:
        place = places.point(incoming.latitude, incoming.longitude, incoming.address)
    except PlaceError as exc:
        return Step(conversation, [Reply(exc.message_th), prompt(conversation.stage, max_photos=max_photos)])
    draft = conversation.draft.model_copy(update={"place": place})
    return _moved(draft, max_photos=max_photos, before=[Reply(PLACE_TAKEN.format(where=_where(place)))])


def _photo(conversation: Conversation, photo: PhotoRef, *, max_photos: int) -> Step:
    draft = conversation.draft
    if len(draft.photos) >= max_photos:
        return Step(conversation, [Reply(PHOTO_LIMIT.format(max=max_photos), ("เสร็จ",))])
    draft = draft.model_copy(update={"photos": (*draft.photos, photo)})
    if conversation.stage is Stage.PHOTOS:
        return Step(
            Conversation(stage=Stage.PHOTOS, draft=draft), [Reply(PHOTO_TAKEN.format(n=len(draft.photos)), ("เสร็จ",))]
        )
    # A photo before the description or the place: kept, and the question still stands.
    stage = next_stage(draft) if conversation.stage is not Stage.IDLE else Stage.DESCRIPTION
    return Step(
        Conversation(stage=stage, draft=draft),
        [Reply(PHOTO_TAKEN.format(n=len(draft.photos))), prompt(stage, max_photos=max_photos)],
    )


def photo_reference(photo: PhotoRef) -> str:
    """How a LINE photo is referred to on the case until its content is copied to the attachment store."""
    return f"urn:line:message:{photo.message_id}"


def complaint_of(draft: Draft, *, line_user_id: str) -> ComplaintIn:
    """The complaint the draft files: channel LINE; with consent the LINE user is the contact and LINE the
    preferred channel, without it the complaint is anonymous (tracked by its code only)."""
    complainant: dict[str, Any] = {}
    if draft.consent:
        complainant = {"line_user_id": line_user_id, "preferred_channels": [NotifyChannel.line, NotifyChannel.web]}
    return ComplaintIn.model_validate(
        {
            "channel": Channel.line,
            "description": draft.description,
            "complainant": complainant,
            "location": draft.place,
            "attachments": [
                {
                    "name": f"line-photo-{p.message_id}",
                    "url_or_ref": photo_reference(p),
                    "content_type": p.content_type,
                    "size_bytes": p.size_bytes,
                }
                for p in draft.photos
            ],
        }
    )
