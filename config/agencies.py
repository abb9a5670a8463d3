"""The agency directory (``config/agencies.yaml``): who cases go to, for which categories, in which areas.

The file lists central agencies by hand; every provincial hall, district office, Bangkok district office,
provincial police and provincial land office is generated from ``geothai`` (GeoThai data, CC-BY-4.0,
https://github.com/GeoThai/data) with the file's templates. The old form of the file (a plain list of
``{code, name_th, name_en}``) still loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import geothai
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_AGENCIES_FILE = Path(__file__).resolve().parent / "agencies.yaml"
WHOLE_COUNTRY = "TH"
BANGKOK = "10"


class AgencyKind(StrEnum):
    MINISTRY = "ministry"
    DEPARTMENT = "department"
    CENTRE = "centre"
    PROVINCIAL_HALL = "provincial_hall"
    DISTRICT_OFFICE = "district_office"
    BMA = "bma"
    BMA_OFFICE = "bma_office"
    BMA_DISTRICT_OFFICE = "bma_district_office"
    POLICE = "police"
    LAND_OFFICE = "land_office"
    STATE_ENTERPRISE = "state_enterprise"
    INDEPENDENT = "independent"


class Agency(BaseModel):
    """One contact point of the network: code, names, place in the hierarchy, what and where it handles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9-]*$")
    name_th: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    kind: AgencyKind = AgencyKind.DEPARTMENT
    parent: str | None = None
    categories: tuple[str, ...] = ()
    areas: tuple[str, ...] = (WHOLE_COUNTRY,)
    except_areas: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    contact: dict[str, str] = Field(default_factory=dict)

    def specificity(self, province_code: str | None, district_code: str | None) -> int | None:
        """How closely this agency's areas fit the place: 3 its district, 2 its province, 1 the whole
        country; None when it does not serve the place (or the place is unknown and it is local)."""
        places = [code for code in (district_code, province_code) if code]
        if any(code in self.except_areas for code in places):
            return None
        if district_code and district_code in self.areas:
            return 3
        if province_code and province_code in self.areas:
            return 2
        return 1 if WHOLE_COUNTRY in self.areas else None


class AgencyDirectoryError(ValueError):
    """The directory file is not valid; the message lists every problem found."""


def _row(template: dict[str, Any], **values: str) -> dict[str, Any]:
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**values)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    return {key: fill(value) for key, value in template.items()}


def _generated(templates: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per province or district from the templates (their absence means: generate none)."""
    provinces = geothai.provinces()
    for province in provinces:
        names = {"name_th": province.name_th, "name_en": province.name_en, "province": province.code}
        if "provincial_halls" in templates and province.code != BANGKOK:  # Bangkok's is the BMA
            yield {"code": f"PROV-{province.code}", "areas": [province.code]} | _row(
                templates["provincial_halls"], **names
            )
        if "provincial_police" in templates and province.code != BANGKOK:  # Bangkok's is the MPB
            yield {"code": f"POL-{province.code}", "areas": [province.code]} | _row(
                templates["provincial_police"], **names
            )
        if "provincial_land_offices" in templates:
            row = _row(templates["provincial_land_offices"], **names)
            if province.code == BANGKOK:  # "สำนักงานที่ดินกรุงเทพมหานคร", not "...จังหวัดกรุงเทพมหานคร"
                row["name_th"] = row["name_th"].replace("จังหวัด", "")
                row["name_en"] = row["name_en"].replace("Provincial", "Metropolitan")
            yield {"code": f"LAND-{province.code}", "areas": [province.code]} | row
        for district in geothai.districts(province.code):
            names = {"name_th": district.name_th, "name_en": district.name_en, "province": province.code}
            key, prefix = (
                ("bangkok_district_offices", "BKK") if province.code == BANGKOK else ("district_offices", "DIST")
            )
            if key in templates:
                yield {"code": f"{prefix}-{district.code}", "areas": [district.code]} | _row(templates[key], **names)


def _parse(rows: Iterable[Any], problems: list[str]) -> dict[str, Agency]:
    agencies: dict[str, Agency] = {}
    for index, row in enumerate(rows):
        where = f"agencies.yaml entry {index + 1}" + (f" ({row.get('code')})" if isinstance(row, dict) else "")
        try:
            agency = Agency.model_validate(row)
        except ValidationError as exc:
            problems.extend(f"{where}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            continue
        if agency.code in agencies:
            problems.append(f"{where}: the code {agency.code} is used twice")
        agencies[agency.code] = agency
    return agencies


def read_agencies(path: Path | None = None) -> tuple[dict[str, Agency], list[str]]:
    """The directory by code, and the problems found in the file itself (references are checked by
    :func:`config.reference.check_reference`)."""
    raw: Any = yaml.safe_load((path or DEFAULT_AGENCIES_FILE).read_text(encoding="utf-8")) or []
    problems: list[str] = []
    if isinstance(raw, list):  # the old form: central agencies only, plus one governor's office per province
        raw = {"agencies": raw, "generated": {"provincial_halls": _LEGACY_PROVINCIAL_HALL}}
    if not isinstance(raw, dict):
        return {}, ["agencies.yaml must hold a mapping with `agencies` (and optionally `generated`)"]
    rows = list(raw.get("agencies") or [])
    generated = list(_generated(raw.get("generated") or {}))
    hand_codes = {row.get("code") for row in rows if isinstance(row, dict)}
    # A hand-written entry wins over a generated one with the same code, so one office can be corrected.
    agencies = _parse(rows + [row for row in generated if row["code"] not in hand_codes], problems)
    for agency in agencies.values():
        if agency.parent is not None and agency.parent not in agencies:
            problems.append(f"{agency.code}: parent {agency.parent} is not in the directory")
    return agencies, problems


_LEGACY_PROVINCIAL_HALL = {
    "kind": "provincial_hall",
    "name_th": "ศาลากลางจังหวัด{name_th}",
    "name_en": "{name_en} Provincial Office",
    "categories": ["*"],
}


def load_agencies(path: Path | None = None) -> dict[str, Agency]:
    """Agencies by code, validated with the categories and regions (raises if anything is wrong)."""
    from config.reference import load_reference

    return load_reference(agencies_file=path).agencies
