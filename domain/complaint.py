"""The complaint as the case carries it: typed, already validated, free of any check that needs the clock.

The API's intake models (``api/schemas.py``) validate what people send and turn it into a :class:`Complaint`;
the workflow input, the read model's intake row and the screening all take this type. Unknown keys are
ignored, so a history recorded before a field was removed still decodes.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    """How the complaint reached the centre: the six PSC 1111 intake channels, and two more ways in: what PSC
    finds on social media and files itself, and mail to the centre's complaint address."""

    walk_in = "walk_in"  # counter "1111 service point", including mobile counters in provinces
    letter = "letter"  # PO Box 1111
    hotline = "hotline"  # call centre 1111 (or 1567 at Damrongdham)
    web = "web"
    app = "app"  # mobile app "PSC 1111"
    line = "line"  # LINE official account @PSC1111
    social = "social"  # a post PSC found on social media, keyed in by an officer (link and screenshot attached)
    email = "email"  # a message to the centre's complaint address (intake_channels/email.py)


# Channels an officer keys in (never a citizen filing for themselves).
OFFICER_CHANNELS = frozenset({Channel.hotline, Channel.walk_in, Channel.letter, Channel.social})


class Kind(StrEnum):
    """What the person brings: the four kinds PSC 1111 and the Damrongdham centres take."""

    complaint = "complaint"  # ร้องทุกข์/ร้องเรียน: something went wrong and should be put right
    suggestion = "suggestion"  # ข้อเสนอแนะ/แสดงความคิดเห็น: an opinion or a suggestion
    request = "request"  # ขอความช่วยเหลือ: a request for help
    tipoff = "tipoff"  # แจ้งเบาะแส: a tip-off (wrongdoing, corruption, a crime)

    @property
    def label(self) -> tuple[str, str]:
        """English and Thai names, as staff and citizens read them."""
        return KIND_LABELS[self]


KIND_LABELS: dict[Kind, tuple[str, str]] = {
    Kind.complaint: ("Complaint", "เรื่องร้องทุกข์/ร้องเรียน"),
    Kind.suggestion: ("Opinion or suggestion", "ข้อคิดเห็น/ข้อเสนอแนะ"),
    Kind.request: ("Request for help", "ขอความช่วยเหลือ"),
    Kind.tipoff: ("Tip-off", "แจ้งเบาะแส"),
}


class Priority(StrEnum):
    """Urgent: danger to life or health, a protest gathering, a disaster. Urgent cases come first and get the
    shorter allowances of the urgent SLA class."""

    normal = "normal"
    urgent = "urgent"

    @property
    def label(self) -> tuple[str, str]:
        return PRIORITY_LABELS[self]


PRIORITY_LABELS: dict[Priority, tuple[str, str]] = {
    Priority.normal: ("Normal", "ปกติ"),
    Priority.urgent: ("Urgent", "เร่งด่วน"),
}

# The receiving centre of a case that names none (every case filed before centres existed was PSC's).
DEFAULT_CENTRE = "PSC-1111"


class NotifyChannel(StrEnum):
    """How the complainant wants to receive progress reports."""

    sms = "sms"
    line = "line"
    email = "email"
    web = "web"  # the inbox on the tracking page


_STORED = ConfigDict(extra="ignore", frozen=True)


class Person(BaseModel):
    """Who complains and how they want to hear back (all optional: anyone can stay anonymous)."""

    model_config = _STORED

    name: str | None = None
    citizen_id: str | None = None
    phone: str | None = None  # E.164
    email: str | None = None
    line_user_id: str | None = None
    preferred_channels: list[NotifyChannel] = Field(default_factory=lambda: [NotifyChannel.web])
    confidential: bool = False


class Place(BaseModel):
    """Where the problem is: geothai's Thai names and DOPA codes, an address, a map position."""

    model_config = _STORED

    province: str | None = None
    province_code: str | None = None
    district: str | None = None
    district_code: str | None = None
    subdistrict: str | None = None
    subdistrict_code: str | None = None
    postal_code: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class FileRef(BaseModel):
    """A file that comes with the complaint (photo, letter scan), stored elsewhere and referred to here."""

    model_config = _STORED

    name: str
    url_or_ref: str
    content_type: str | None = None
    size_bytes: int | None = None


class Complaint(BaseModel):
    """A complaint as filed: the channel, what happened, who and where."""

    model_config = _STORED

    channel: Channel = Channel.web
    description: str = ""
    subject: str | None = None
    complainant: Person = Field(default_factory=Person)
    location: Place | None = None
    category: str | None = None
    attachments: list[FileRef] = Field(default_factory=list)
    occurred_on: date | None = None
    kind: Kind = Kind.complaint
    priority: Priority = Priority.normal
    # The centre that received it (config/centres.yaml); None in complaints filed before centres existed.
    centre: str | None = None
