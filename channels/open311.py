"""Open311 GeoReport v2 as plain code: services from the categories, a POSTed request as a complaint, a case
as a public service request, and the spec's JSON and XML shapes (http://wiki.open311.org/GeoReport_v2).

Open311 is a public interface: what a GET shows is what the public tracking page shows, never personal
data. The complainant's own words (``description``) may name people, the street address may be their home,
and photos may show them, so none of those is published; the place is the district and province and a
position rounded to about 100 m (none at all for a confidential complainant).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from xml.etree import ElementTree as ET

from pydantic import ValidationError

from api.errors import BilingualError
from api.schemas import ComplaintIn
from api.views import BANGKOK
from config.agencies import Agency
from config.reference import Category, ReferenceData
from domain.complaint import Channel, NotifyChannel
from store import models
from workflows.process import OPEN_STATES, STATE_LABELS, State

Format = Literal["json", "xml"]
Locale = Literal["th", "en"]
SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-01T00:00:00+07:00"
_ROUNDING = 3  # decimal places of a published position: about 110 m
_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_.\-]{1,64})\](\[\])?$")

# Each category field (config/categories.yaml) a client can send as attribute[code]; the others are
# Open311's own parameters (first_name/last_name, email/phone, media_url, lat/long).
_FIELD_ATTRIBUTES: dict[str, tuple[str, str, str, str]] = {
    # field: (code, datatype, description_th, description_en)
    "location": ("province", "string", "จังหวัดที่เกิดเหตุ (ถ้าไม่ส่งพิกัด)", "Province, if no lat/long is sent"),
    "location.district": ("district", "string", "อำเภอหรือเขตที่เกิดเหตุ", "District (amphoe or khet)"),
    "location.subdistrict": ("subdistrict", "string", "ตำบลหรือแขวงที่เกิดเหตุ", "Subdistrict (tambon or khwaeng)"),
    "complainant.citizen_id": ("citizen_id", "string", "เลขประจำตัวประชาชน 13 หลัก", "13-digit Thai citizen ID"),
    "occurred_on": ("occurred_on", "datetime", "วันที่เกิดเหตุ (YYYY-MM-DD)", "Date it happened (YYYY-MM-DD)"),
}
_ALWAYS = ("location",)  # every service takes a province: the minimum place when there is no position

# Where a complaint's field came from in the POST, to name the parameter in an error.
_PARAMETERS = {
    "description": "description",
    "category": "service_code",
    "location.latitude": "lat",
    "location.longitude": "long",
    "location.address": "address_string",
    "location.province": "attribute[province]",
    "location.district": "attribute[district]",
    "location.subdistrict": "attribute[subdistrict]",
    "complainant.name": "first_name",
    "complainant.email": "email",
    "complainant.phone": "phone",
    "complainant.citizen_id": "attribute[citizen_id]",
    "occurred_on": "attribute[occurred_on]",
    "attachments": "media_url",
}


@dataclass(frozen=True)
class Open311Error(Exception):
    """An error in the spec's shape: ``[{"code": status, "description": ...}]``."""

    status: int
    description: str

    def __str__(self) -> str:
        return f"{self.status}: {self.description}"


@dataclass(frozen=True)
class Invalid(Exception):
    """The request could not become a complaint: one description per parameter at fault."""

    descriptions: tuple[str, ...]


def _name(category: Category, locale: Locale) -> str:
    return category.name_th if locale == "th" else category.name_en


def _group(category: Category, locale: Locale) -> str:
    return category.group_name_th if locale == "th" else category.group_name_en


def _attribute_codes(category: Category) -> list[str]:
    return [f for f in dict.fromkeys((*_ALWAYS, *category.fields)) if f in _FIELD_ATTRIBUTES]


def services(reference: ReferenceData, locale: Locale) -> list[dict[str, Any]]:
    """GET services: one service per category."""
    return [
        {
            "service_code": c.code,
            "service_name": _name(c, locale),
            "description": f"{c.group_name_th} / {c.group_name_en}: {c.name_th} / {c.name_en}",
            "metadata": bool(_attribute_codes(c)),
            "type": "realtime",
            "keywords": ", ".join(c.keywords),
            "group": _group(c, locale),
        }
        for c in reference.categories.values()
    ]


def service_definition(category: Category, reference: ReferenceData, locale: Locale) -> dict[str, Any]:
    """GET services/{code}: the category's fields as attributes (all optional: screening asks for what lacks)."""
    attributes = []
    for order, field in enumerate(_attribute_codes(category), start=1):
        code, datatype, th, en = _FIELD_ATTRIBUTES[field]
        label = reference.fields.get(field)
        needed = label.name_th if label and locale == "th" else label.name_en if label else ""
        attributes.append(
            {
                "variable": True,
                "code": code,
                "datatype": datatype,
                "required": False,
                "datatype_description": th if locale == "th" else en,
                "order": order,
                "description": needed or (th if locale == "th" else en),
            }
        )
    return {"service_code": category.code, "attributes": attributes}


# --- POST requests -------------------------------------------------------------------------------------


def attributes_of(form: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``attribute[code]`` parameters by code (the last of repeated ones; multi-value lists joined by commas)."""
    found: dict[str, list[str]] = {}
    for key, value in form:
        match = _ATTRIBUTE.match(key)
        if match is not None:
            found.setdefault(match.group(1), []).append(value)
    return {code: ",".join(values) for code, values in found.items()}


def _float(form: Mapping[str, str], key: str) -> float | None:
    raw = (form.get(key) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Invalid((f"{key}: must be a number in decimal degrees (WGS84). / ต้องเป็นตัวเลของศาแบบทศนิยม",)) from None


def complaint_from_form(form: Mapping[str, str], attributes: Mapping[str, str]) -> ComplaintIn:
    """The complaint a POSTed service request files (channel ``app``: Open311 clients are apps)."""
    lat, long = _float(form, "lat"), _float(form, "long")
    address = (form.get("address_string") or form.get("address_id") or "").strip() or None
    area = {k: attributes[k].strip() for k in ("province", "district", "subdistrict") if attributes.get(k, "").strip()}
    if lat is None and long is None and address is None and not area:
        raise Open311Error(
            400,
            "lat/long, address_string, address_id or attribute[province] is required. / ต้องระบุพิกัด ที่อยู่ หรือจังหวัดที่เกิดเหตุ",
        )
    name = " ".join(p for p in ((form.get("first_name") or "").strip(), (form.get("last_name") or "").strip()) if p)
    email = (form.get("email") or "").strip() or None
    complainant: dict[str, Any] = {
        "name": name or None,
        "email": email,
        "phone": (form.get("phone") or "").strip() or None,
        "citizen_id": attributes.get("citizen_id", "").strip() or None,
        "preferred_channels": [NotifyChannel.email, NotifyChannel.web] if email else [NotifyChannel.web],
    }
    media = (form.get("media_url") or "").strip()
    body = {
        "channel": Channel.app,
        "description": form.get("description") or "",
        "category": form.get("service_code"),
        "complainant": {k: v for k, v in complainant.items() if v is not None},
        "location": {"latitude": lat, "longitude": long, "address": address, **area},
        "attachments": [{"name": "media", "url_or_ref": media}] if media else [],
        "occurred_on": attributes.get("occurred_on", "").strip() or None,
    }
    try:
        return ComplaintIn.model_validate(body)
    except ValidationError as exc:
        raise Invalid(tuple(_describe(e) for e in exc.errors()[:20])) from None


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int))
    cause = (error.get("ctx") or {}).get("error")
    field = getattr(cause, "field", None)
    if field and loc:
        loc = f"{loc}.{field}" if not loc.endswith(field) else loc
    name = _PARAMETERS.get(loc) or _PARAMETERS.get(loc.rsplit(".", 1)[0]) or loc or "request"
    if isinstance(cause, BilingualError):
        return f"{name}: {cause.message} / {cause.message_th}"
    if error.get("type") == "string_too_short" and name == "description":
        return "description: must be at least 10 characters long. / รายละเอียดต้องมีอย่างน้อย 10 ตัวอักษร"
    # Pydantic's own messages describe what was expected; they do not repeat the input.
    return f"{name}: {error.get('msg', 'not valid')}. / ค่านี้ไม่ถูกต้อง"


# --- GET requests --------------------------------------------------------------------------------------


def is_open(status: str) -> bool:
    return State(status) in OPEN_STATES


def open_states() -> list[str]:
    return sorted(s.value for s in OPEN_STATES)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(BANGKOK).isoformat(timespec="seconds") if moment else None


def _status_notes(case: models.Case, locale: Locale) -> str:
    en, th = STATE_LABELS[State(case.status)]
    notes = th if locale == "th" else en
    extra = [v for v in (case.outcome, case.closure_reason) if v]
    return f"{notes} ({', '.join(extra)})" if extra else notes


def service_request(
    case: models.Case, *, reference: ReferenceData, agencies: Mapping[str, Agency], locale: Locale
) -> dict[str, Any]:
    """A case as a public Open311 service request: status, agency, dates and the area; nothing personal."""
    category = reference.categories.get(case.category or "")
    names = [
        (agencies[c].name_th if locale == "th" else agencies[c].name_en) if c in agencies else c
        for c in case.agencies or []
    ]
    hidden = case.confidential or case.latitude is None or case.longitude is None
    area = [p for p in (case.subdistrict, case.district, case.province) if p]
    return {
        "service_request_id": case.case_id,
        "status": "open" if is_open(case.status) else "closed",
        "status_notes": _status_notes(case, locale),
        "service_name": _name(category, locale) if category else None,
        "service_code": case.category,
        "description": None,
        "agency_responsible": ", ".join(names) or None,
        "service_notice": None,
        "requested_datetime": _iso(case.received_at),
        "updated_datetime": _iso(case.updated_at),
        "expected_datetime": _iso(case.expected_by) if is_open(case.status) else None,
        "address": ", ".join(area) or None,
        "address_id": None,
        "zipcode": None,
        "lat": None if hidden else round(case.latitude or 0.0, _ROUNDING),
        "long": None if hidden else round(case.longitude or 0.0, _ROUNDING),
        "media_url": None,
    }


# --- JSON and XML --------------------------------------------------------------------------------------

# The element name of a list's items in the spec's XML.
_ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, item in value.items():
            element.append(_element(key, item))
    elif isinstance(value, list | tuple):
        item_tag = _ITEM_TAGS.get(tag, "item")
        for item in value:
            element.append(_element(item_tag, item))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def to_xml(root: str, value: Any) -> bytes:
    """The spec's XML: ``root`` holding ``value`` (a list becomes one element per item)."""
    body: bytes = ET.tostring(_element(root, value), encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
