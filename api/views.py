"""How cases look to each audience: staff, agencies (confidential identities hidden) and the public."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import geothai
from geothai.types import District, Province, Subdistrict
from pythainlp.util import collate

from config.agencies import Agency
from config.centres import Centres
from config.reference import regions_by_province
from delivery.templates import format_date
from domain.complaint import KIND_LABELS, PRIORITY_LABELS, Kind, Priority
from sla.policy import SlaPolicy
from store import models
from workflows.process import (
    ACTION_LABELS,
    EVENT_LABELS,
    NEXT_STEPS,
    STATE_LABELS,
    Actor,
    Context,
    Role,
    State,
    TaskStatus,
    TaskView,
    allowed_events,
)

_T = TypeVar("_T")
BANGKOK = ZoneInfo("Asia/Bangkok")
# Event inputs the complainant should read on their own timeline; everything else stays internal.
PUBLIC_DATA = frozenset(
    {"question", "advice", "response", "outcome", "original_case_id", "expected_by", "ombudsman_until"}
)


# The names the auditor's history view gives events and states, (English, Thai) by code.
HISTORY_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "events": dict(EVENT_LABELS),
    "states": {state.value: labels for state, labels in STATE_LABELS.items()},
    # What each kind of entry of api.history is, as an auditor reads it.
    "kinds": {
        "filed": ("Filed: the case's workflow started", "ยื่นเรื่อง: เริ่มกระบวนการของเรื่อง"),
        "action_accepted": ("Action received", "ได้รับคำสั่ง"),
        "action_completed": ("Action done", "ดำเนินการตามคำสั่งแล้ว"),
        "action_failed": ("Action refused", "ไม่ดำเนินการตามคำสั่ง"),
        "transition": ("Written to the event log", "บันทึกลงบันทึกเหตุการณ์"),
        "deadline_set": ("Deadline set", "ตั้งกำหนดเวลา"),
        "deadline_fired": ("Deadline reached", "ถึงกำหนดเวลา"),
        "signal": ("Message to the workflow", "ข้อความถึงกระบวนการ"),
        "activity": ("Task run", "งานที่สั่งให้ทำ"),
        "local_activity": ("Engine step", "ขั้นตอนภายในของระบบ"),
        "agency_task_started": ("Agency task started", "เริ่มงานของหน่วยงาน"),
        "agency_task_ended": ("Agency task ended", "งานของหน่วยงานสิ้นสุด"),
        "workflow_completed": ("Workflow ended", "กระบวนการสิ้นสุด"),
        "workflow_continued_as_new": ("History continues in a new run", "ประวัติต่อในรอบใหม่"),
    },
}
# Entries that tell how the engine worked, not what happened to the case: the auditor's page folds them away.
ENGINE_KINDS = frozenset({"local_activity"})


def expected_date(due_at: datetime | None) -> date | None:
    """The calendar day a deadline falls in: deadlines are the midnight that ends their last working day."""
    return (due_at.astimezone(BANGKOK) - timedelta(microseconds=1)).date() if due_at else None


@functools.cache
def _provinces_named() -> dict[str, Province]:
    return {p.name_th: p for p in geothai.provinces()}


@functools.cache
def _districts_named(province_code: str) -> dict[str, District]:
    # By province: a district's name alone is not unique (เฉลิมพระเกียรติ is in several provinces).
    return {d.name_th: d for d in geothai.districts(province_code)}


@functools.cache
def _subdistricts_named(district_code: str) -> dict[str, Subdistrict]:
    return {s.name_th: s for s in geothai.subdistricts(district_code)}


def in_reading_order(items: Iterable[_T], name: Callable[[_T], str], lang: str) -> list[_T]:
    """Items by name as a reader looks them up in a list: Thai in dictionary order (เชียงใหม่ under ช, not after
    every consonant as code points would put it), English alphabetically."""
    items = list(items)
    names = {name(i) for i in items}
    order = {n: k for k, n in enumerate(collate(names) if lang == "th" else sorted(names, key=str.casefold))}
    return sorted(items, key=lambda i: order[name(i)])


def area_name(area: Province | District | Subdistrict, lang: str) -> str:
    return area.name_th if lang == "th" else area.name_en


@functools.cache
def province_choices(lang: str) -> tuple[Province, ...]:
    """The 77 provinces in the reader's order, for a picker."""
    return tuple(in_reading_order(geothai.provinces(), lambda p: area_name(p, lang), lang))


def place_words(
    province: str | None, district: str | None = None, subdistrict: str | None = None, lang: str = "th"
) -> str:
    """Where a case is, smallest area first, in the reader's language: the read model keeps geothai's Thai
    names, and English readers get geothai's English ones ("Lat Phrao, Lat Phrao, Bangkok"). A name geothai
    does not know stays as stored; "-" when there is none."""
    names = [subdistrict, district, province]
    if lang != "th" and province:
        found = _provinces_named().get(province)
        found_district = _districts_named(found.code).get(district or "") if found else None
        found_sub = _subdistricts_named(found_district.code).get(subdistrict or "") if found_district else None
        names = [
            found_sub.name_en if found_sub else subdistrict,
            found_district.name_en if found_district else district,
            found.name_en if found else province,
        ]
    return ", ".join(n for n in names if n) or "-"


def state_view(status: str) -> dict[str, str]:
    en, th = STATE_LABELS[State(status)]
    return {"code": status, "label_en": en, "label_th": th}


def next_step_view(status: str) -> dict[str, str] | None:
    """What happens next for the complainant, in the case's state (``workflows.process.NEXT_STEPS``)."""
    try:
        en, th = NEXT_STEPS[State(status)]
    except (KeyError, ValueError):
        return None
    return {"code": status, "label_en": en, "label_th": th}


def agency_view(code: str, agencies: dict[str, Agency]) -> dict[str, str]:
    agency = agencies.get(code)
    return {
        "code": code,
        "name_th": agency.name_th if agency else code,
        "name_en": agency.name_en if agency else code,
    }


def handler_view(code: str, agencies: dict[str, Agency]) -> dict[str, str | None]:
    """An agency as the complainant sees it: its names and the public hotline to call it on."""
    agency = agencies.get(code)
    return {**agency_view(code, agencies), "phone": agency.contact.get("phone") if agency else None}


def _date_words(value: Any) -> dict[str, str]:
    """An ISO date as a sentence says it, in Thai (Buddhist era) and English; anything else as it is."""
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return {"th": str(value), "en": str(value)}
    return {"th": format_date(day, "th"), "en": format_date(day, "en")}


def event_view(event: models.CaseEvent, *, public: bool, hide_complainant: bool = False) -> dict[str, Any]:
    en, th = EVENT_LABELS.get(event.event, (event.event, event.event))
    out: dict[str, Any] = {
        "seq": event.seq,
        "event": event.event,
        "label_en": en,
        "label_th": th,
        "at": event.at.astimezone(BANGKOK).isoformat(),
        "state": event.to_state,
    }
    if public:
        out["by"] = event.actor_role if event.actor_role != Role.AGENCY else event.actor_agency
        out |= {k: v for k, v in (event.data or {}).items() if k in PUBLIC_DATA}
        if "ombudsman_until" in out:
            until = _date_words(out["ombudsman_until"])
            out["notice_en"] = (
                f"If you are still not satisfied you may take your complaint to the Office of the "
                f"Ombudsman (hotline 1676) until {until['en']}."
            )
            out["notice_th"] = (
                f"หากท่านยังไม่พอใจผลการพิจารณา ท่านมีสิทธิ์ร้องเรียนต่อสำนักงานผู้ตรวจการแผ่นดิน (สายด่วน 1676) ได้ภายในวันที่ {until['th']}"
            )
        return out
    # The complainant's own entries carry their tracking code as actor id and their own words.
    masked = hide_complainant and event.actor_role == Role.CITIZEN
    out |= {
        "from_state": event.from_state,
        "actor": {
            "id": Role.CITIZEN.value if masked else event.actor_id,
            "role": event.actor_role,
            "agency": event.actor_agency,
        },
        "data": {k: v for k, v in (event.data or {}).items() if k in PUBLIC_DATA} if masked else event.data,
    }
    return out


def _labelled(code: str | None, labels: tuple[str, str] | None) -> dict[str, str] | None:
    if code is None:
        return None
    en, th = labels or (code, code)
    return {"code": code, "label_en": en, "label_th": th}


def classification_view(
    *,
    kind: str | None,
    priority: str | None,
    centre: str | None,
    sla_class: str | None = None,
    region: str | None = None,
    centres: Centres | None = None,
    policy: SlaPolicy | None = None,
    citizen: bool = False,
) -> dict[str, dict[str, str] | None]:
    """Kind, priority, receiving centre (and for staff the SLA class and region), each with its labels."""
    kind, priority = kind or Kind.complaint.value, priority or Priority.normal.value
    known = centres.get(centre) if centres is not None else None
    out = {
        "kind": _labelled(kind, KIND_LABELS.get(Kind(kind)) if kind in set(Kind) else None),
        "priority": _labelled(priority, PRIORITY_LABELS.get(Priority(priority)) if priority in set(Priority) else None),
        "centre": _labelled(centre, (known.name_en, known.name_th) if known else None),
    }
    if citizen:
        return out
    cls = policy.classes.get(sla_class or "") if policy is not None else None
    regions = {r.code: r for r in regions_by_province().values()}
    area = regions.get(region or "")
    return out | {
        "sla_class": _labelled(sla_class, (cls.name_en, cls.name_th) if cls else None),
        "region": _labelled(region, (area.name_en, area.name_th) if area else None),
    }


def context_of(case: models.Case, tasks: list[models.AgencyTask], policy: SlaPolicy, now: datetime) -> Context:
    """The guards' view of a case as the read model has it (the workflow builds the same from its state)."""
    return Context(
        tasks=tuple(
            TaskView(
                t.agency,
                TaskStatus(t.status),
                t.extension_pending > 0,
                t.extended_by,
                stage=t.stage,
                question_pending=t.question_asked_at is not None,
                questions=t.questions,
                breached=t.breached_at is not None,
            )
            for t in tasks
        ),
        now=now,
        rejections=case.rejections,
        max_rejections=policy.max_rejections,
        extension_allowance=policy.extension_allowance,
        review_deadline=case.review_deadline,
        late_review_allowed=case.late_review_allowed,
        classification={
            "kind": case.kind,
            "priority": case.priority,
            "centre": case.centre,
            "sla_class": case.sla_class,
        },
    )


def allowed_actions_view(case: models.Case, ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    return [
        {
            "action": t.event,
            "label_en": ACTION_LABELS.get(t.event, t.label)[0],
            "label_th": ACTION_LABELS.get(t.event, t.label)[1],
            "leads_to": t.target.value,
            "fields": [f.describe() for f in t.fields],
        }
        for t in allowed_events(State(case.status), actor, ctx)
    ]


def complainant_view(case: models.Case) -> dict[str, Any]:
    """The complainant's identity and contact details: personal data (PDPA)."""
    return {
        "name": case.complainant_name,
        "citizen_id": case.complainant_citizen_id,
        "phone": case.complainant_phone,
        "email": case.complainant_email,
        "line_user_id": case.complainant_line_user_id,
        "preferred_channels": case.preferred_channels,
        "confidential": case.confidential,
    }


def case_view(
    case: models.Case,
    *,
    events: list[models.CaseEvent],
    tasks: list[models.AgencyTask],
    actor: Actor,
    agencies: dict[str, Agency],
    ctx: Context,
    centres: Centres | None = None,
    policy: SlaPolicy | None = None,
) -> dict[str, Any]:
    """The full case for staff and agencies, with the timeline and what ``actor`` may do next."""
    hide_identity = actor.role is Role.AGENCY and case.confidential
    complainant = {"confidential": True} if hide_identity else complainant_view(case)
    return {
        "case_id": case.case_id,
        "tracking_code": case.tracking_code if not hide_identity else None,
        "status": state_view(case.status),
        "channel": case.channel,
        "subject": case.subject,
        "description": case.description,
        "category": case.category,
        **classification_view(
            kind=case.kind,
            priority=case.priority,
            centre=case.centre,
            sla_class=case.sla_class,
            region=case.region,
            centres=centres,
            policy=policy,
        ),
        "complainant": complainant,
        "location": {
            "province": case.province,
            "district": case.district,
            "subdistrict": case.subdistrict,
            "address": None if hide_identity else case.address,
            # A confidential complainant's exact spot may be their home: about 1 km is enough to act on.
            "latitude": _coarse(case.latitude) if hide_identity else case.latitude,
            "longitude": _coarse(case.longitude) if hide_identity else case.longitude,
        },
        # Photos and scans may show or name the complainant; agencies ask the centre when they need them.
        "attachments": [] if hide_identity else case.attachments,
        "agencies": [agency_view(code, agencies) | {"task": _task(tasks, code)} for code in case.agencies or []],
        "handler_id": case.handler_id,
        "outcome": case.outcome,
        "received_at": case.received_at.astimezone(BANGKOK).isoformat(),
        "expected_by": expected_date(case.expected_by),
        "due_at": case.due_at.astimezone(BANGKOK).isoformat() if case.due_at else None,
        "closed_at": case.closed_at.astimezone(BANGKOK).isoformat() if case.closed_at else None,
        "timeline": [event_view(e, public=False, hide_complainant=hide_identity) for e in events],
        "allowed_actions": allowed_actions_view(case, ctx, actor),
    }


def _coarse(degrees: float | None) -> float | None:
    return round(degrees, 2) if degrees is not None else None


def _task(tasks: list[models.AgencyTask], code: str) -> dict[str, Any] | None:
    task = next((t for t in tasks if t.agency == code), None)
    if task is None:
        return None
    return {
        "status": task.status,
        "outcome": task.outcome,
        "stage": task.stage,
        "due_at": task.due_at.astimezone(BANGKOK).isoformat() if task.due_at else None,
        "waiting_for_complainant_since": (
            task.question_asked_at.astimezone(BANGKOK).isoformat() if task.question_asked_at else None
        ),
    }


def tracking_view(
    case: models.Case,
    *,
    events: list[models.CaseEvent],
    agencies: dict[str, Agency],
    ctx: Context,
    centres: Centres | None = None,
) -> dict[str, Any]:
    """What anyone holding the tracking code may see: no personal data, no internal notes."""
    citizen = Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN)
    return {
        "tracking_code": case.tracking_code,
        "status": state_view(case.status),
        "next_step": next_step_view(case.status),
        **classification_view(
            kind=case.kind, priority=case.priority, centre=case.centre, centres=centres, citizen=True
        ),
        "handled_by": [handler_view(code, agencies) for code in case.agencies or []],
        "received_at": case.received_at.astimezone(BANGKOK).isoformat(),
        "expected_by": expected_date(case.expected_by),
        "closed_at": case.closed_at.astimezone(BANGKOK).isoformat() if case.closed_at else None,
        "outcome": case.outcome,
        "closure_reason": case.closure_reason,
        "duplicate_of": case.duplicate_of,
        "review_deadline": case.review_deadline.astimezone(BANGKOK).isoformat() if case.review_deadline else None,
        "timeline": [event_view(e, public=True) for e in events if e.public],
        "allowed_actions": allowed_actions_view(case, ctx, citizen),
    }
