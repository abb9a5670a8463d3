"""Where a complaint is: from its location fields (validated by ``api.schemas.Location``) or, when those are
missing, from the places named in its text ("ซอยโชคชัย 4 เขตลาดพร้าว" -> Lat Phrao, Bangkok).

Geography comes from ``geothai`` (GeoThai data, CC-BY-4.0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import geothai

from screening.text import THAI_DIGITS

BANGKOK = "10"
# Names people write that are not geothai's (kept beside the ones api.schemas knows).
_PROVINCE_ALIASES = {
    "กทม": BANGKOK,
    "กทม.": BANGKOK,
    "กรุงเทพฯ": BANGKOK,
    "กรุงเทพ": BANGKOK,
    "bangkok": BANGKOK,
    "bkk": BANGKOK,
    "อยุธยา": "14",
    "ayutthaya": "14",
    "โคราช": "30",
    "korat": "30",
}
# A province name alone is taken only when it cannot be an ordinary word ("เลย", "ตาก", "แพร่" are words).
_MIN_BARE_PROVINCE = 5
_TH_PROVINCE = r"(?:จังหวัด|จ\.)\s*"
_TH_DISTRICT = r"(?:กิ่งอำเภอ|อำเภอ|เขต|อ\.)\s*"
_TH_SUBDISTRICT = r"(?:ตำบล|แขวง|ต\.)\s*"
_POSTAL_HINT = re.compile(r"(?:ไปรษณีย์|postal|zip|post code)\D{0,12}([1-9]\d{4})(?!\d)", re.IGNORECASE)
_THAI = re.compile(r"[\u0E00-\u0E7F]")
_POSTAL = re.compile(r"(?<!\d)([1-9]\d{4})(?!\d)")


@dataclass(frozen=True)
class Place:
    """A resolved place: DOPA codes down to the finest level known, with names in both languages."""

    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    source: str = "fields"  # fields | text | postal_code | coordinates
    candidates: tuple[str, ...] = field(default=())  # district codes when the text's district was ambiguous

    def as_dict(self) -> dict[str, Any]:
        """The place for JSON: codes and Thai/English names of each level known."""
        out: dict[str, Any] = {"source": self.source}
        for level, code, lookup in (
            ("province", self.province_code, geothai.province),
            ("district", self.district_code, geothai.district),
            ("subdistrict", self.subdistrict_code, geothai.subdistrict),
        ):
            area = lookup(code) if code else None
            if area is not None:
                out[level] = {"code": area.code, "name_th": area.name_th, "name_en": area.name_en}
        if self.candidates:
            out["district_candidates"] = list(self.candidates)
        return out


def _alternation(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True) if n)


def _district_base(name_th: str) -> str:
    return name_th.removeprefix("เขต").removeprefix("อำเภอ")


@cache
def _patterns() -> dict[str, tuple[re.Pattern[str], dict[str, set[str]]]]:
    """One regex per level (Thai with its level word, English with 'district' etc.) and name -> codes."""
    provinces: dict[str, set[str]] = {}
    districts: dict[str, set[str]] = {}
    subdistricts: dict[str, set[str]] = {}
    for province in geothai.provinces():
        provinces.setdefault(province.name_th, set()).add(province.code)
        provinces.setdefault(province.name_en.lower(), set()).add(province.code)
        for district in geothai.districts(province.code):
            districts.setdefault(_district_base(district.name_th), set()).add(district.code)
            districts.setdefault(district.name_en.lower(), set()).add(district.code)
            for sub in geothai.subdistricts(district.code):
                subdistricts.setdefault(sub.name_th, set()).add(sub.code)
                subdistricts.setdefault(sub.name_en.lower(), set()).add(sub.code)
    for alias, code in _PROVINCE_ALIASES.items():
        provinces.setdefault(alias, set()).add(code)
    bare_provinces = [n for n in provinces if len(n) >= _MIN_BARE_PROVINCE or n in _PROVINCE_ALIASES]

    def th(names: Iterable[str]) -> str:
        return _alternation(n for n in names if _THAI.search(n))

    def en(names: Iterable[str]) -> str:
        return _alternation(n for n in names if not _THAI.search(n))

    return {
        "province": (
            re.compile(
                rf"{_TH_PROVINCE}(?P<a>{th(provinces)})|(?P<b>{th(bare_provinces)})"
                rf"|\b(?:changwat\s+)?(?P<c>{en(bare_provinces)})\b",
                re.IGNORECASE,
            ),
            provinces,
        ),
        "district": (
            re.compile(
                rf"{_TH_DISTRICT}(?P<a>{th(districts)})|\b(?:khet|amphoe)\s+(?P<b>{en(districts)})\b"
                rf"|\b(?P<c>{en(districts)})\s+district\b",
                re.IGNORECASE,
            ),
            districts,
        ),
        "subdistrict": (
            re.compile(
                rf"{_TH_SUBDISTRICT}(?P<a>{th(subdistricts)})|\b(?:khwaeng|tambon)\s+(?P<b>{en(subdistricts)})\b"
                rf"|\b(?P<c>{en(subdistricts)})\s+subdistrict\b",
                re.IGNORECASE,
            ),
            subdistricts,
        ),
    }


def _mentions(level: str, text: str) -> list[set[str]]:
    pattern, names = _patterns()[level]
    found = []
    for match in pattern.finditer(text):
        name = next(g for g in match.groups() if g)
        codes = names.get(name) or names.get(name.lower())
        if codes:
            found.append(codes)
    return found


def _capital_district(text: str, province_code: str) -> str | None:
    if province_code != BANGKOK and re.search(rf"{_TH_DISTRICT}เมือง(?![\u0E00-\u0E7F])|amphoe mueang", text, re.I):
        return f"{province_code}01"
    return None


def _postal(text: str, province_code: str | None) -> tuple[str | None, str | None]:
    """Province and district a postal code names: one after a hint word, or any that fits the province."""
    numbers = [m.group(1) for m in _POSTAL_HINT.finditer(text)]
    if province_code is not None:
        numbers += [m.group(1) for m in _POSTAL.finditer(text)]
    for number in numbers:
        served = [s for s in geothai.by_postal_code(number) if province_code in (None, s.province_code)]
        provinces = {s.province_code for s in served}
        if len(provinces) == 1:
            districts = {s.district_code for s in served}
            return provinces.pop(), districts.pop() if len(districts) == 1 else None
    return None, None


def place_from_text(text: str) -> Place | None:
    """The place the text names, as precisely as it can be told, or None."""
    text = text.translate(THAI_DIGITS)
    provinces = [code for codes in _mentions("province", text) for code in codes]
    district_mentions = _mentions("district", text)
    province = provinces[0] if provinces else None
    district: str | None = None
    candidates: tuple[str, ...] = ()
    for codes in district_mentions:
        fitting = sorted(c for c in codes if province is None or c[:2] == province or c[:2] in provinces)
        if len(fitting) == 1:
            district = fitting[0]
            break
        candidates = candidates or tuple(fitting)
    if district is None and province is not None:
        district = _capital_district(text, province)
    if district is not None:
        province = district[:2]
        candidates = ()
    subdistrict = None
    for codes in _mentions("subdistrict", text):
        fitting = sorted(c for c in codes if (district is None or c[:4] == district) and (province in (None, c[:2])))
        if len(fitting) == 1:
            subdistrict = fitting[0]
            district, province = subdistrict[:4], subdistrict[:2]
            break
    source = "text"
    if district is None:
        postal_province, postal_district = _postal(text, province)
        if postal_province is not None:
            source = "postal_code" if province is None else source
            province, district = postal_province, postal_district or district
    if province is None:
        return Place(None, None, None, source="text", candidates=candidates) if candidates else None
    return Place(province, district, subdistrict, source=source, candidates=candidates)


@cache
def place_of_names(province: str, district: str) -> Place | None:
    """The place a read-model row names (geothai's Thai names, as intake stores them)."""
    found = [p for p in geothai.provinces() if p.name_th == province]
    if not found:
        return None
    code = found[0].code
    for candidate in geothai.districts(code):
        if candidate.name_th.removeprefix("เขต") == district.removeprefix("เขต"):
            return Place(code, candidate.code, None, source="fields")
    return Place(code, None, None, source="fields")
