"""The LINE intake conversation, step by step: the stage table as plain code, no LINE, no database."""

from __future__ import annotations

from typing import Any

import pytest

from channels.line_conversation import (
    Conversation,
    Draft,
    Incoming,
    LocationIn,
    OtherIn,
    PhotoIn,
    PhotoRef,
    PlaceError,
    Stage,
    Step,
    TextIn,
    advance,
    complaint_of,
)
from channels.places import GeoThaiPlaces
from domain.complaint import Channel, NotifyChannel

USER = "U" + "0123456789abcdef" * 2
DESCRIPTION = "ไฟถนนหน้าบ้านดับมาสองสัปดาห์ ตอนกลางคืนมืดมาก"


class FakePlaces:
    def typed(self, text: str) -> dict[str, Any]:
        if text == "เชียงใหม่":
            return {"province": "เชียงใหม่", "province_code": "50"}
        raise PlaceError("ไม่พบ")

    def point(self, latitude: float, longitude: float, address: str | None) -> dict[str, Any]:
        if latitude > 21:
            raise PlaceError("นอกประเทศไทย")
        return {"latitude": latitude, "longitude": longitude, "address": address}


def step(conversation: Conversation, *incoming: Incoming, max_photos: int = 3) -> Step:
    result = Step(conversation)
    for message in incoming:
        result = advance(result.conversation, message, places=FakePlaces(), max_photos=max_photos)
    return result


def texts(result: Step) -> str:
    return "\n".join(r.text for r in result.replies)


def test_whole_conversation_reaches_filing_with_everything_taken() -> None:
    photo = PhotoRef(message_id="m1", content_type="image/jpeg", size_bytes=10)
    result = step(Conversation(), TextIn("ร้องเรียน"))
    assert result.conversation.stage is Stage.DESCRIPTION and "เล่าปัญหา" in texts(result)
    result = step(result.conversation, TextIn(DESCRIPTION))
    assert result.conversation.stage is Stage.PLACE
    result = step(result.conversation, LocationIn(18.79, 98.98, "ถนนนิมมานเหมินท์"))
    assert result.conversation.stage is Stage.PHOTOS and "ถนนนิมมานเหมินท์" in texts(result)
    result = step(result.conversation, PhotoIn(photo))
    assert result.conversation.stage is Stage.PHOTOS and "1 รูป" in texts(result)
    result = step(result.conversation, TextIn("เสร็จ"))
    assert result.conversation.stage is Stage.CONSENT and "ยินยอม" in texts(result)
    assert not result.file
    result = step(result.conversation, TextIn("ยินยอม"))
    assert result.file and result.conversation.stage is Stage.FILING
    draft = result.conversation.draft
    assert draft.description == DESCRIPTION and draft.photos == (photo,) and draft.consent is True
    complaint = complaint_of(draft, line_user_id=USER)
    assert complaint.channel is Channel.line
    assert complaint.complainant.line_user_id == USER
    assert complaint.complainant.preferred_channels == [NotifyChannel.line, NotifyChannel.web]
    assert complaint.location is not None and complaint.location.latitude == 18.79
    assert [a.url_or_ref for a in complaint.attachments] == ["urn:line:message:m1"]
    assert complaint.attachments[0].content_type == "image/jpeg"


def test_a_long_first_message_is_the_description_and_typed_places_are_resolved() -> None:
    result = step(Conversation(), TextIn(DESCRIPTION))
    assert result.conversation.stage is Stage.PLACE
    result = step(result.conversation, TextIn("ไม่มีที่ไหน"))
    assert result.conversation.stage is Stage.PLACE and "ไม่พบ" in texts(result)
    result = step(result.conversation, TextIn("เชียงใหม่"))
    assert result.conversation.stage is Stage.PHOTOS
    assert result.conversation.draft.place == {"province": "เชียงใหม่", "province_code": "50"}


def test_short_texts_do_not_start_or_fill_a_description() -> None:
    result = step(Conversation(), TextIn("สวัสดี"))
    assert result.conversation.stage is Stage.IDLE and "ร้องเรียน" in texts(result)
    result = step(Conversation(stage=Stage.DESCRIPTION), TextIn("ไฟดับ"))
    assert result.conversation.stage is Stage.DESCRIPTION and "สั้นเกินไป" in texts(result)


def test_declining_consent_files_anonymously() -> None:
    draft = Draft(description=DESCRIPTION, place={"province": "เชียงใหม่"}, photos_done=True)
    result = step(Conversation(stage=Stage.CONSENT, draft=draft), TextIn("ไม่ยินยอม"))
    assert result.file and result.conversation.draft.consent is False
    complaint = complaint_of(result.conversation.draft, line_user_id=USER)
    assert complaint.complainant.line_user_id is None
    assert complaint.complainant.preferred_channels == [NotifyChannel.web]


def test_consent_needs_a_clear_answer() -> None:
    draft = Draft(description=DESCRIPTION, place={"province": "เชียงใหม่"}, photos_done=True)
    result = step(Conversation(stage=Stage.CONSENT, draft=draft), TextIn("อาจจะ"))
    assert not result.file and result.conversation.stage is Stage.CONSENT


@pytest.mark.parametrize("word", ["ยกเลิก", "Cancel", "  ยกเลิก  "])
def test_cancel_drops_the_draft_in_any_stage(word: str) -> None:
    draft = Draft(description=DESCRIPTION)
    result = step(Conversation(stage=Stage.PLACE, draft=draft), TextIn(word))
    assert result.conversation == Conversation()
    assert "ยกเลิก" in texts(result)


def test_restart_starts_a_fresh_draft() -> None:
    draft = Draft(description=DESCRIPTION, place={"province": "เชียงใหม่"})
    result = step(Conversation(stage=Stage.PHOTOS, draft=draft), TextIn("เริ่มใหม่"))
    assert result.conversation == Conversation(stage=Stage.DESCRIPTION)


@pytest.mark.parametrize(("text", "code"), [("ติดตาม 7KQ2M-X4B9T", "7KQ2M-X4B9T"), ("track abc", "abc"), ("ติดตาม", "")])
def test_tracking_words_keep_the_conversation(text: str, code: str) -> None:
    conversation = Conversation(stage=Stage.PLACE, draft=Draft(description=DESCRIPTION))
    result = step(conversation, TextIn(text))
    assert result.track == code and result.conversation == conversation


def test_photos_before_the_description_are_kept_and_the_limit_holds() -> None:
    result = step(Conversation(), PhotoIn(PhotoRef(message_id="a")))
    assert result.conversation.stage is Stage.DESCRIPTION and len(result.conversation.draft.photos) == 1
    result = step(result.conversation, PhotoIn(PhotoRef(message_id="b")), PhotoIn(PhotoRef(message_id="c")))
    assert len(result.conversation.draft.photos) == 3
    result = step(result.conversation, PhotoIn(PhotoRef(message_id="d")))
    assert len(result.conversation.draft.photos) == 3 and "สูงสุด 3" in texts(result)


def test_a_point_outside_thailand_is_refused_and_the_question_stands() -> None:
    conversation = Conversation(stage=Stage.PLACE, draft=Draft(description=DESCRIPTION))
    result = step(conversation, LocationIn(35.0, 139.0))
    assert result.conversation == conversation and "นอกประเทศไทย" in texts(result)


def test_stickers_are_not_taken_and_filing_waits() -> None:
    conversation = Conversation(stage=Stage.PLACE, draft=Draft(description=DESCRIPTION))
    assert step(conversation, OtherIn()).conversation == conversation
    filing = Conversation(stage=Stage.FILING, draft=Draft(description=DESCRIPTION))
    result = step(filing, TextIn("ยกเลิก"))
    assert result.conversation == filing and not result.file and "รอสักครู่" in texts(result)


def test_no_photos_asked_when_the_limit_is_zero() -> None:
    result = step(
        Conversation(stage=Stage.PLACE, draft=Draft(description=DESCRIPTION)), TextIn("เชียงใหม่"), max_photos=0
    )
    assert result.conversation.stage is Stage.CONSENT


def test_geothai_places_read_typed_names_and_points() -> None:
    places = GeoThaiPlaces()
    assert places.typed("เชียงใหม่ สันทราย")["district_code"] == "5014"
    assert places.typed("อ.สันทราย จ.เชียงใหม่")["province_code"] == "50"
    assert places.typed("Bangkok")["province_code"] == "10"
    with pytest.raises(PlaceError):
        places.typed("ไม่มีจังหวัดนี้แน่นอน")
    with pytest.raises(PlaceError) as outside:
        places.point(35.0, 139.0, None)
    assert "นอกประเทศไทย" in outside.value.message_th
    assert places.point(13.75, 100.5, "สนามหลวง")["address"] == "สนามหลวง"
