"""Message templates per event, audience and language: data in ``config/notifications.yaml``, checked at load."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.process import EVENT_LABELS as PROCESS_EVENT_LABELS
from workflows.process import STATE_LABELS, TRANSITIONS, Audience, State

DEFAULT_TEMPLATES_FILE = Path(__file__).resolve().parent.parent / "config" / "notifications.yaml"
Language = Literal["th", "en"]
LANGUAGES: tuple[Language, ...] = ("th", "en")
PLACEHOLDERS = frozenset({"tracking_code", "case_id", "agency", "expected_date", "link", "state", "event"})
THAI_MONTHS = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")
ENGLISH_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Buddhist era: the year Thai readers expect on a date.
BE_OFFSET = 543

# Messages about what happens beside the workflow (followup/): the "was it fixed?" question some weeks after
# a closure, and the supervisors' notice when a "not fixed" answer could not reopen the case.
FOLLOWUP_EVENT, FOLLOWUP_STAFF_EVENT = "followup", "followup_not_fixed"
SIDE_EVENT_LABELS: Mapping[str, tuple[str, str]] = {
    FOLLOWUP_EVENT: ("Was the problem fixed?", "ปัญหาได้รับการแก้ไขแล้วหรือไม่"),
    FOLLOWUP_STAFF_EVENT: ("The complainant says it is not fixed", "ผู้ร้องแจ้งว่าปัญหายังไม่ได้รับการแก้ไข"),
}
# Events the complainant hears of: every edge of the process that notifies them, the filing itself, and the
# follow-up question.
COMPLAINANT_EVENTS = frozenset(
    {"filed", FOLLOWUP_EVENT} | {t.event for t in TRANSITIONS if Audience.COMPLAINANT in t.notify}
)
STAFF_EVENTS = frozenset({FOLLOWUP_STAFF_EVENT} | {t.event for t in TRANSITIONS if t.notify - {Audience.COMPLAINANT}})
EVENT_LABELS: Mapping[str, tuple[str, str]] = dict(PROCESS_EVENT_LABELS) | dict(SIDE_EVENT_LABELS)


class TemplateError(ValueError):
    """The templates file is not usable; the message says where."""


def format_date(day: date, lang: Language) -> str:
    """A date as people write it: ``3 ธ.ค. 2569`` in Thai (Buddhist era), ``3 Dec 2026`` in English."""
    if lang == "th":
        return f"{day.day} {THAI_MONTHS[day.month - 1]} {day.year + BE_OFFSET}"
    return f"{day.day} {ENGLISH_MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class Facts:
    """What a message may say about a case: nothing personal, only what the tracking page shows anyway."""

    event: str
    state: str
    audience: str
    case_id: str
    tracking_code: str
    agency: Mapping[str, str]  # the handling agencies' names, by language
    expected_by: date | None
    link: str
    survey_link: str | None = None  # for the complainant once the case is settled


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    lang: Language


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=2000)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    languages: list[Language]
    survey_footer: dict[Language, str]
    no_date: dict[Language, str]
    complainant: dict[str, dict[Language, _Text]]
    staff: dict[str, dict[Language, _Text]]


def _fields(text: str) -> set[str]:
    names: set[str] = set()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if spec or conversion:
            raise TemplateError(f"placeholder {{{name}}} may not carry a format or conversion")
        names.add(name)
    return names


def _check_text(where: str, text: str, allowed: frozenset[str]) -> None:
    try:
        unknown = _fields(text) - allowed
    except ValueError as exc:  # unbalanced braces
        raise TemplateError(f"{where}: {exc}") from None
    if unknown:
        raise TemplateError(f"{where}: unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


class Templates:
    """The loaded, checked templates; ``render`` turns facts into a message."""

    def __init__(self, data: _File) -> None:
        self._data = data

    @classmethod
    def load(cls, path: Path | None = None) -> Templates:
        """Read and check a templates file (the shipped one by default); raise TemplateError if unusable."""
        source = path or DEFAULT_TEMPLATES_FILE
        try:
            raw: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
            data = _File.model_validate(raw)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise TemplateError(f"{source}: {exc}") from None
        cls._check(data)
        return cls(data)

    @staticmethod
    def _check(data: _File) -> None:
        if set(data.languages) != set(LANGUAGES):
            raise TemplateError(f"languages must be {list(LANGUAGES)}")
        for section in ("survey_footer", "no_date"):
            texts: dict[Language, str] = getattr(data, section)
            for lang in LANGUAGES:
                if lang not in texts:
                    raise TemplateError(f"{section}: no '{lang}' text")
                allowed = frozenset({"survey_link"}) if section == "survey_footer" else frozenset()
                _check_text(f"{section}.{lang}", texts[lang], allowed)
        missing = COMPLAINANT_EVENTS - data.complainant.keys()
        if missing:
            raise TemplateError(f"complainant: no template for event(s) {sorted(missing)}")
        if "default" not in data.staff:
            raise TemplateError("staff: a 'default' template is required")
        for audience, known in (("complainant", COMPLAINANT_EVENTS), ("staff", STAFF_EVENTS | {"default"})):
            section_data: dict[str, dict[Language, _Text]] = getattr(data, audience)
            for event, by_lang in section_data.items():
                if event not in known:
                    raise TemplateError(f"{audience}.{event}: not an event that notifies this audience")
                for lang in LANGUAGES:
                    if lang not in by_lang:
                        raise TemplateError(f"{audience}.{event}: no '{lang}' text")
                    _check_text(f"{audience}.{event}.{lang}.subject", by_lang[lang].subject, PLACEHOLDERS)
                    _check_text(f"{audience}.{event}.{lang}.text", by_lang[lang].text, PLACEHOLDERS)

    def render(self, facts: Facts, lang: Language) -> Message:
        """The message for ``facts`` in ``lang``; events without a template of their own use the default."""
        if facts.audience == Audience.COMPLAINANT.value:
            # An event added to the process after the templates were written still says something true.
            template = self._data.complainant.get(facts.event) or self._data.staff["default"]
        else:
            template = self._data.staff.get(facts.event) or self._data.staff["default"]
        chosen = template[lang]
        try:
            state_label = STATE_LABELS[State(facts.state)]
        except ValueError:
            state_label = (facts.state, facts.state)
        event_label = EVENT_LABELS.get(facts.event, (facts.event, facts.event))
        index = 1 if lang == "th" else 0
        values = {
            "tracking_code": facts.tracking_code,
            "case_id": facts.case_id,
            "agency": facts.agency.get(lang, ""),
            "expected_date": format_date(facts.expected_by, lang) if facts.expected_by else self._data.no_date[lang],
            "link": facts.link,
            "state": state_label[index],
            "event": event_label[index],
        }
        text = chosen.text.format_map(values)
        if facts.survey_link:
            text = f"{text}\n{self._data.survey_footer[lang].format_map({'survey_link': facts.survey_link})}"
        return Message(subject=chosen.subject.format_map(values), text=text, lang=lang)
