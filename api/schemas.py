"""Request models for filing a complaint (``POST /api/v1/complaints``), with Thai-aware validation.

Every validator raises :class:`api.errors.BilingualError`, so the 422 response can tell the person what is
wrong in English and in Thai without repeating what they typed (it may be personal data).

Geography comes from ``geothai`` (data: GeoThai, CC-BY-4.0, https://github.com/GeoThai/data).
"""

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from functools import cache
from typing import Annotated, Self, TypeVar

import geothai
import phonenumbers
from geothai.types import District, Province, Subdistrict
from phonenumbers import PhoneNumberType
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength
from stdnum.th import pin

from api.errors import BilingualError
from config.centres import Centres, load_centres
from domain.complaint import Channel, Complaint, Kind, NotifyChannel, Priority

__all__ = [
    "Attachment",
    "Channel",
    "Complainant",
    "ComplaintIn",
    "Kind",
    "Location",
    "NotifyChannel",
    "Priority",
]

# Thailand has had no daylight saving time since 1920, so a fixed offset is Asia/Bangkok without tzdata.
_BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")

# Thailand's bounding box, generous enough for offshore islands and border districts.
LAT_RANGE = (5.5, 20.5)
LON_RANGE = (97.3, 105.7)

# Officers and citizens sometimes type Thai digits (๐-๙); the ID and phone libraries only read 0-9.
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def _thai_digits_to_arabic(value: object) -> object:
    return value.translate(_THAI_DIGITS) if isinstance(value, str) else value


def _text(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


# --- complainant ---------------------------------------------------------------------------------------


def _check_citizen_id(value: str) -> str:
    try:
        return str(pin.validate(value))
    except InvalidLength:
        raise BilingualError("A Thai citizen ID must have 13 digits.", "เลขประจำตัวประชาชนต้องมี 13 หลัก") from None
    except InvalidFormat:
        raise BilingualError(
            "A Thai citizen ID may contain only digits, spaces and dashes.",
            "เลขประจำตัวประชาชนต้องเป็นตัวเลข (มีช่องว่างหรือขีดคั่นได้)",
        ) from None
    except InvalidComponent:
        raise BilingualError(
            "A Thai citizen ID cannot start with 0 or 9.", "เลขประจำตัวประชาชนต้องไม่ขึ้นต้นด้วย 0 หรือ 9"
        ) from None
    except InvalidChecksum:
        raise BilingualError(
            "This is not a valid Thai citizen ID: the check digit does not match; please check for a typo.",
            "เลขประจำตัวประชาชนไม่ถูกต้อง (หลักตรวจสอบไม่ตรง) โปรดตรวจสอบว่าพิมพ์ถูกต้อง",
        ) from None


def _check_phone(value: str) -> str:
    # Numbers without a country code are read as Thai; a foreign number written with "+" is accepted,
    # since foreigners living in Thailand may complain too.
    try:
        number = phonenumbers.parse(value, "TH")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise BilingualError(
            "This is not a valid phone number; write a Thai number such as 081 234 5678 or 02 123 4567.",
            "หมายเลขโทรศัพท์ไม่ถูกต้อง โปรดระบุหมายเลขในรูปแบบ เช่น 081 234 5678 หรือ 02 123 4567",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _can_receive_sms(e164: str) -> bool:
    number_type = phonenumbers.number_type(phonenumbers.parse(e164))
    return number_type in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


# Deliberately simple: a full RFC 5322 check needs email-validator, and delivery is the real test anyway.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}")


def _check_email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.fullmatch(value) or ".." in value:
        raise BilingualError(
            "This is not a valid email address; it should look like name@example.com.",
            "อีเมลไม่ถูกต้อง ควรอยู่ในรูปแบบ name@example.com",
        )
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"  # domains are case-insensitive; local parts, strictly, are not


CitizenId = Annotated[str, BeforeValidator(_thai_digits_to_arabic), _text(1, 40), AfterValidator(_check_citizen_id)]
"""Thai 13-digit citizen ID, stored compact (no dashes or spaces)."""

PhoneNumber = Annotated[str, BeforeValidator(_thai_digits_to_arabic), _text(1, 40), AfterValidator(_check_phone)]
"""Phone number, stored in E.164 form (``+66812345678``)."""

EmailAddress = Annotated[str, _text(3, 254), AfterValidator(_check_email)]
"""Email address, with a light syntax check."""


class Complainant(BaseModel):
    """Who complains and how they want to hear back; every field is optional, so anyone can stay anonymous."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, _text(1, 200)] | None = None  # None: anonymous
    citizen_id: CitizenId | None = None
    phone: PhoneNumber | None = None
    email: EmailAddress | None = None
    line_user_id: Annotated[str, _text(1, 64)] | None = None
    preferred_channels: Annotated[list[NotifyChannel], Field(min_length=1, max_length=4)] = Field(
        default_factory=lambda: [NotifyChannel.web]
    )
    # PDPA: the complainant may ask that the agencies handling the case never see who they are.
    confidential: bool = False

    @field_validator("preferred_channels")
    @classmethod
    def _no_duplicate_channels(cls, channels: list[NotifyChannel]) -> list[NotifyChannel]:
        if len(set(channels)) != len(channels):
            raise BilingualError("Each notification channel may be listed only once.", "ระบุช่องทางรับแจ้งผลซ้ำกันไม่ได้")
        return channels

    @model_validator(mode="after")
    def _channels_have_contacts(self) -> Self:
        # A channel we cannot reach would silently break the promise of progress reports.
        if NotifyChannel.sms in self.preferred_channels:
            if self.phone is None:
                raise BilingualError(
                    "To receive updates by SMS, give a mobile phone number.",
                    "หากต้องการรับแจ้งผลทาง SMS โปรดระบุหมายเลขโทรศัพท์มือถือ",
                    field="phone",
                )
            if not _can_receive_sms(self.phone):
                raise BilingualError(
                    "This phone number cannot receive SMS; give a mobile number or choose another channel.",
                    "หมายเลขนี้รับ SMS ไม่ได้ โปรดระบุหมายเลขโทรศัพท์มือถือ หรือเลือกช่องทางอื่น",
                    field="phone",
                )
        if NotifyChannel.email in self.preferred_channels and self.email is None:
            raise BilingualError(
                "To receive updates by email, give an email address.",
                "หากต้องการรับแจ้งผลทางอีเมล โปรดระบุอีเมล",
                field="email",
            )
        if NotifyChannel.line in self.preferred_channels and self.line_user_id is None:
            raise BilingualError(
                "To receive updates on LINE, the LINE user ID is needed.",
                "หากต้องการรับแจ้งผลทาง LINE ต้องมี LINE user ID",
                field="line_user_id",
            )
        return self


# --- location -------------------------------------------------------------------------------------------

# Same clean-up idea as geothai.search(): case, spaces, dots, hyphens and the word for the level do not
# matter. Applied to both sides of every comparison, so it only has to be consistent, not perfect.
_SHORT_FORM = re.compile(r"^\s*(?:จ|อ|ต)\.\s*")
_MARKS = re.compile(r"[\s.'’\-ฯ]")
_LEVEL_WORD = re.compile(r"^(?:จังหวัด|กิ่งอำเภอ|อำเภอ|เขต|ตำบล|แขวง|changwat|amphoe|khet|tambon|khwaeng)")
_LEVEL_SUFFIX = re.compile(r"(?:province|subdistrict|district)$")
# Names people use that are not geothai's names. Codes, not geography: the areas still come from geothai.
_PROVINCE_ALIASES = {"กทม": "10", "กรุงเทพ": "10", "bkk": "10", "อยุธยา": "14", "ayutthaya": "14"}
_CAPITAL_DISTRICT = frozenset({"เมือง", "mueang", "muang"})  # "อ.เมือง": the capital district, code XX01
_BANGKOK_CODE = "10"  # Bangkok's khet have no capital district


_Area = TypeVar("_Area", Province, District, Subdistrict)
_T = TypeVar("_T")


def _key(name: str) -> str:
    text = _MARKS.sub("", _SHORT_FORM.sub("", name).lower())
    return _LEVEL_SUFFIX.sub("", _LEVEL_WORD.sub("", text)) or text


def _index(areas: Iterable[_Area]) -> dict[str, tuple[_Area, ...]]:
    index: dict[str, list[_Area]] = {}
    for area in areas:
        for key in {_key(area.name_th), _key(area.name_en)}:
            index.setdefault(key, []).append(area)
    return {k: tuple(v) for k, v in index.items()}


@cache
def _provinces_by_name() -> dict[str, tuple[Province, ...]]:
    index = _index(geothai.provinces())
    for alias, code in _PROVINCE_ALIASES.items():
        found = geothai.province(code)
        if found is not None:
            index.setdefault(alias, (found,))
    return index


def _all_districts() -> Iterable[District]:
    return (d for p in geothai.provinces() for d in geothai.districts(p.code))


@cache
def _districts_by_name() -> dict[str, tuple[District, ...]]:
    return _index(_all_districts())


@cache
def _subdistricts_by_name() -> dict[str, tuple[Subdistrict, ...]]:
    return _index(s for d in _all_districts() for s in geothai.subdistricts(d.code))


def _only(found: tuple[_T, ...], ambiguous: BilingualError) -> _T | None:
    if len(found) > 1:
        raise ambiguous
    return found[0] if found else None


def _resolve_province(name: str | None, code: str | None) -> Province | None:
    by_code = None
    if code is not None:
        by_code = geothai.province(code)
        if by_code is None:
            raise BilingualError("There is no Thai province with this code.", "ไม่มีจังหวัดที่ใช้รหัสนี้", field="province_code")
    if name is None:
        return by_code
    by_name = _only(
        _provinces_by_name().get(_key(name), ()),
        BilingualError("This province name is ambiguous.", "ชื่อจังหวัดนี้ไม่ชัดเจน", field="province"),
    )
    if by_name is None:
        raise BilingualError(
            "There is no Thai province with this name; write it in Thai or English, e.g. Chiang Mai.",
            "ไม่พบจังหวัดชื่อนี้ โปรดระบุชื่อจังหวัดเป็นภาษาไทยหรือภาษาอังกฤษ เช่น เชียงใหม่ หรือ Chiang Mai",
            field="province",
        )
    if by_code is not None and by_code != by_name:
        raise BilingualError(
            "The province name and province code are different provinces.",
            "ชื่อจังหวัดกับรหัสจังหวัดไม่ตรงกัน",
            field="province_code",
        )
    return by_name


def find_province(name: str) -> Province | None:
    """The province a person means by a name in Thai or English, a name people use (กทม, bkk) or its DOPA code;
    None when there is none, or when the name could be more than one."""
    text = name.strip()
    if text.isdigit():
        return geothai.province(text)
    found = _provinces_by_name().get(_key(text), ())
    return found[0] if len(found) == 1 else None


def _resolve_district(name: str | None, code: str | None, province: Province | None) -> District | None:
    not_in_province = BilingualError(
        "This district is not in the given province.", "อำเภอ/เขตนี้ไม่อยู่ในจังหวัดที่ระบุ", field="district"
    )
    by_code = None
    if code is not None:
        by_code = geothai.district(code)
        if by_code is None:
            raise BilingualError(
                "There is no Thai district with this code.", "ไม่มีอำเภอ/เขตที่ใช้รหัสนี้", field="district_code"
            )
        if province is not None and by_code.province_code != province.code:
            raise BilingualError(
                "This district code is not in the given province.",
                "รหัสอำเภอ/เขตนี้ไม่อยู่ในจังหวัดที่ระบุ",
                field="district_code",
            )
    if name is None:
        return by_code
    key = _key(name)
    if key in _CAPITAL_DISTRICT:
        if province is None:
            raise BilingualError(
                "Give the province too: every province has a district called Mueang.",
                "โปรดระบุจังหวัดด้วย เพราะทุกจังหวัดมีอำเภอเมือง",
                field="province",
            )
        capital = geothai.district(f"{province.code}01")
        candidates: tuple[District, ...] = (capital,) if capital and province.code != _BANGKOK_CODE else ()
        if not candidates:
            raise not_in_province
    else:
        candidates = _districts_by_name().get(key, ())
        if not candidates:
            raise BilingualError(
                "There is no Thai district (amphoe or khet) with this name.",
                "ไม่พบอำเภอหรือเขตชื่อนี้",
                field="district",
            )
        if province is not None:
            candidates = tuple(d for d in candidates if d.province_code == province.code)
            if not candidates:
                raise not_in_province
    by_name = _only(
        candidates,
        BilingualError(
            "Several provinces have a district with this name; give the province too.",
            "มีอำเภอชื่อนี้ในหลายจังหวัด โปรดระบุจังหวัดด้วย",
            field="province",
        )
        if province is None
        # Two districts of one province can share an English spelling (Bang Sai, Ayutthaya).
        else BilingualError(
            "More than one district in this province has this name; write it in Thai or give its code.",
            "มีอำเภอชื่อนี้มากกว่าหนึ่งแห่งในจังหวัดนี้ โปรดระบุชื่อเป็นภาษาไทยหรือระบุรหัสอำเภอ",
            field="district",
        ),
    )
    if by_code is not None and by_code != by_name:
        raise BilingualError(
            "The district name and district code are different districts.",
            "ชื่ออำเภอ/เขตกับรหัสอำเภอ/เขตไม่ตรงกัน",
            field="district_code",
        )
    return by_name


def _resolve_subdistrict(
    name: str | None, code: str | None, district: District | None, province: Province | None
) -> Subdistrict | None:
    def belongs(s: Subdistrict) -> bool:
        if district is not None:
            return s.district_code == district.code
        return province is None or s.province_code == province.code

    by_code = None
    if code is not None:
        by_code = geothai.subdistrict(code)
        if by_code is None:
            raise BilingualError(
                "There is no Thai subdistrict with this code.",
                "ไม่มีตำบล/แขวงที่ใช้รหัสนี้",
                field="subdistrict_code",
            )
        if not belongs(by_code):
            raise BilingualError(
                "This subdistrict code is not in the given district or province.",
                "รหัสตำบล/แขวงนี้ไม่อยู่ในอำเภอหรือจังหวัดที่ระบุ",
                field="subdistrict_code",
            )
    if name is None:
        return by_code
    candidates = _subdistricts_by_name().get(_key(name), ())
    if not candidates:
        raise BilingualError(
            "There is no Thai subdistrict (tambon or khwaeng) with this name.",
            "ไม่พบตำบลหรือแขวงชื่อนี้",
            field="subdistrict",
        )
    candidates = tuple(s for s in candidates if belongs(s))
    if not candidates:
        raise BilingualError(
            "This subdistrict is not in the given district or province.",
            "ตำบล/แขวงนี้ไม่อยู่ในอำเภอหรือจังหวัดที่ระบุ",
            field="subdistrict",
        )
    by_name = _only(
        candidates,
        BilingualError(
            "Several places have a subdistrict with this name; give the district too.",
            "มีตำบลชื่อนี้หลายแห่ง โปรดระบุอำเภอด้วย",
            field="district",
        )
        if district is None
        else BilingualError(
            "More than one subdistrict in this district has this name; write it in Thai or give its code.",
            "มีตำบลชื่อนี้มากกว่าหนึ่งแห่งในอำเภอนี้ โปรดระบุชื่อเป็นภาษาไทยหรือระบุรหัสตำบล",
            field="subdistrict",
        ),
    )
    if by_code is not None and by_code != by_name:
        raise BilingualError(
            "The subdistrict name and subdistrict code are different subdistricts.",
            "ชื่อตำบล/แขวงกับรหัสตำบล/แขวงไม่ตรงกัน",
            field="subdistrict_code",
        )
    return by_name


def _digits(length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, pattern=rf"^\d{{{length}}}$")


Latitude = Annotated[float, Field(allow_inf_nan=False)]
Longitude = Annotated[float, Field(allow_inf_nan=False)]


class Location(BaseModel):
    """Where the problem is. Names may be Thai or English; after validation they are geothai's Thai names.

    The ``*_code`` fields are DOPA codes. They may be sent instead of (or with) names, and are always filled
    in from the names, so a stored location round-trips through this model unchanged.
    """

    model_config = ConfigDict(extra="forbid")

    province: Annotated[str, _text(1, 100)] | None = None
    province_code: Annotated[str, BeforeValidator(_thai_digits_to_arabic), _digits(2)] | None = None
    district: Annotated[str, _text(1, 100)] | None = None
    district_code: Annotated[str, BeforeValidator(_thai_digits_to_arabic), _digits(4)] | None = None
    subdistrict: Annotated[str, _text(1, 100)] | None = None
    subdistrict_code: Annotated[str, BeforeValidator(_thai_digits_to_arabic), _digits(6)] | None = None
    postal_code: Annotated[str, BeforeValidator(_thai_digits_to_arabic), _digits(5)] | None = None
    address: Annotated[str, _text(1, 500)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._resolve_areas()
        self._check_postal_code()
        self._check_coordinates()
        if self.province is None and self.latitude is None and self.address is None:
            raise BilingualError(
                "Say where the problem is: give at least a province, a map position or an address.",
                "โปรดระบุสถานที่เกิดเหตุ อย่างน้อยหนึ่งอย่าง: จังหวัด พิกัดบนแผนที่ หรือที่อยู่",
            )
        return self

    def _resolve_areas(self) -> None:
        province = _resolve_province(self.province, self.province_code)
        district = _resolve_district(self.district, self.district_code, province)
        subdistrict = _resolve_subdistrict(self.subdistrict, self.subdistrict_code, district, province)
        # A smaller area names its parents, so "ต.ศรีภูมิ อ.เมืองเชียงใหม่" alone is enough.
        if subdistrict is not None and district is None:
            district = geothai.district(subdistrict.district_code)
        if district is not None and province is None:
            province = geothai.province(district.province_code)
        self._set_areas(province, district, subdistrict)

    def _set_areas(self, province: Province | None, district: District | None, subdistrict: Subdistrict | None) -> None:
        if province is not None:
            self.province, self.province_code = province.name_th, province.code
        if district is not None:
            self.district, self.district_code = district.name_th, district.code
        if subdistrict is not None:
            self.subdistrict, self.subdistrict_code = subdistrict.name_th, subdistrict.code

    def _check_postal_code(self) -> None:
        if self.postal_code is None:
            return
        served = geothai.by_postal_code(self.postal_code)
        if not served:
            raise BilingualError("There is no Thai postal code like this one.", "ไม่มีรหัสไปรษณีย์นี้", field="postal_code")
        # Check against the smallest area given; a wrong postal code usually means a wrong area.
        if self.subdistrict_code is not None:
            fits = any(s.code == self.subdistrict_code for s in served)
        elif self.district_code is not None:
            fits = any(s.district_code == self.district_code for s in served)
        elif self.province_code is not None:
            fits = any(s.province_code == self.province_code for s in served)
        else:
            fits = True
            # The postal code alone can name the province (and often the district) for routing.
            province_codes = {s.province_code for s in served}
            district_codes = {s.district_code for s in served}
            province = geothai.province(province_codes.pop()) if len(province_codes) == 1 else None
            district = geothai.district(district_codes.pop()) if len(district_codes) == 1 else None
            self._set_areas(province, district, None)
        if not fits:
            raise BilingualError(
                "This postal code does not belong to the given area.",
                "รหัสไปรษณีย์นี้ไม่ตรงกับพื้นที่ที่ระบุ",
                field="postal_code",
            )

    def _check_coordinates(self) -> None:
        if (self.latitude is None) != (self.longitude is None):
            raise BilingualError(
                "Give latitude and longitude together.",
                "ต้องระบุละติจูดและลองจิจูดคู่กัน",
                field="longitude" if self.longitude is None else "latitude",
            )
        if self.latitude is None or self.longitude is None:
            return
        lat_ok = LAT_RANGE[0] <= self.latitude <= LAT_RANGE[1]
        lon_ok = LON_RANGE[0] <= self.longitude <= LON_RANGE[1]
        if not (lat_ok and lon_ok):
            raise BilingualError(
                "The map position is outside Thailand; check that latitude and longitude are not swapped.",
                "พิกัดอยู่นอกประเทศไทย โปรดตรวจสอบว่าไม่ได้สลับละติจูดกับลองจิจูด",
                field="longitude" if lat_ok else "latitude",
            )


# --- complaint -------------------------------------------------------------------------------------------


# A reference with a scheme must use one of these: no javascript:, data:, file: or the like on a staff screen.
_SAFE_SCHEMES = frozenset({"https", "http", "s3", "urn", "upload"})  # upload: our own store's references
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def _safe_reference(value: str) -> str:
    scheme = _SCHEME.match(value)
    if scheme is None:
        return value  # a plain reference, such as a scanned letter's registry number
    name = scheme.group(1).lower()
    if name not in _SAFE_SCHEMES or (name in {"http", "https"} and not value[len(name) + 1 :].startswith("//")):
        allowed = ", ".join(sorted(_SAFE_SCHEMES))
        raise BilingualError(
            f"A link must start with one of: {allowed} (or be a plain reference without a scheme).",
            f"ลิงก์ต้องขึ้นต้นด้วย {allowed} (หรือเป็นเลขอ้างอิงที่ไม่มี scheme)",
        )
    return value


class Attachment(BaseModel):
    """A file that comes with the complaint (photo, letter scan), stored elsewhere and referred to here."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, _text(1, 255)]
    url_or_ref: Annotated[str, _text(1, 2000), AfterValidator(_safe_reference)]
    content_type: Annotated[str, _text(1, 255)] | None = None
    size_bytes: NonNegativeInt | None = None


def _not_in_future(value: date) -> date:
    if value > datetime.now(_BANGKOK).date():
        raise BilingualError(
            "The date of the event cannot be in the future; write the year in the Gregorian calendar "
            "(e.g. 2025), not the Buddhist Era.",
            "วันที่เกิดเหตุต้องไม่เป็นวันในอนาคต โปรดระบุปีเป็นคริสต์ศักราช (เช่น 2025) ไม่ใช่พุทธศักราช",
        )
    return value


@cache
def _centres() -> Centres:
    """The receiving centres of this deployment (``RONGTUK_CENTRES_FILE``), read once."""
    from config.settings import Settings

    return load_centres(Settings().centres_file)


def _known_centre(value: str) -> str:
    code = value.strip().upper()
    if code not in _centres():
        raise BilingualError(
            "There is no receiving centre with this code (see config/centres.yaml; e.g. PSC-1111, DAMRONG-50).",
            "ไม่พบศูนย์รับเรื่องที่ใช้รหัสนี้ (ดู config/centres.yaml เช่น PSC-1111, DAMRONG-50)",
        )
    return code


@cache
def _categories() -> frozenset[str]:
    """The complaint categories of this deployment (``RONGTUK_CATEGORIES_FILE``), read once."""
    from config.reference import load_reference
    from config.settings import Settings

    settings = Settings()
    reference = load_reference(
        categories_file=settings.categories_file,
        agencies_file=settings.agencies_file,
        regions_file=settings.regions_file,
    )
    return frozenset(reference.categories)


def _known_category(value: str) -> str:
    code = value.strip()
    if code not in _categories():
        raise BilingualError(
            "There is no complaint category with this code: leave it out and the centre chooses one "
            "(GET /api/v1/categories lists them; e.g. lighting.streetlight, roads.pothole).",
            "ไม่พบประเภทเรื่องที่ใช้รหัสนี้ เว้นว่างไว้ได้ ศูนย์จะเลือกประเภทให้ "
            "(ดูรายการได้ที่ GET /api/v1/categories เช่น lighting.streetlight, roads.pothole)",
        )
    return code


class ComplaintIn(BaseModel):
    """A new complaint as it arrives from any intake channel."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    description: Annotated[str, _text(10, 5000)]
    subject: Annotated[str, _text(1, 200)] | None = None
    complainant: Complainant
    location: Location | None = None
    category: Annotated[str, _text(1, 100), AfterValidator(_known_category)] | None = None
    attachments: Annotated[list[Attachment], Field(max_length=20)] = Field(default_factory=list)
    occurred_on: Annotated[date, AfterValidator(_not_in_future)] | None = None
    kind: Kind = Kind.complaint
    priority: Priority = Priority.normal
    # The receiving centre (config/centres.yaml); the deployment's default centre when not given.
    centre: Annotated[str, _text(1, 32), AfterValidator(_known_centre)] | None = None

    def to_complaint(self) -> Complaint:
        """The validated complaint as the case carries it (workflow input, read model)."""
        return Complaint.model_validate(self.model_dump() | {"centre": self.centre or _centres().default})
