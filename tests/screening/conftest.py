"""Reference data and a small suggester trained on examples the tests write themselves."""

from __future__ import annotations

import pytest

from config.reference import ReferenceData, load_reference
from screening.classifier import CategoryModel
from screening.examples import Example, keyword_examples
from screening.service import Screener

# A fixture set in the shape of real complaints: a few per category, Thai, with place names.
FIXTURE_TEXTS = {
    "roads.pothole": [
        "ถนนหน้าหมู่บ้านเป็นหลุมลึก รถล้มบ่อย",
        "ผิวถนนพังเป็นหลุมใหญ่หลังฝนตก",
        "ถนนทรุดเป็นแอ่ง ยางมะตอยหลุดร่อน",
        "หลุมบนถนนใหญ่มาก อันตรายกับรถมอเตอร์ไซค์",
    ],
    "lighting.streetlight": [
        "ไฟถนนดับทั้งซอย กลางคืนมืดมาก",
        "เสาไฟฟ้าส่องสว่างไม่ติดมาหลายวัน",
        "ไฟทางดับ มืดและเปลี่ยว",
        "หลอดไฟส่องสว่างในซอยเสีย ไม่มีแสงสว่าง",
    ],
    "waste.cleanliness": [
        "ขยะกองเต็มหน้าปากซอย ไม่มีรถมาเก็บ",
        "มีคนทิ้งขยะริมถนน ส่งกลิ่นเหม็น",
        "รถเก็บขยะไม่มาเก็บขยะสามวันแล้ว",
        "ถังขยะล้น สกปรกมาก",
    ],
    "environment.noise": [
        "ร้านข้างบ้านเปิดเพลงเสียงดังทุกคืน",
        "เสียงดังจากการก่อสร้างตอนกลางคืน นอนไม่ได้",
        "มีเสียงรบกวนจากร้านคาราโอเกะถึงตีสอง",
        "เพื่อนบ้านจัดปาร์ตี้เสียงดังมาก",
    ],
}


def fixture_examples() -> list[Example]:
    return [
        Example(text, category, ref=f"fixture:{category}:{n}", source="case")
        for category, texts in FIXTURE_TEXTS.items()
        for n, text in enumerate(texts)
    ]


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    return load_reference()


@pytest.fixture(scope="session")
def small_model(reference: ReferenceData) -> CategoryModel:
    return CategoryModel.train(fixture_examples() + keyword_examples(reference), reference)


@pytest.fixture(scope="session")
def screener(reference: ReferenceData, small_model: CategoryModel) -> Screener:
    return Screener(reference, small_model)
