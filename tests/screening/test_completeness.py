"""Each completeness rule with valid and invalid values, Thai and English, Thai digits, spaces and dashes."""

from __future__ import annotations

from typing import Any

import pytest
from stdnum.th import pin

from config.reference import ReferenceData
from screening.completeness import Completeness, Facts, check_completeness

VALID_ID = "1101700230708"
LONG_ENOUGH = "ถนนหน้าบ้านเป็นหลุมลึกมากมาสองเดือนแล้ว รถจักรยานยนต์ล้มไปหลายคัน"


def run(reference: ReferenceData, category: str | None = "roads.pothole", **fields: Any) -> Completeness:
    body: dict[str, Any] = {"channel": "web", "description": LONG_ENOUGH} | fields
    return check_completeness(
        Facts.from_json(body), category=reference.categories.get(category or ""), reference=reference
    )


def problems(result: Completeness) -> dict[str, str]:
    return {item.field: item.problem for item in result.items}


@pytest.mark.parametrize(
    "written", [VALID_ID, "1-1017-00230-70-8", "1 1017 00230 70 8", "๑-๑๐๑๗-๐๐๒๓๐-๗๐-๘", " ๑๑๐๑๗๐๐๒๓๐๗๐๘ "]
)
def test_citizen_id_with_thai_digits_spaces_and_dashes_is_valid(reference: ReferenceData, written: str) -> None:
    result = run(reference, complainant={"citizen_id": written})
    assert "complainant.citizen_id" not in problems(result)
    assert result.normalised["citizen_id"] == VALID_ID


@pytest.mark.parametrize(
    ("written", "message"),
    [("1101700230709", "check digit"), ("110170023070", "13 digits"), ("11017OO230708", "only digits")],
)
def test_citizen_id_typos_are_invalid_in_both_languages(reference: ReferenceData, written: str, message: str) -> None:
    result = run(reference, complainant={"citizen_id": written})
    item = next(i for i in result.items if i.field == "complainant.citizen_id")
    assert item.problem == "invalid" and message in item.message and item.message_th
    assert written not in item.message  # never echo personal data


def test_citizen_id_starting_with_zero_is_a_check_not_an_error(reference: ReferenceData) -> None:
    body = "012345678901"
    stateless = body + pin.calc_check_digit(body)
    result = run(reference, category="government.other", complainant={"citizen_id": stateless})
    assert problems(result)["complainant.citizen_id"] == "check"
    assert result.complete  # a "check" alone does not hold the complaint back
    wrong = body + str((int(pin.calc_check_digit(body)) + 1) % 10)
    assert problems(run(reference, complainant={"citizen_id": wrong}))["complainant.citizen_id"] == "invalid"


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("081-234-5678", "+66812345678"),
        ("๐๘๑ ๒๓๔ ๕๖๗๘", "+66812345678"),
        ("02 123 4567", "+6621234567"),
        ("+66 81 234 5678", "+66812345678"),
    ],
)
def test_phone_numbers_are_normalised(reference: ReferenceData, written: str, e164: str) -> None:
    result = run(reference, complainant={"phone": written})
    assert result.normalised["phone"] == e164
    assert "complainant.phone" not in problems(result)


@pytest.mark.parametrize("written", ["12345", "081-234-567", "phone me"])
def test_bad_phone_numbers_are_invalid(reference: ReferenceData, written: str) -> None:
    assert problems(run(reference, complainant={"phone": written}))["complainant.phone"] == "invalid"


def test_contact_required_by_category_is_missing_then_satisfied(reference: ReferenceData) -> None:
    text = "ถูกแก๊งคอลเซ็นเตอร์หลอกให้โอนเงินห้าหมื่นบาท อ้างว่าเป็นเจ้าหน้าที่ธนาคาร"
    missing = run(reference, "fraud.online", description=text, occurred_on="2025-01-02")
    assert problems(missing) == {"complainant.contact": "missing"}
    assert missing.question() is not None
    with_email = run(
        reference, "fraud.online", description=text, occurred_on="2025-01-02", complainant={"email": "Som@Example.COM"}
    )
    assert with_email.complete and with_email.normalised["email"] == "Som@example.com"
    bad_email = run(
        reference, "fraud.online", description=text, occurred_on="2025-01-02", complainant={"email": "som@"}
    )
    assert problems(bad_email) == {"complainant.email": "invalid"}  # not also "contact missing"


def test_land_needs_identity_and_district(reference: ReferenceData) -> None:
    text = "เพื่อนบ้านรุกล้ำแนวเขตที่ดินของข้าพเจ้าประมาณสองเมตร ขอให้รังวัดใหม่"
    result = run(reference, "land.dispute", description=text, location={"province": "Khon Kaen"})
    assert problems(result) == {
        "location.district": "missing",
        "complainant.name": "missing",
        "complainant.citizen_id": "missing",
        "complainant.contact": "missing",
    }
    done = run(
        reference,
        "land.dispute",
        description=text + " อำเภอเมืองขอนแก่น",
        location={"province": "ขอนแก่น"},
        complainant={"name": "สมชาย", "citizen_id": VALID_ID, "phone": "0812345678"},
    )
    assert done.complete, done.items
    assert done.place is not None and done.place.district_code == "4001"


def test_hotline_channel_needs_a_contact(reference: ReferenceData) -> None:
    result = run(reference, "roads.pothole", channel="hotline", description=LONG_ENOUGH + " เขตลาดพร้าว")
    assert problems(result) == {"complainant.contact": "missing"}


@pytest.mark.parametrize(
    ("text", "district"),
    [
        ("ถนนเป็นหลุมใหญ่ ซอยโชคชัย 4 เขตลาดพร้าว อันตรายมากสำหรับรถจักรยานยนต์", "1038"),
        ("There is a deep pothole on Soi Chokchai 4, Lat Phrao district, Bangkok, dangerous", "1038"),
        ("ไฟฟ้าดับทั้งหมู่บ้านมาสามวัน ต.หนองหาร อ.สันทราย จ.เชียงใหม่ ยังไม่มีใครมาซ่อม", "5014"),
        ("ถนนในหมู่บ้านชำรุดมาก อ.เมือง จ.ขอนแก่น ขอให้มาซ่อมด่วน", "4001"),
    ],
)
def test_place_named_only_in_the_text(reference: ReferenceData, text: str, district: str) -> None:
    result = run(reference, description=text)
    assert result.place is not None and result.place.district_code == district
    assert result.place.source == "text"
    assert "location.district" not in problems(result)


def test_place_from_fields_in_english_and_postal_code(reference: ReferenceData) -> None:
    result = run(reference, location={"province": "Chiang Mai", "district": "San Sai"})
    assert result.place is not None and result.place.district_code == "5014" and result.place.source == "fields"
    by_postal = run(reference, "government.other", location={"postal_code": "๕๐๒๙๐"})
    assert by_postal.place is not None and by_postal.place.province_code == "50"


def test_unknown_place_and_coordinates_outside_thailand_are_invalid(reference: ReferenceData) -> None:
    assert problems(run(reference, location={"province": "Atlantis"}))["location.province"] == "invalid"
    outside = run(reference, "government.other", location={"latitude": 48.85, "longitude": 2.35})
    assert problems(outside)["location.latitude"] == "invalid"
    inside = run(reference, "government.other", location={"latitude": 13.80, "longitude": 100.57})
    assert "location" not in problems(inside)


def test_ambiguous_district_asks_for_the_province(reference: ReferenceData) -> None:
    # A district name that several provinces share, taken from geothai rather than remembered.
    import geothai

    seen: dict[str, list[str]] = {}
    for province in geothai.provinces():
        for district in geothai.districts(province.code):
            seen.setdefault(district.name_th, []).append(district.code)
    name = next(n for n, codes in sorted(seen.items()) if len(codes) > 1 and not n.startswith("เขต"))
    result = run(reference, description=f"ถนนเสียหายหนักมาก ช่วยซ่อมด่วนด้วยครับ อำเภอ{name} รถผ่านไม่ได้เลย")
    assert problems(result).get("location.district") == "ambiguous"


def test_description_too_short_and_missing(reference: ReferenceData) -> None:
    assert problems(run(reference, description="ถนนพัง เขตลาดพร้าว"))["description"] == "too_short"
    assert problems(run(reference, description=""))["description"] == "missing"
    # Corruption needs more detail than a pothole.
    detailed_for_a_pothole = "เจ้าหน้าที่เรียกรับเงินใต้โต๊ะ ห้าพันบาท จ.ภูเก็ต"
    assert (
        problems(run(reference, "corruption.officials", description=detailed_for_a_pothole, occurred_on="2025-03-01"))[
            "description"
        ]
        == "too_short"
    )


def test_occurred_on_in_the_future_or_buddhist_era_is_invalid(reference: ReferenceData) -> None:
    assert problems(run(reference, occurred_on="2568-01-01"))["occurred_on"] == "invalid"
    assert problems(run(reference, occurred_on="not a date"))["occurred_on"] == "invalid"
    assert "occurred_on" not in problems(run(reference, occurred_on="๒๐๒๕-๐๑-๐๒"))


def test_question_is_ready_to_send_in_thai_and_english(reference: ReferenceData) -> None:
    result = run(reference, "land.dispute", description="ที่ดิน")
    question = result.question()
    assert question is not None
    assert question["th"].startswith("เพื่อดำเนินการ") and "(1)" in question["th"]
    assert question["en"].startswith("To go on") and "citizen ID" in question["en"]
    assert question["th"] in question["text"] and question["en"] in question["text"]
    assert len(question["text"]) <= 2000  # need_info's question field
    assert run(reference, "government.other", location={"province": "Bangkok"}).question() is None


def test_a_read_model_case_is_not_asked_for_what_the_read_model_does_not_keep(reference: ReferenceData) -> None:
    from types import SimpleNamespace

    case = SimpleNamespace(
        description="ถูกแก๊งคอลเซ็นเตอร์หลอกให้โอนเงินห้าหมื่นบาท อ้างว่าเป็นเจ้าหน้าที่ธนาคาร",
        subject=None,
        channel="web",
        category=None,
        complainant_name=None,
        complainant_citizen_id=None,
        complainant_phone="+66812345678",
        complainant_email=None,
        complainant_line_user_id=None,
        province="กรุงเทพมหานคร",
        district="เขตลาดพร้าว",
        subdistrict=None,
        address=None,
        latitude=None,
        longitude=None,
        attachments=[],
    )
    result = check_completeness(
        Facts.from_case(case), category=reference.categories["fraud.online"], reference=reference
    )
    assert result.complete and result.unchecked == ("occurred_on",)
    assert result.place is not None and result.place.district_code == "1038"
