"""Duplicate candidates: near-identical Thai texts, the same complainant, unrelated texts."""

from __future__ import annotations

from typing import Any

import pytest

import screening.duplicates as duplicates
from screening.duplicates import DuplicateIndex, IndexedCase
from screening.places import Place

LAT_PHRAO = Place("10", "1038", None)
TEXTS = {
    "RT-1": "ถนนเป็นหลุมใหญ่ ซอยโชคชัย 4 เขตลาดพร้าว รถจักรยานยนต์ล้มไปสองคันแล้ว",
    "RT-2": "ไฟฟ้าดับทั้งหมู่บ้าน อ.สันทราย จ.เชียงใหม่ ตั้งแต่เมื่อวาน",
    "RT-3": "ถูกหลอกให้โอนเงินผ่านแอปพลิเคชันเงินกู้ ปลอมเป็นธนาคาร",
    "RT-4": "ร้านอาหารเปิดเพลงเสียงดังทุกคืนจนถึงตีสาม",
}


def index() -> DuplicateIndex:
    cases = [
        IndexedCase("RT-1", "roads.pothole", "10", "1038", None, None),
        IndexedCase("RT-2", "utilities.power", "50", "5014", "1101700230708", None),
        IndexedCase("RT-3", "fraud.online", None, None, None, "+66812345678"),
        IndexedCase("RT-4", "environment.noise", "10", "1030", None, None),
    ]
    return DuplicateIndex(cases, [TEXTS[c.case_id] for c in cases])


def test_near_identical_thai_text_in_the_same_place_is_a_duplicate() -> None:
    # Thai digits, different spacing and a few words changed: the same pothole reported again.
    again = "ถนนเป็นหลุมใหญ่มาก  ซอยโชคชัย ๔ เขตลาดพร้าว รถจักรยานยนต์ล้มแล้ว"
    found = index().search(again, category="roads.pothole", place=LAT_PHRAO)
    assert [c.case_id for c in found] == ["RT-1"]
    assert found[0].score > 0.6 and "same place" in found[0].reasons and "same category" in found[0].reasons


def test_unrelated_thai_text_is_not_a_duplicate() -> None:
    unrelated = "ขอให้ตัดกิ่งไม้ที่พาดสายไฟหน้าโรงเรียน กลัวจะหักลงมา"
    assert index().search(unrelated, category="environment.trees", place=LAT_PHRAO) == []
    # Same place and category, but a different problem: not enough on its own.
    other_pothole = "ทางเท้าหน้าตลาดยกตัวสูง คนแก่สะดุดล้ม"
    assert index().search(other_pothole, category="roads.pothole", place=LAT_PHRAO) == []


def test_the_same_complainant_is_a_candidate_whatever_the_text() -> None:
    by_id = index().search("เรื่องใหม่ ไม่เกี่ยวกับเรื่องเดิมเลย", category=None, place=None, citizen_id="1101700230708")
    assert [c.case_id for c in by_id] == ["RT-2"] and by_id[0].reasons[0] == "same complainant (citizen ID)"
    by_phone = index().search("โดนหลอกโอนเงินอีกแล้ว", category=None, place=None, phone="+66812345678")
    assert by_phone[0].case_id == "RT-3" and "same complainant (phone)" in by_phone[0].reasons


def test_a_case_is_not_its_own_duplicate_and_an_empty_index_finds_nothing() -> None:
    assert index().search(TEXTS["RT-4"], category=None, place=None, exclude="RT-4") == []
    assert DuplicateIndex([], []).search("อะไรก็ได้", category=None, place=None) == []


def test_adding_to_an_index_vectorises_only_new_cases() -> None:
    built = index()
    extra = IndexedCase("RT-5", "roads.pothole", "10", "1038", None, None)
    assert built.add([extra, IndexedCase("RT-1", None, None, None, None, None)], [TEXTS["RT-1"], "ซ้ำ"]) == 1
    assert len(built) == 5
    found = built.search(TEXTS["RT-1"], category="roads.pothole", place=LAT_PHRAO)
    assert {c.case_id for c in found} == {"RT-1", "RT-5"}


def test_a_search_answers_from_the_index_as_it_was_when_it_began(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API screens in its thread pool while a top-up adds cases in another thread: a search reads one view
    of rows, cases and complainants (before, each was read on its own, and a case added between two reads
    could point past the rows the search had scored)."""
    built = index()
    same_phone = IndexedCase("RT-5", "fraud.online", None, None, None, "+66812345678")
    real = duplicates.vectorise

    added: list[int] = []

    def adding_meanwhile(texts: list[str]) -> Any:
        if not added:  # the search's own query: another thread adds a case of the same complainant now
            added.append(1)
            built.add([same_phone], ["โดนหลอกโอนเงินผ่านแอปอีกครั้ง"])
        return real(texts)

    monkeypatch.setattr(duplicates, "vectorise", adding_meanwhile)
    found = built.search("โดนหลอกโอนเงินอีกแล้ว", category=None, place=None, phone="+66812345678")
    assert [c.case_id for c in found] == ["RT-3"] and len(built) == 5
    assert [c.case_id for c in built.search("อะไรก็ได้", category=None, place=None, phone="+66812345678")] == [
        "RT-3",
        "RT-5",
    ]
