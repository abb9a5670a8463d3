"""Is a complaint complete enough to forward? Required fields per category and intake channel, the citizen
ID's check digit, phone numbers, the place, and a description long enough to act on.

Values are checked with the intake model's own types (``api.schemas``), so a phone or an ID is judged here
exactly as ``POST /api/v1/complaints`` judges it. The result lists what is missing or wrong in English and
Thai, and a ready ``question`` for the ``need_info`` action.

``stdnum.th.pin`` refuses numbers that start with 0: these are real, they are the IDs of people without Thai
registration status (บัตรประจำตัวคนซึ่งไม่มีสถานะทางทะเบียน, "เลข 0"). Such an ID with a correct check digit is
reported as a warning to check the card, not as invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError
from stdnum.th import pin

from api.errors import BilingualError
from api.schemas import CitizenId, EmailAddress, Location, PhoneNumber
from config.reference import Category, ReferenceData
from screening.places import Place, place_from_text
from screening.text import THAI_DIGITS, normalise

_BANGKOK = timezone(timedelta(hours=7))
_CITIZEN_ID = TypeAdapter(CitizenId)
_PHONE = TypeAdapter(PhoneNumber)
_EMAIL = TypeAdapter(EmailAddress)
_LOCATION_FIELDS = (
    "province",
    "province_code",
    "district",
    "district_code",
    "subdistrict",
    "subdistrict_code",
    "postal_code",
    "address",
    "latitude",
    "longitude",
)


@dataclass(frozen=True)
class Item:
    """One thing missing or wrong, in both languages; ``field`` is the intake model's dotted path."""

    field: str
    problem: str  # missing | invalid | too_short | ambiguous | check
    message: str
    message_th: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem, "message": self.message, "message_th": self.message_th}


@dataclass
class Facts:
    """A complaint as screening reads it: from intake JSON or a read-model case, valid or not."""

    description: str = ""
    subject: str | None = None
    channel: str | None = None
    category: str | None = None
    name: str | None = None
    citizen_id: str | None = None
    phone: str | None = None
    email: str | None = None
    line_user_id: str | None = None
    location: dict[str, Any] = field(default_factory=dict)
    occurred_on: str | None = None
    attachments: int = 0
    # Fields the source cannot tell (the read model keeps no date of the event): never reported missing.
    unknown: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Facts:
        """From a complaint as ``POST /api/v1/complaints`` takes it (missing or odd fields allowed)."""
        who: dict[str, Any] = data["complainant"] if isinstance(data.get("complainant"), dict) else {}
        where: dict[str, Any] = data["location"] if isinstance(data.get("location"), dict) else {}
        attachments = data.get("attachments")

        def text(source: dict[str, Any], key: str) -> str | None:
            value = source.get(key)
            return str(value).strip() or None if value is not None else None

        return cls(
            description=str(data.get("description") or ""),
            subject=text(data, "subject"),
            channel=text(data, "channel"),
            category=text(data, "category"),
            name=text(who, "name"),
            citizen_id=text(who, "citizen_id"),
            phone=text(who, "phone"),
            email=text(who, "email"),
            line_user_id=text(who, "line_user_id"),
            location={k: v for k, v in where.items() if v not in (None, "")},
            occurred_on=text(data, "occurred_on"),
            attachments=len(attachments) if isinstance(attachments, list) else 0,
        )

    @classmethod
    def from_case(cls, case: Any) -> Facts:
        """From a read-model ``store.models.Case``."""
        location = {
            key: getattr(case, key)
            for key in ("province", "district", "subdistrict", "address", "latitude", "longitude")
            if getattr(case, key, None) not in (None, "")
        }
        return cls(
            description=case.description or "",
            subject=case.subject,
            channel=case.channel,
            category=case.category,
            name=case.complainant_name,
            citizen_id=case.complainant_citizen_id,
            phone=case.complainant_phone,
            email=case.complainant_email,
            line_user_id=case.complainant_line_user_id,
            location=location,
            attachments=len(case.attachments or []),
            unknown=frozenset({"occurred_on"}),
        )

    @property
    def text(self) -> str:
        """Subject, description and address: everything that may name the problem and the place."""
        return " ".join(t for t in (self.subject, self.description, self.location.get("address")) if t)


@dataclass
class Completeness:
    """What the completeness check found: the items, the normalised values and the place."""

    items: list[Item] = field(default_factory=list)
    place: Place | None = None
    normalised: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not any(item.problem != "check" for item in self.items)

    def question(self) -> dict[str, str] | None:
        """The request for information an officer can send as it is (``need_info``'s ``question``)."""
        asks = [item for item in self.items if item.problem != "check"]
        if not asks:
            return None
        th = "เพื่อดำเนินการเรื่องร้องทุกข์ของท่านต่อ โปรดแจ้งข้อมูลต่อไปนี้: " + " ".join(
            f"({n}) {item.message_th}" for n, item in enumerate(asks, 1)
        )
        en = "To go on with your complaint, please tell us: " + " ".join(
            f"({n}) {item.message}" for n, item in enumerate(asks, 1)
        )
        return {"th": th, "en": en, "text": f"{th}\n\n{en}"[:2000]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "required": list(self.required),
            "unchecked": list(self.unchecked),
            "items": [item.as_dict() for item in self.items],
            "place": self.place.as_dict() if self.place else None,
            "normalised": self.normalised,
            "question": self.question(),
        }


def _error(exc: ValidationError) -> BilingualError | None:
    for error in exc.errors():
        found = (error.get("ctx") or {}).get("error")
        if isinstance(found, BilingualError):
            return found
    return None


def _invalid(path: str, exc: ValidationError, fallback: tuple[str, str]) -> Item:
    found = _error(exc)
    if found is None:
        return Item(path, "invalid", *fallback)
    where = f"{path.split('.')[0]}.{found.field}" if found.field and "." in path else path
    return Item(where, "invalid", found.message, found.message_th)


def _check_citizen_id(value: str, result: Completeness) -> None:
    try:
        result.normalised["citizen_id"] = _CITIZEN_ID.validate_python(value)
        return
    except ValidationError as exc:
        compact = pin.compact(value.translate(THAI_DIGITS))
        if (
            len(compact) == 13
            and compact.isdigit()
            and compact[0] == "0"
            and pin.calc_check_digit(compact) == compact[-1]
        ):
            result.normalised["citizen_id"] = compact
            result.items.append(
                Item(
                    "complainant.citizen_id",
                    "check",
                    "This ID starts with 0, the number given to people without Thai registration status; "
                    "check it against the card.",
                    "เลขประจำตัวนี้ขึ้นต้นด้วย 0 ซึ่งเป็นเลขของบุคคลที่ไม่มีสถานะทางทะเบียน โปรดตรวจสอบกับบัตร",
                )
            )
            return
        result.items.append(
            _invalid("complainant.citizen_id", exc, ("The citizen ID is not valid.", "เลขประจำตัวประชาชนไม่ถูกต้อง"))
        )


def _check_contacts(facts: Facts, result: Completeness) -> bool:
    """Validates the phone and the email; True when at least one way to reach the complainant is valid."""
    reachable = facts.line_user_id is not None
    if facts.phone is not None:
        try:
            result.normalised["phone"] = _PHONE.validate_python(facts.phone)
            reachable = True
        except ValidationError as exc:
            result.items.append(
                _invalid("complainant.phone", exc, ("The phone number is not valid.", "หมายเลขโทรศัพท์ไม่ถูกต้อง"))
            )
    if facts.email is not None:
        try:
            result.normalised["email"] = _EMAIL.validate_python(facts.email)
            reachable = True
        except ValidationError as exc:
            result.items.append(_invalid("complainant.email", exc, ("The email address is not valid.", "อีเมลไม่ถูกต้อง")))
    return reachable


def _check_place(facts: Facts, result: Completeness) -> bool:
    """Resolves the place from the location fields, else from the text; True when coordinates are usable."""
    fields = {k: facts.location[k] for k in _LOCATION_FIELDS if k in facts.location}
    coordinates = False
    if fields:
        try:
            location = Location.model_validate(fields)
        except ValidationError as exc:
            result.items.append(_invalid("location.place", exc, ("The place is not valid.", "สถานที่ไม่ถูกต้อง")))
            location = None
        if location is not None:
            coordinates = location.latitude is not None
            if location.province_code is not None:  # the fields win over the text
                result.place = Place(location.province_code, location.district_code, location.subdistrict_code)
    if result.place is None or result.place.district_code is None:
        found = place_from_text(facts.text)
        # The text may add a district to a province given in the fields, never contradict it.
        if found is not None and (result.place is None or found.province_code == result.place.province_code):
            result.place = found
    return coordinates


def _required(category: Category | None, facts: Facts, reference: ReferenceData) -> tuple[str, ...]:
    names = list(category.fields if category else ("location",))
    names += reference.channel_fields.get(facts.channel or "", ())
    return tuple(dict.fromkeys(names))


def _missing(name: str, reference: ReferenceData) -> Item:
    label = reference.fields[name]
    return Item(name, "missing", f"Please give {label.name_en}.", f"โปรดระบุ{label.name_th}")


def check_completeness(
    facts: Facts, *, category: Category | None, reference: ReferenceData, today: date | None = None
) -> Completeness:
    """Every missing or invalid item of ``facts`` for ``category`` (the suggested one when none is set)."""
    result = Completeness(required=_required(category, facts, reference))
    if facts.citizen_id is not None:
        _check_citizen_id(facts.citizen_id, result)
    reachable = _check_contacts(facts, result)
    coordinates = _check_place(facts, result)
    minimum = category.min_description if category else 30
    description = normalise(facts.description)
    if len(description.replace(" ", "")) < minimum:
        result.items.append(
            Item(
                "description",
                "too_short" if description else "missing",
                f"Please describe the problem in more detail: what happened, where and since when "
                f"(at least {minimum} characters).",
                f"โปรดเล่ารายละเอียดของปัญหาเพิ่มเติม ว่าเกิดอะไรขึ้น ที่ไหน ตั้งแต่เมื่อใด (อย่างน้อย {minimum} ตัวอักษร)",
            )
        )
    if facts.occurred_on is not None:
        try:
            when = date.fromisoformat(facts.occurred_on.translate(THAI_DIGITS)[:10])
            if when > (today or datetime.now(_BANGKOK).date()):
                raise ValueError("future")
        except ValueError:
            result.items.append(
                Item(
                    "occurred_on",
                    "invalid",
                    "The date it happened is not a past date (YYYY-MM-DD, Gregorian year).",
                    "วันที่เกิดเหตุไม่ถูกต้อง (ปี ค.ศ. รูปแบบ YYYY-MM-DD และต้องไม่เป็นวันในอนาคต)",
                )
            )
    place = result.place
    present = {
        "location": (place is not None and place.province_code is not None) or coordinates,
        "location.district": place is not None and place.district_code is not None,
        "location.subdistrict": place is not None and place.subdistrict_code is not None,
        "complainant.name": facts.name is not None,
        "complainant.citizen_id": "citizen_id" in result.normalised,
        "complainant.contact": reachable,
        "occurred_on": facts.occurred_on is not None,
        "attachments": facts.attachments > 0,
    }
    invalid = {item.field for item in result.items}
    result.unchecked = tuple(name for name in result.required if name in facts.unknown)
    for name in result.required:
        if name in facts.unknown:
            continue
        if not present.get(name, True) and not (invalid & {name, *_ALSO[name]}):
            if name == "location.district" and place is not None and place.candidates:
                result.items.append(
                    Item(
                        name,
                        "ambiguous",
                        "Several districts have the name given; please say which province.",
                        "มีอำเภอ/เขตชื่อนี้หลายแห่ง โปรดระบุจังหวัดด้วย",
                    )
                )
            else:
                result.items.append(_missing(name, reference))
    return result


# An invalid value already produced an item; do not also call it missing.
_ALSO: dict[str, tuple[str, ...]] = {
    "location": ("location.place", "location.province"),
    "location.district": ("location.place", "location.district"),
    "location.subdistrict": ("location.place", "location.subdistrict"),
    "complainant.name": (),
    "complainant.citizen_id": (),
    "complainant.contact": ("complainant.phone", "complainant.email"),
    "occurred_on": (),
    "attachments": (),
}
