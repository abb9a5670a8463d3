"""The complaint process as data: states, events, who may fire them, what they need, where they lead.

This module is the single source of truth for allowed actions. ``ComplaintWorkflow`` executes it, the API
reads it for ``allowed_actions`` and its 409s, the console draws its buttons from it and the exporters render
it as BPMN and Mermaid. It is pure: no Temporal, no SQL, no clock (``now`` comes in through ``Context``).

The review model is the Scottish Public Services Ombudsman's two-stage procedure: stage 1 (frontline response
by the agency, 5 working days), stage 2 (investigation: acknowledge in 3, respond in 20), then the right to go
to the Office of the Ombudsman.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.complaint import Kind, Priority
from sla.rules import DeadlineRule


class State(StrEnum):
    RECEIVED = "received"
    SCREENING = "screening"
    AWAITING_INFO = "awaiting_info"
    ASSIGNMENT = "assignment"
    STAGE1 = "stage1"
    RESPONDED = "responded"
    CLOSED = "closed"
    STAGE2 = "stage2"
    STAGE2_INVESTIGATION = "stage2_investigation"
    CLOSED_STAGE2 = "closed_stage2"
    REFERRED = "referred"
    WITHDRAWN = "withdrawn"


class Role(StrEnum):
    CITIZEN = "citizen"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    AGENCY = "agency"
    AUDITOR = "auditor"
    SYSTEM = "system"


class Audience(StrEnum):
    COMPLAINANT = "complainant"
    AGENCY = "agency"
    SUPERVISOR = "supervisor"
    AGENCY_HEAD = "agency_head"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    UPHELD = "upheld"
    PARTIALLY_UPHELD = "partially_upheld"
    NOT_UPHELD = "not_upheld"
    NOT_WITHIN_AUTHORITY = "not_within_authority"


class TaskStatus(StrEnum):
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    RESPONDED = "responded"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# Tasks whose agency still owes work; with the answered ones, the tasks that count for the case's phase.
OPEN_TASK = frozenset({TaskStatus.ASSIGNED, TaskStatus.ACCEPTED})
ACTIVE_TASK = OPEN_TASK | {TaskStatus.RESPONDED}

INITIAL_STATE = State.RECEIVED
# No action leaves these; the workflow ends as soon as it reaches one.
TERMINAL_STATES = frozenset({State.REFERRED, State.WITHDRAWN})
# Finished for the complainant's purposes, but the workflow stays open for rating, a stage 2 request, a
# referral to the Ombudsman or a supervisor's reopening, until the policy's window for those has passed.
SETTLED_STATES = frozenset({State.CLOSED, State.CLOSED_STAGE2})
OPEN_STATES = frozenset(State) - TERMINAL_STATES - SETTLED_STATES

# The SLA rule (see sla/policy.py) whose deadline runs while a case waits in each state. The workflow arms
# the case-level ones; agency tasks carry their own (acceptance, then response) in child workflows. The BPMN
# export draws all of them as timer boundary events.
STATE_DEADLINES: Mapping[State, DeadlineRule] = {
    State.RECEIVED: DeadlineRule.SCREENING,
    State.SCREENING: DeadlineRule.SCREENING,
    State.AWAITING_INFO: DeadlineRule.AWAITING_INFO_LAPSE,
    State.ASSIGNMENT: DeadlineRule.AGENCY_ACCEPTANCE,
    State.STAGE1: DeadlineRule.STAGE1_RESPONSE,
    State.RESPONDED: DeadlineRule.CLOSURE,
    State.STAGE2: DeadlineRule.STAGE2_ACKNOWLEDGE,
    State.STAGE2_INVESTIGATION: DeadlineRule.STAGE2_RESPONSE,
}

# The deadlines each agency's own task runs in a state (child workflows): acceptance, then the response (stopped
# while the agency waits for the complainant's answer to its question); in stage 2 the investigation's findings.
TASK_DEADLINES: Mapping[State, DeadlineRule] = {
    State.ASSIGNMENT: DeadlineRule.AGENCY_ACCEPTANCE,
    State.STAGE1: DeadlineRule.STAGE1_RESPONSE,
    State.STAGE2_INVESTIGATION: DeadlineRule.STAGE2_FINDINGS,
}

# Who takes an action, as a refusal names them (English, Thai); the system's own events are nobody's buttons.
ROLE_LABELS: Mapping[Role, tuple[str, str]] = {
    Role.CITIZEN: ("the complainant", "ผู้ร้อง"),
    Role.OFFICER: ("the centre's officers", "เจ้าหน้าที่ศูนย์"),
    Role.SUPERVISOR: ("the centre's supervisors", "หัวหน้าศูนย์"),
    Role.AGENCY: ("the agency handling the case", "หน่วยงานที่รับผิดชอบเรื่อง"),
    Role.AUDITOR: ("auditors", "ผู้ตรวจสอบ"),
}

STATE_LABELS: Mapping[State, tuple[str, str]] = {
    State.RECEIVED: ("Received", "รับเรื่องแล้ว"),
    State.SCREENING: ("Being screened", "กำลังตรวจสอบเรื่อง"),
    State.AWAITING_INFO: ("Waiting for more information from the complainant", "รอข้อมูลเพิ่มเติมจากผู้ร้อง"),
    State.ASSIGNMENT: ("Sent to the responsible agency", "ส่งเรื่องให้หน่วยงานที่รับผิดชอบ"),
    State.STAGE1: ("Agency is handling it", "หน่วยงานกำลังดำเนินการ"),
    State.RESPONDED: ("Agency has responded", "หน่วยงานตอบกลับแล้ว"),
    State.CLOSED: ("Closed", "ยุติเรื่อง"),
    State.STAGE2: ("Review requested (stage 2)", "ขอให้ทบทวนเรื่อง (ขั้นที่ 2)"),
    State.STAGE2_INVESTIGATION: ("Under investigation (stage 2)", "อยู่ระหว่างการตรวจสอบ (ขั้นที่ 2)"),
    State.CLOSED_STAGE2: ("Closed after review", "ยุติเรื่องหลังการทบทวน"),
    State.REFERRED: ("Taken to the Office of the Ombudsman", "ผู้ร้องยื่นเรื่องต่อผู้ตรวจการแผ่นดิน"),
    State.WITHDRAWN: ("Withdrawn by the complainant", "ผู้ร้องถอนเรื่อง"),
}
# The states in which the receiving centre, not an agency, has the case (before one is assigned): a message of
# such a step names the centre, whatever agencies the case has by the time it is sent or read.
WITH_THE_CENTRE: frozenset[State] = frozenset({State.RECEIVED, State.SCREENING, State.AWAITING_INFO})

# What happens next, as the complainant reads it under the status (English, Thai): what "Agency has
# responded" means for them, who acts now, and what they may do.
NEXT_STEPS: Mapping[State, tuple[str, str]] = {
    State.RECEIVED: (
        "The centre checks your complaint and sends it to the agency responsible.",
        "ศูนย์จะตรวจสอบเรื่องของท่านและส่งต่อให้หน่วยงานที่รับผิดชอบ",
    ),
    State.SCREENING: (
        "The centre is checking your complaint, to send it to the agency responsible.",
        "ศูนย์กำลังตรวจสอบเรื่องของท่าน เพื่อส่งต่อให้หน่วยงานที่รับผิดชอบ",
    ),
    State.AWAITING_INFO: (
        "We need more information from you: please answer below. The time limits wait for your answer.",
        "เราต้องการข้อมูลเพิ่มเติมจากท่าน โปรดตอบด้านล่าง ระหว่างนี้ระยะเวลาดำเนินการหยุดนับไว้จนกว่าจะได้รับคำตอบ",
    ),
    State.ASSIGNMENT: (
        "The agency responsible is to take your case on; you will hear when it does.",
        "หน่วยงานที่รับผิดชอบจะรับเรื่องของท่าน และท่านจะได้รับแจ้งเมื่อหน่วยงานรับเรื่องแล้ว",
    ),
    State.STAGE1: (
        "The agency is dealing with your case and answers by the expected date.",
        "หน่วยงานกำลังดำเนินการ และจะแจ้งผลภายในวันที่คาดว่าจะแล้วเสร็จ",
    ),
    State.RESPONDED: (
        "The agency has answered. The centre checks the answer and closes the case; then you can rate the "
        "service, or ask for a review if you are not satisfied.",
        "หน่วยงานแจ้งผลแล้ว ศูนย์จะตรวจคำตอบและยุติเรื่อง จากนั้นท่านประเมินความพึงพอใจ หรือขอให้ทบทวนหากไม่พอใจผลได้",
    ),
    State.CLOSED: (
        "Your case is closed. If you are not satisfied with the outcome, you can ask for a review (stage 2).",
        "เรื่องของท่านยุติแล้ว หากไม่พอใจผลการดำเนินการ ท่านขอให้ทบทวน (ขั้นที่ 2) ได้",
    ),
    State.STAGE2: (
        "Your request for a review is in; the centre acknowledges it and investigates.",
        "ศูนย์ได้รับคำขอให้ทบทวนของท่านแล้ว และจะรับเรื่องเพื่อตรวจสอบ",
    ),
    State.STAGE2_INVESTIGATION: (
        "Your case is being investigated again; you get the final answer by the expected date.",
        "เรื่องของท่านอยู่ระหว่างการตรวจสอบอีกครั้ง และจะได้รับคำตอบสุดท้ายภายในวันที่คาดว่าจะแล้วเสร็จ",
    ),
    State.CLOSED_STAGE2: (
        "The review is finished. If you are still not satisfied, you can take your complaint to the Office of "
        "the Ombudsman.",
        "การทบทวนเสร็จสิ้นแล้ว หากท่านยังไม่พอใจ ท่านร้องเรียนต่อสำนักงานผู้ตรวจการแผ่นดินได้",
    ),
    State.REFERRED: (
        "Your complaint is with the Office of the Ombudsman.",
        "เรื่องของท่านอยู่ที่สำนักงานผู้ตรวจการแผ่นดิน",
    ),
    State.WITHDRAWN: ("You withdrew this complaint.", "ท่านได้ถอนเรื่องนี้แล้ว"),
}
# How people read the codes that reach a page (English, Thai): an outcome, an agency task's status.
OUTCOME_LABELS: Mapping[str, tuple[str, str]] = {
    Outcome.RESOLVED: ("Resolved", "แก้ไขแล้ว"),
    Outcome.UPHELD: ("Upheld", "เรื่องร้องเรียนมีมูล"),
    Outcome.PARTIALLY_UPHELD: ("Partially upheld", "มีมูลบางส่วน"),
    Outcome.NOT_UPHELD: ("Not upheld", "ไม่มีมูล"),
    Outcome.NOT_WITHIN_AUTHORITY: ("Not within authority", "ไม่อยู่ในอำนาจหน้าที่"),
}
TASK_STATUS_LABELS: Mapping[str, tuple[str, str]] = {
    TaskStatus.ASSIGNED: ("Sent, not accepted yet", "ส่งแล้ว รอหน่วยงานรับเรื่อง"),
    TaskStatus.ACCEPTED: ("Accepted, in hand", "รับเรื่องแล้ว กำลังดำเนินการ"),
    TaskStatus.RESPONDED: ("Responded", "ตอบกลับแล้ว"),
    TaskStatus.REJECTED: ("Returned as not theirs", "ส่งคืน ไม่ใช่หน้าที่"),
    TaskStatus.CANCELLED: ("Withdrawn from the agency", "ยกเลิกการส่งต่อ"),
}


@dataclass(frozen=True)
class FieldSpec:
    """One input an action needs; the API builds its request model from these."""

    name: str
    kind: str  # "text" | "code" | "choice" | "agencies" | "agency" | "int" | "case"
    required: bool = True
    max_length: int = 2000
    choices: tuple[str, ...] = ()
    minimum: int = 0
    maximum: int = 0
    help: str = ""

    def describe(self) -> dict[str, Any]:
        """The field as the API shows it next to an allowed action."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "required": self.required}
        if self.kind in {"text", "code"}:
            out["max_length"] = self.max_length
        if self.kind == "int":
            out["minimum"], out["maximum"] = self.minimum, self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        if self.help:
            out["help"] = self.help
        return out


@dataclass(frozen=True)
class Transition:
    """An edge of the process: ``event`` fired by one of ``roles`` moves ``source`` to ``target``.

    ``task_from``/``task_to``: the event is fired by an assigned agency on its own task, which must be in
    ``task_from`` and moves to ``task_to``. If ``task_to`` is set, the case's state then follows from all its
    tasks (``phase_of``): ``target`` is where it goes once every active task has caught up, and it stays in
    ``source`` until then. ``guard`` names a check in ``GUARDS`` that needs more than the state.
    """

    event: str
    source: State
    target: State
    roles: frozenset[Role]
    label: tuple[str, str]
    fields: tuple[FieldSpec, ...] = ()
    notify: frozenset[Audience] = frozenset({Audience.COMPLAINANT})
    public: bool = True
    task_from: TaskStatus | None = None
    task_to: TaskStatus | None = None
    guard: str | None = None

    @property
    def per_agency(self) -> bool:
        return self.task_from is not None


NOTE = FieldSpec("note", "text", required=False, help="Free text kept on the timeline")
REASON = FieldSpec("reason", "text", max_length=1000)
_STAFF = frozenset({Role.OFFICER, Role.SUPERVISOR})
# Screening decisions the auto-screen policy may also take, as the system (never over the API).
_STAFF_OR_SYSTEM = _STAFF | {Role.SYSTEM}
_SUPERVISOR = frozenset({Role.SUPERVISOR})
_AGENCY = frozenset({Role.AGENCY})
_SYSTEM = frozenset({Role.SYSTEM})
_CITIZEN_OR_STAFF = frozenset({Role.CITIZEN, Role.OFFICER, Role.SUPERVISOR})
_ALL = frozenset(Audience) - {Audience.AGENCY_HEAD}
_COMPLAINANT = frozenset({Audience.COMPLAINANT})
_PSC = frozenset({Audience.SUPERVISOR})
_AGENCIES = frozenset({Audience.AGENCY})
_AGENCIES_AND_PSC = frozenset({Audience.AGENCY, Audience.SUPERVISOR})
AGENCIES_FIELD = FieldSpec("agencies", "agencies", help="Codes of the agencies that must act (one task each)")
OUTCOME = FieldSpec("outcome", "choice", choices=tuple(Outcome))
RESPONSE_FIELDS = (
    OUTCOME,
    FieldSpec("response", "text", max_length=5000, help="What was found and done, as the complainant will read it"),
    FieldSpec("root_cause", "text", required=False),
    FieldSpec("action_taken", "text", required=False),
)
RATING_FIELDS = (
    FieldSpec("rating", "int", minimum=1, maximum=5, help="1 (very unhappy) to 5 (very happy)"),
    FieldSpec("comment", "text", required=False, max_length=1000),
)


# Kind, priority, receiving centre and SLA class: set at screening or changed later with a reason.
CLASS_FIELDS = (
    FieldSpec("kind", "choice", required=False, choices=tuple(Kind), help="complaint, suggestion, request, tipoff"),
    FieldSpec("priority", "choice", required=False, choices=tuple(Priority), help="urgent: shorter allowances"),
    FieldSpec("centre", "code", required=False, max_length=32, help="Receiving centre (config/centres.yaml)"),
    FieldSpec("sla_class", "code", required=False, max_length=32, help="SLA class (config/sla.yaml); needs a reason"),
)
CLASSIFIED = tuple(f.name for f in CLASS_FIELDS)


def _reclassify(state: State) -> Transition:
    return Transition(
        "reclassify",
        state,
        state,
        _STAFF,
        ("Kind, priority or centre changed", "เปลี่ยนประเภท ความเร่งด่วน หรือศูนย์รับเรื่อง"),
        fields=(*CLASS_FIELDS, REASON),
        notify=_PSC,
        public=False,
        guard="reclassify_changes",
    )


def _each(states: Iterable[State], make: Callable[[State], Transition]) -> list[Transition]:
    return [make(state) for state in states]


def _withdraw(state: State) -> Transition:
    agencies_involved = state in {State.ASSIGNMENT, State.STAGE1, State.RESPONDED, State.STAGE2_INVESTIGATION}
    return Transition(
        "withdraw",
        state,
        State.WITHDRAWN,
        _CITIZEN_OR_STAFF,
        ("Withdrawn", "ถอนเรื่อง"),
        fields=(FieldSpec("reason", "text", required=False, max_length=1000),),
        notify=_ALL if agencies_involved else _COMPLAINANT | _PSC,
    )


def _rate(state: State) -> Transition:
    return Transition(
        "rate",
        state,
        state,
        frozenset({Role.CITIZEN}),
        ("Complainant rated the service", "ผู้ร้องประเมินความพึงพอใจ"),
        fields=RATING_FIELDS,
        notify=_PSC,
        guard="rating_allowed",
    )


def _sla_events(state: State) -> list[Transition]:
    """Reminder, breach and escalation: timers of the workflow, recorded on the timeline as system events."""
    to = _AGENCIES if state in {State.ASSIGNMENT, State.STAGE1} else _PSC
    return [
        Transition(
            "sla_reminder", state, state, _SYSTEM, ("Deadline reminder", "แจ้งเตือนใกล้ครบกำหนด"), notify=to, public=False
        ),
        Transition(
            "sla_breach", state, state, _SYSTEM, ("Deadline passed", "เกินกำหนดเวลา"), notify=to | _PSC, public=False
        ),
        Transition(
            "sla_escalation",
            state,
            state,
            _SYSTEM,
            ("Escalated", "ยกระดับเรื่อง"),
            notify=to | _PSC | {Audience.AGENCY_HEAD},
            public=False,
        ),
        Transition(
            "escalate",
            state,
            state,
            _SUPERVISOR,
            ("Escalated by a supervisor", "ผู้บังคับบัญชายกระดับเรื่อง"),
            fields=(REASON,),
            notify=to | _PSC | {Audience.AGENCY_HEAD},
            public=False,
            guard="escalation_allowed",
        ),
    ]


TRANSITIONS: tuple[Transition, ...] = (
    # Screening by PSC officers.
    Transition(
        "screen",
        State.RECEIVED,
        State.SCREENING,
        _STAFF_OR_SYSTEM,
        ("Screening started", "เริ่มตรวจสอบเรื่อง"),
        fields=(
            NOTE,
            *CLASS_FIELDS,
            FieldSpec("reason", "text", required=False, max_length=1000, help="Why this SLA class (needed with one)"),
        ),
        guard="class_with_reason",
    ),
    Transition(
        "accept",
        State.SCREENING,
        State.ASSIGNMENT,
        _STAFF_OR_SYSTEM,
        ("Accepted and sent to the agency", "รับเรื่องและส่งต่อหน่วยงาน"),
        fields=(
            FieldSpec("category", "code", max_length=100, help="Complaint category code"),
            AGENCIES_FIELD,
            FieldSpec("summary", "text", required=False, help="Officer's summary for the agency"),
            FieldSpec(
                "reason",
                "text",
                required=False,
                max_length=1000,
                help="Why a complaint about an event older than the time limit is taken on (special circumstances)",
            ),
        ),
        notify=_ALL,
        guard="in_time_or_reason",
    ),
    Transition(
        "need_info",
        State.SCREENING,
        State.AWAITING_INFO,
        _STAFF,
        ("More information needed from you", "ขอข้อมูลเพิ่มเติมจากผู้ร้อง"),
        fields=(FieldSpec("question", "text", max_length=2000, help="What the complainant must tell us"),),
        guard="info_request_allowed",
    ),
    Transition(
        "out_of_scope",
        State.SCREENING,
        State.CLOSED,
        _STAFF,
        ("Closed: not for this centre", "ยุติเรื่อง: ไม่อยู่ในขอบเขตของศูนย์"),
        fields=(FieldSpec("advice", "text", max_length=2000, help="Where the complainant should go instead"),),
    ),
    Transition(
        "duplicate",
        State.SCREENING,
        State.CLOSED,
        _STAFF,
        ("Closed: already being handled in another case", "ยุติเรื่อง: ซ้ำกับเรื่องที่กำลังดำเนินการ"),
        fields=(FieldSpec("original_case_id", "case", max_length=32, help="The case that carries on"),),
    ),
    Transition(
        "escalate_stage2",
        State.SCREENING,
        State.STAGE2,
        _STAFF,
        ("Sent straight to investigation (stage 2)", "ส่งตรวจสอบเชิงลึก (ขั้นที่ 2) ทันที"),
        fields=(REASON,),
        notify=_COMPLAINANT | _PSC,
    ),
    # Waiting for the complainant: the SLA clock is paused.
    Transition(
        "reply",
        State.AWAITING_INFO,
        State.SCREENING,
        _CITIZEN_OR_STAFF,
        ("Information received", "ได้รับข้อมูลเพิ่มเติมแล้ว"),
        fields=(FieldSpec("answer", "text", max_length=5000),),
        notify=_COMPLAINANT | _PSC,
    ),
    Transition(
        "info_reminder",
        State.AWAITING_INFO,
        State.AWAITING_INFO,
        _SYSTEM,
        ("Reminder: we still need your information", "แจ้งเตือน: ยังรอข้อมูลเพิ่มเติมจากท่าน"),
    ),
    Transition(
        "lapse",
        State.AWAITING_INFO,
        State.CLOSED,
        _SYSTEM,
        ("Closed: the information we asked for did not come", "ยุติเรื่อง: ไม่ได้รับข้อมูลเพิ่มเติมตามกำหนด"),
        notify=_COMPLAINANT | _PSC,
    ),
    # Agencies, one task each.
    Transition(
        "agency_accept",
        State.ASSIGNMENT,
        State.STAGE1,
        _AGENCY,
        ("Agency accepted the case", "หน่วยงานรับเรื่องแล้ว"),
        fields=(NOTE,),
        notify=_ALL,
        task_from=TaskStatus.ASSIGNED,
        task_to=TaskStatus.ACCEPTED,
    ),
    Transition(
        "agency_reject",
        State.ASSIGNMENT,
        State.ASSIGNMENT,
        _AGENCY,
        ("Agency says it is not within its authority", "หน่วยงานแจ้งว่าไม่อยู่ในอำนาจหน้าที่"),
        fields=(REASON,),
        notify=_PSC,
        task_from=TaskStatus.ASSIGNED,
        task_to=TaskStatus.REJECTED,
    ),
    Transition(
        "assign",
        State.ASSIGNMENT,
        State.ASSIGNMENT,
        _STAFF,
        ("Sent to another agency", "ส่งต่อหน่วยงานอื่น"),
        fields=(AGENCIES_FIELD, NOTE),
        notify=_ALL,
        guard="reroute_allowed",
    ),
    Transition(
        "reassign",
        State.STAGE1,
        State.ASSIGNMENT,
        _SUPERVISOR,
        ("Reassigned to another agency", "มอบหมายหน่วยงานใหม่"),
        fields=(AGENCIES_FIELD, REASON),
        notify=_ALL,
    ),
    Transition(
        "proceed",
        State.ASSIGNMENT,
        State.STAGE1,
        _SUPERVISOR,
        ("Supervisor decided to go on with the agencies that accepted", "ผู้บังคับบัญชาให้ดำเนินการต่อกับหน่วยงานที่รับเรื่อง"),
        fields=(REASON,),
        notify=_ALL,
        guard="some_task_at_least_accepted",
    ),
    Transition(
        "progress",
        State.STAGE1,
        State.STAGE1,
        _AGENCY,
        ("Progress update from the agency", "หน่วยงานแจ้งความคืบหน้า"),
        fields=(FieldSpec("note", "text", max_length=2000),),
        task_from=TaskStatus.ACCEPTED,
        guard="progress_allowed",
    ),
    Transition(
        "request_extension",
        State.STAGE1,
        State.STAGE1,
        _AGENCY,
        ("Agency asked for more time", "หน่วยงานขอขยายเวลา"),
        fields=(REASON, FieldSpec("working_days", "int", minimum=1, maximum=10, help="Extra working days")),
        notify=_PSC,
        public=False,
        task_from=TaskStatus.ACCEPTED,
        guard="extension_possible",
    ),
    Transition(
        "approve_extension",
        State.STAGE1,
        State.STAGE1,
        _SUPERVISOR,
        ("Extension approved", "อนุมัติขยายเวลา"),
        fields=(FieldSpec("agency", "agency", help="Whose request"), NOTE),
        notify=_ALL,
        guard="extension_pending",
    ),
    Transition(
        "refuse_extension",
        State.STAGE1,
        State.STAGE1,
        _SUPERVISOR,
        ("Extension refused", "ไม่อนุมัติขยายเวลา"),
        fields=(FieldSpec("agency", "agency", help="Whose request"), REASON),
        notify=_AGENCIES_AND_PSC,
        public=False,
        guard="extension_pending",
    ),
    # An agency asks the complainant a question: its task's clock stops until the answer (or the lapse).
    Transition(
        "agency_ask_info",
        State.STAGE1,
        State.STAGE1,
        _AGENCY,
        ("The agency asked you a question", "หน่วยงานขอข้อมูลเพิ่มเติมจากผู้ร้อง"),
        fields=(FieldSpec("question", "text", max_length=2000, help="What the complainant must tell the agency"),),
        notify=_COMPLAINANT | _PSC,
        task_from=TaskStatus.ACCEPTED,
        guard="agency_question_allowed",
    ),
    Transition(
        "answer_agency",
        State.STAGE1,
        State.STAGE1,
        _CITIZEN_OR_STAFF,
        ("Answer to the agency's question received", "ได้รับคำตอบต่อคำถามของหน่วยงานแล้ว"),
        fields=(
            FieldSpec("answer", "text", max_length=5000),
            FieldSpec("agency", "agency", required=False, help="Whose question (the oldest waiting one if not said)"),
        ),
        notify=_COMPLAINANT | _AGENCIES,
        guard="agency_question_pending",
    ),
    Transition(
        "agency_info_reminder",
        State.STAGE1,
        State.STAGE1,
        _SYSTEM,
        ("Reminder: the agency still waits for your answer", "แจ้งเตือน: หน่วยงานยังรอคำตอบจากท่าน"),
    ),
    Transition(
        "agency_info_lapse",
        State.STAGE1,
        State.STAGE1,
        _SYSTEM,
        ("No answer came: the agency goes on without it", "ไม่ได้รับคำตอบตามกำหนด: หน่วยงานดำเนินการต่อโดยไม่มีข้อมูลนั้น"),
        notify=_COMPLAINANT | _AGENCIES,
    ),
    Transition(
        "respond",
        State.STAGE1,
        State.RESPONDED,
        _AGENCY,
        ("Agency responded", "หน่วยงานแจ้งผลการดำเนินการ"),
        fields=RESPONSE_FIELDS,
        notify=_ALL,
        task_from=TaskStatus.ACCEPTED,
        task_to=TaskStatus.RESPONDED,
    ),
    Transition(
        "proceed",
        State.STAGE1,
        State.RESPONDED,
        _SUPERVISOR,
        ("Supervisor closed the agencies' work with the answers given", "ผู้บังคับบัญชาสรุปผลจากคำตอบที่ได้รับ"),
        fields=(REASON,),
        notify=_ALL,
        guard="some_task_responded",
    ),
    Transition(
        "close",
        State.RESPONDED,
        State.CLOSED,
        _STAFF,
        ("Case closed", "ยุติเรื่อง"),
        fields=(FieldSpec("outcome", "choice", required=False, choices=tuple(Outcome)), NOTE),
        notify=_ALL,
    ),
    # After stage 1: rating, a request for stage 2, a supervisor's decisions.
    _rate(State.CLOSED),
    Transition(
        "request_review",
        State.CLOSED,
        State.STAGE2,
        _CITIZEN_OR_STAFF,
        ("Complainant asked for a review (stage 2)", "ผู้ร้องขอให้ทบทวน (ขั้นที่ 2)"),
        fields=(REASON, FieldSpec("outcome_wanted", "text", required=False, max_length=1000)),
        notify=_COMPLAINANT | _PSC,
        guard="review_in_time",
    ),
    Transition(
        "allow_late_review",
        State.CLOSED,
        State.CLOSED,
        _SUPERVISOR,
        ("Supervisor allowed a late review request", "ผู้บังคับบัญชาอนุญาตให้ขอทบทวนหลังพ้นกำหนด"),
        fields=(REASON,),
        public=False,
        guard="late_review_not_yet_allowed",
    ),
    Transition(
        "reopen",
        State.CLOSED,
        State.SCREENING,
        _SUPERVISOR,
        ("Case reopened", "เปิดเรื่องใหม่"),
        fields=(REASON,),
        notify=_COMPLAINANT | _PSC,
        guard="reopen_allowed",
    ),
    # Stage 2: PSC acknowledges and answers; the agencies that answered stage 1 (or those a supervisor names)
    # investigate, each on a task with its own deadline inside PSC's.
    Transition(
        "acknowledge",
        State.STAGE2,
        State.STAGE2_INVESTIGATION,
        _STAFF,
        ("Review acknowledged: investigation started", "รับเรื่องทบทวนและเริ่มการตรวจสอบ"),
        fields=(
            FieldSpec("points", "text", max_length=3000, help="The points that will be investigated"),
            FieldSpec("outcome_wanted", "text", max_length=1000, help="What the complainant wants"),
            FieldSpec(
                "agencies",
                "agencies",
                required=False,
                help="Agencies that investigate (a supervisor's choice; default: those that answered stage 1)",
            ),
        ),
        notify=_COMPLAINANT | _AGENCIES,
        guard="investigators_named_by_supervisor",
    ),
    Transition(
        "report_findings",
        State.STAGE2_INVESTIGATION,
        State.STAGE2_INVESTIGATION,
        _AGENCY,
        ("The agency reported its investigation's findings", "หน่วยงานรายงานผลการตรวจสอบ"),
        fields=(
            FieldSpec("findings", "text", max_length=5000, help="What the investigation found and what was done"),
            FieldSpec("root_cause", "text", required=False),
            FieldSpec("action_taken", "text", required=False),
        ),
        notify=_PSC,
        task_from=TaskStatus.ACCEPTED,
        task_to=TaskStatus.RESPONDED,
    ),
    Transition(
        "extend_stage2",
        State.STAGE2_INVESTIGATION,
        State.STAGE2_INVESTIGATION,
        _SUPERVISOR,
        ("Investigation needs more time: new date", "ขยายเวลาการตรวจสอบ: กำหนดวันใหม่"),
        fields=(REASON, FieldSpec("working_days", "int", minimum=1, maximum=40, help="Extra working days")),
    ),
    Transition(
        "respond_stage2",
        State.STAGE2_INVESTIGATION,
        State.CLOSED_STAGE2,
        _STAFF,
        ("Final response after investigation", "แจ้งผลการตรวจสอบขั้นสุดท้าย"),
        fields=RESPONSE_FIELDS,
        notify=_ALL,
        guard="findings_in",
    ),
    _rate(State.CLOSED_STAGE2),
    Transition(
        "refer",
        State.CLOSED_STAGE2,
        State.REFERRED,
        _CITIZEN_OR_STAFF,
        ("Complainant went to the Office of the Ombudsman", "ผู้ร้องยื่นเรื่องต่อผู้ตรวจการแผ่นดิน"),
        fields=(FieldSpec("ombudsman_reference", "text", required=False, max_length=100), NOTE),
        notify=_COMPLAINANT | _PSC,
    ),
    *_each(sorted(OPEN_STATES, key=list(State).index), _withdraw),
    *_each(sorted(OPEN_STATES, key=list(State).index), _reclassify),
    *_each(
        sorted(OPEN_STATES, key=list(State).index),
        lambda state: Transition(
            "deadlines_moved",
            state,
            state,
            _SYSTEM,
            ("Dates recalculated (public holidays changed)", "คำนวณกำหนดวันใหม่ (วันหยุดราชการเปลี่ยน)"),
        ),
    ),
    *(t for state in STATE_DEADLINES if state is not State.AWAITING_INFO for t in _sla_events(state)),
)

EVENTS: frozenset[str] = frozenset(t.event for t in TRANSITIONS)

# What a button says (English, Thai): the action in the voice of the person taking it ("Rate the service"),
# where a transition's ``label`` says what happened, for the timeline and the messages ("Complainant rated the
# service"). Every action a person can take has one (tests/unit/test_process.py).
ACTION_LABELS: Mapping[str, tuple[str, str]] = {
    "screen": ("Start screening", "เริ่มตรวจสอบเรื่อง"),
    "accept": ("Accept and send to the agency", "รับเรื่องและส่งต่อหน่วยงาน"),
    "need_info": ("Ask the complainant for more information", "ขอข้อมูลเพิ่มเติมจากผู้ร้อง"),
    "out_of_scope": ("Close: not for this centre", "ยุติเรื่อง: ไม่อยู่ในขอบเขตของศูนย์"),
    "duplicate": ("Close: a duplicate of a case in hand", "ยุติเรื่อง: ซ้ำกับเรื่องที่กำลังดำเนินการ"),
    "escalate_stage2": ("Send straight to investigation (stage 2)", "ส่งตรวจสอบเชิงลึก (ขั้นที่ 2) ทันที"),
    "reply": ("Send the information", "ส่งข้อมูลเพิ่มเติม"),
    "agency_accept": ("Accept the case", "รับเรื่อง"),
    "agency_reject": ("Return it: not within our authority", "แจ้งว่าไม่อยู่ในอำนาจหน้าที่"),
    "assign": ("Send to another agency", "ส่งต่อหน่วยงานอื่น"),
    "reassign": ("Reassign to another agency", "มอบหมายหน่วยงานใหม่"),
    "proceed": ("Go on with the agencies that accepted", "ดำเนินการต่อกับหน่วยงานที่รับเรื่อง"),
    "progress": ("Report progress", "แจ้งความคืบหน้า"),
    "request_extension": ("Ask for more time", "ขอขยายเวลา"),
    "approve_extension": ("Approve the extension", "อนุมัติขยายเวลา"),
    "refuse_extension": ("Refuse the extension", "ไม่อนุมัติขยายเวลา"),
    "agency_ask_info": ("Ask the complainant a question", "ขอข้อมูลเพิ่มเติมจากผู้ร้อง"),
    "answer_agency": ("Answer the agency's question", "ตอบคำถามของหน่วยงาน"),
    "respond": ("Send the response", "แจ้งผลการดำเนินการ"),
    "close": ("Close the case", "ยุติเรื่อง"),
    "rate": ("Rate the service", "ประเมินความพึงพอใจ"),
    "request_review": ("Ask for a review (stage 2)", "ขอให้ทบทวน (ขั้นที่ 2)"),
    "allow_late_review": ("Allow a late review request", "อนุญาตให้ขอทบทวนหลังพ้นกำหนด"),
    "reopen": ("Reopen the case", "เปิดเรื่องใหม่"),
    "acknowledge": ("Acknowledge the review and start the investigation", "รับเรื่องทบทวนและเริ่มการตรวจสอบ"),
    "report_findings": ("Report the findings", "รายงานผลการตรวจสอบ"),
    "extend_stage2": ("Give the investigation a new date", "ขยายเวลาการตรวจสอบ"),
    "respond_stage2": ("Send the final response", "แจ้งผลการตรวจสอบขั้นสุดท้าย"),
    "refer": ("Record that it went to the Ombudsman", "แจ้งว่าได้ยื่นเรื่องต่อผู้ตรวจการแผ่นดินแล้ว"),
    "withdraw": ("Withdraw the complaint", "ถอนเรื่อง"),
    "reclassify": ("Change kind, priority or centre", "เปลี่ยนประเภท ความเร่งด่วน หรือศูนย์รับเรื่อง"),
    "escalate": ("Escalate", "ยกระดับเรื่อง"),
}


def action_words(event: str) -> tuple[str, str]:
    """What an action's button says (English, Thai); its code for an event no button has."""
    return ACTION_LABELS.get(event, (event, event))


SYSTEM_EVENTS: frozenset[str] = frozenset(t.event for t in TRANSITIONS if t.roles == _SYSTEM)
_BY_EDGE: Mapping[tuple[State, str], Transition] = {(t.source, t.event): t for t in TRANSITIONS}
FILED_LABEL = ("Complaint received", "ได้รับเรื่องร้องทุกข์")
# What each event says happened (English, Thai): the filing and every transition's label.
EVENT_LABELS: Mapping[str, tuple[str, str]] = {"filed": FILED_LABEL} | {t.event: t.label for t in TRANSITIONS}


@dataclass(frozen=True)
class Actor:
    """Who performs an action: user id, role and, for agency staff, their agency code."""

    id: str
    role: Role
    agency: str | None = None


@dataclass(frozen=True)
class TaskView:
    """What the table needs to know of one agency task."""

    agency: str
    status: TaskStatus
    extension_pending: bool = False
    extended_by: int = 0  # working days already granted
    notes: int = 0  # progress notes posted on this task
    stage: int = 1  # 2: an investigation task of agency-led stage 2
    question_pending: bool = False  # the agency asked the complainant and waits for the answer
    questions: int = 0  # questions this task has asked the complainant
    breached: bool = False  # the task's deadline has passed


@dataclass(frozen=True)
class Context:
    """Facts about the case beyond its state that guards need; the workflow builds it from its state."""

    tasks: tuple[TaskView, ...] = ()
    now: datetime | None = None
    rejections: int = 0
    max_rejections: int = 2
    extension_allowance: int = 5  # extra working days a stage 1 task may be granted in all
    review_deadline: datetime | None = None
    late_review_allowed: bool = False
    # Repeatable actions taken so far, and their limits (config/sla.yaml): a case's history stays bounded.
    ratings: int = 0  # ratings in the current stage
    max_rating_changes: int = 3
    max_progress_notes: int = 50
    info_requests: int = 0
    max_info_requests: int = 5
    max_agency_questions: int = 3  # per agency task
    reopens: int = 0
    max_reopens: int = 3
    manual_escalations: int = 0
    max_manual_escalations: int = 10
    # The event complained of is older than the time limit for complaining (SPSO: 6 months).
    out_of_time: bool = False
    # Kind, priority, centre and SLA class as they stand; the policy's class names (empty: not checked here).
    classification: Mapping[str, str | None] = field(default_factory=dict)
    sla_classes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """The outcome of asking the table whether ``event`` may happen now."""

    allowed: bool
    reason: str = ""
    reason_th: str = ""  # the same reason in Thai, for the people who read it
    # Why not, for callers that answer differently: unknown_event, not_allowed_in_state, role_not_allowed,
    # missing_fields, no_task, task_done, and the guards' codes.
    code: str = ""
    transition: Transition | None = None
    target: State | None = None
    missing_fields: tuple[str, ...] = field(default=())


def transition_for(state: State, event: str) -> Transition | None:
    """The edge leaving ``state`` on ``event``, if the process has one."""
    return _BY_EDGE.get((state, event))


def events_from(state: State) -> list[Transition]:
    """Every edge leaving ``state``, in table order."""
    return [t for t in TRANSITIONS if t.source == state]


# The states whose place follows the agencies' tasks (``phase_of``); per-agency rows elsewhere stay put.
AGENCY_PHASES = frozenset({State.ASSIGNMENT, State.STAGE1})


def phase_of(tasks: Sequence[TaskView]) -> State:
    """The agency phase a case is in, given its tasks: all accepted -> stage1, all answered -> responded."""
    active = [t for t in tasks if t.status in ACTIVE_TASK]
    if not active or any(t.status is TaskStatus.ASSIGNED for t in active):
        return State.ASSIGNMENT
    if any(t.status is TaskStatus.ACCEPTED for t in active):
        return State.STAGE1
    return State.RESPONDED


def _refusal(code: str, reason: str, reason_th: str) -> Decision:
    return Decision(allowed=False, reason=reason, reason_th=reason_th, code=code)


Guard = Callable[[Actor, Mapping[str, Any], Context], Decision | None]


def _reroute_allowed(actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    if ctx.rejections >= ctx.max_rejections and actor.role is not Role.SUPERVISOR:
        return _refusal(
            "needs_supervisor",
            f"agencies have refused this case {ctx.rejections} times: a supervisor must decide where it goes",
            f"หน่วยงานปฏิเสธเรื่องนี้มาแล้ว {ctx.rejections} ครั้ง หัวหน้าศูนย์ต้องเป็นผู้ตัดสินว่าจะส่งไปที่ใด",
        )
    return None


def _some_task(status: TaskStatus) -> Guard:
    def guard(_actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
        if not any(t.status is status for t in ctx.tasks):
            return _refusal(
                "no_task_ready",
                f"no agency task is {status.value} yet",
                f"ยังไม่มีงานของหน่วยงานใดอยู่ในสถานะ “{TASK_STATUS_LABELS[status][1]}”",
            )
        return None

    return guard


def _own_task(actor: Actor, ctx: Context) -> TaskView | None:
    # The agency's latest task: after a reopening it may have an answered one from before.
    return next((t for t in reversed(ctx.tasks) if t.agency == actor.agency and t.status in ACTIVE_TASK), None)


def _extension_possible(actor: Actor, payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    task = _own_task(actor, ctx)
    if task is None:
        return None
    if task.question_pending:
        return _refusal(
            "question_pending",
            "the task's clock is stopped while the complainant is asked: ask for time once they answer",
            "งานนี้หยุดนับเวลาระหว่างรอคำตอบจากผู้ร้อง ขอขยายเวลาได้เมื่อผู้ร้องตอบแล้ว",
        )
    if task.extension_pending:
        return _refusal(
            "extension_pending",
            "an extension request of this agency is already waiting for a decision",
            "หน่วยงานนี้มีคำขอขยายเวลาที่รอการพิจารณาอยู่แล้ว",
        )
    wanted = payload.get("working_days")
    room = ctx.extension_allowance - task.extended_by
    if isinstance(wanted, int) and wanted > room:
        return _refusal(
            "extension_too_long",
            f"at most {room} more working days can be granted for this task",
            f"ขยายเวลางานนี้ได้อีกไม่เกิน {room} วันทำการ",
        )
    return None


def _extension_pending(_actor: Actor, payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    agency = payload.get("agency")
    if agency is None:
        return None  # the missing field is reported by the field check
    if not any(t.agency == agency and t.extension_pending for t in ctx.tasks):
        return _refusal(
            "no_extension_pending",
            f"agency {agency} has no extension request waiting",
            f"หน่วยงาน {agency} ไม่มีคำขอขยายเวลาที่รอการพิจารณา",
        )
    return None


def _review_in_time(actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    if ctx.review_deadline is None:
        return _refusal(
            "no_stage1_response",
            "a review can be asked for once the agency has responded (stage 1)",
            "ขอให้ทบทวนเรื่องได้เมื่อหน่วยงานตอบกลับแล้ว (ขั้นที่ 1)",
        )
    if ctx.now is not None and ctx.now > ctx.review_deadline and not ctx.late_review_allowed:
        return _refusal(
            "review_time_limit",
            "the time limit for asking for a review has passed "
            f"({ctx.review_deadline.date().isoformat()}); a supervisor may still allow it",
            f"พ้นกำหนดเวลาขอให้ทบทวนเรื่องแล้ว ({ctx.review_deadline.date().isoformat()}) หัวหน้าศูนย์ยังอนุญาตเป็นกรณีพิเศษได้",
        )
    return None


def _limit(count: Callable[[Actor, Context], int], limit: Callable[[Context], int], what: str, what_th: str) -> Guard:
    """A guard that refuses a repeatable action once it has been taken ``limit`` times."""

    def guard(actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
        if count(actor, ctx) >= limit(ctx):
            return _refusal(
                "limit_reached",
                f"{what} at most {limit(ctx)} times on this case",
                f"{what_th}ได้ไม่เกิน {limit(ctx)} ครั้งต่อเรื่อง",
            )
        return None

    return guard


def _notes(actor: Actor, ctx: Context) -> int:
    task = _own_task(actor, ctx)
    return task.notes if task else 0


def _late_review_not_yet_allowed(_actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    if ctx.late_review_allowed:
        return _refusal(
            "already_allowed",
            "a late review request is already allowed for this case",
            "เรื่องนี้ได้รับอนุญาตให้ขอทบทวนหลังพ้นกำหนดเวลาแล้ว",
        )
    return None


def _in_time_or_reason(_actor: Actor, payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    if ctx.out_of_time and not payload.get("reason"):
        return _refusal(
            "out_of_time",
            "the event complained of is older than the time limit for complaining: accept it only with a reason "
            "(special circumstances), or close it with advice (out_of_scope)",
            "เหตุที่ร้องเรียนเกิดขึ้นนานเกินกำหนดเวลาการร้องเรียน รับเรื่องได้เมื่อระบุเหตุผล (กรณีพิเศษ) "
            "หรือยุติเรื่องพร้อมคำแนะนำ (out_of_scope)",
        )
    return None


def _known_class(payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    wanted = payload.get("sla_class")
    if wanted and ctx.sla_classes and wanted not in ctx.sla_classes:
        classes = ", ".join(sorted(ctx.sla_classes))
        return _refusal(
            "unknown_sla_class",
            f"no SLA class {wanted!r}; classes: {classes}",
            f"ไม่มีประเภทระยะเวลา (SLA) {wanted!r} ประเภทที่มี: {classes}",
        )
    return None


def _class_with_reason(_actor: Actor, payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    if payload.get("sla_class") and not payload.get("reason"):
        return _refusal(
            "reason_needed", "choosing an SLA class needs a reason", "การเลือกประเภทระยะเวลา (SLA) ต้องระบุเหตุผล"
        )
    return _known_class(payload, ctx)


def _reclassify_changes(_actor: Actor, payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    given = {name: payload[name] for name in CLASSIFIED if payload.get(name) not in (None, "")}
    if not given:
        names = ", ".join(CLASSIFIED)
        return _refusal(
            "nothing_to_change",
            f"name at least one of {names} to change",
            f"ระบุอย่างน้อยหนึ่งรายการที่จะเปลี่ยน: {names}",
        )
    if ctx.classification and all(ctx.classification.get(k) == v for k, v in given.items()):
        return _refusal("nothing_changes", "the case already has these values", "เรื่องนี้มีค่าเหล่านี้อยู่แล้ว")
    return _known_class(payload, ctx)


def _agency_question_allowed(actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    task = _own_task(actor, ctx)
    if task is None:
        return None  # the task check reports it
    if task.question_pending:
        return _refusal(
            "question_pending",
            "this agency's question to the complainant is still waiting for an answer",
            "คำถามของหน่วยงานนี้ถึงผู้ร้องยังรอคำตอบอยู่",
        )
    if task.questions >= ctx.max_agency_questions:
        return _refusal(
            "limit_reached",
            f"an agency can ask the complainant at most {ctx.max_agency_questions} times on its task",
            f"หน่วยงานถามผู้ร้องได้ไม่เกิน {ctx.max_agency_questions} ครั้งต่องาน",
        )
    return None


def _agency_question_pending(_actor: Actor, payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    agency = payload.get("agency")
    waiting = [t for t in ctx.tasks if t.question_pending and t.status in OPEN_TASK]
    if agency is not None and not any(t.agency == agency for t in waiting):
        return _refusal(
            "no_question_pending",
            f"agency {agency} has no question waiting for an answer",
            f"หน่วยงาน {agency} ไม่มีคำถามที่รอคำตอบ",
        )
    if not waiting:
        return _refusal(
            "no_question_pending",
            "no agency is waiting for an answer from the complainant",
            "ไม่มีหน่วยงานใดรอคำตอบจากผู้ร้อง",
        )
    return None


def _investigators_named_by_supervisor(actor: Actor, payload: Mapping[str, Any], _ctx: Context) -> Decision | None:
    if payload.get("agencies") and actor.role is not Role.SUPERVISOR:
        return _refusal(
            "needs_supervisor",
            "only a supervisor names the agencies that investigate in stage 2",
            "เฉพาะหัวหน้าศูนย์เท่านั้นที่ระบุหน่วยงานผู้ตรวจสอบในขั้นที่ 2",
        )
    return None


def _findings_in(actor: Actor, _payload: Mapping[str, Any], ctx: Context) -> Decision | None:
    waiting = [t for t in ctx.tasks if t.stage == 2 and t.status in OPEN_TASK]
    if not waiting:
        return None
    if actor.role is Role.SUPERVISOR and all(t.breached for t in waiting):
        return None  # the agencies are late: a supervisor may answer without their findings
    names = ", ".join(t.agency for t in waiting)
    return _refusal(
        "findings_pending",
        f"the investigating agencies have not reported yet ({names}); once their deadline has passed a supervisor "
        "may answer without them",
        f"หน่วยงานผู้ตรวจสอบยังไม่ได้รายงานผล ({names}) เมื่อพ้นกำหนดแล้ว หัวหน้าศูนย์จึงตอบได้โดยไม่ต้องรอ",
    )


GUARDS: Mapping[str, Guard] = {
    "class_with_reason": _class_with_reason,
    "reclassify_changes": _reclassify_changes,
    "investigators_named_by_supervisor": _investigators_named_by_supervisor,
    "findings_in": _findings_in,
    "agency_question_allowed": _agency_question_allowed,
    "agency_question_pending": _agency_question_pending,
    "in_time_or_reason": _in_time_or_reason,
    "rating_allowed": _limit(
        lambda _a, c: c.ratings,
        lambda c: c.max_rating_changes + 1,
        "the service can be rated (or the rating changed)",
        "ให้คะแนนบริการ (หรือเปลี่ยนคะแนน)",
    ),
    "progress_allowed": _limit(
        _notes, lambda c: c.max_progress_notes, "an agency can post progress notes", "หน่วยงานแจ้งความคืบหน้า"
    ),
    "info_request_allowed": _limit(
        lambda _a, c: c.info_requests,
        lambda c: c.max_info_requests,
        "the complainant can be asked for information",
        "ขอข้อมูลเพิ่มเติมจากผู้ร้อง",
    ),
    "reopen_allowed": _limit(lambda _a, c: c.reopens, lambda c: c.max_reopens, "a case can be reopened", "เปิดเรื่องใหม่"),
    "escalation_allowed": _limit(
        lambda _a, c: c.manual_escalations,
        lambda c: c.max_manual_escalations,
        "a supervisor can escalate",
        "หัวหน้าศูนย์เร่งรัดเรื่อง",
    ),
    "late_review_not_yet_allowed": _late_review_not_yet_allowed,
    "reroute_allowed": _reroute_allowed,
    "some_task_at_least_accepted": _some_task(TaskStatus.ACCEPTED),
    "some_task_responded": _some_task(TaskStatus.RESPONDED),
    "extension_possible": _extension_possible,
    "extension_pending": _extension_pending,
    "review_in_time": _review_in_time,
}


def decide(
    state: State,
    event: str,
    actor: Actor,
    payload: Mapping[str, Any] | None = None,
    ctx: Context | None = None,
) -> Decision:
    """Whether ``actor`` may fire ``event`` in ``state`` with ``payload``, and where the case goes if so."""
    ctx = ctx or Context()
    if event not in EVENTS:
        return _refusal(
            "unknown_event",
            f"'{event}' is not an action of the complaint process",
            f"ไม่มีรายการ '{event}' ในขั้นตอนเรื่องร้องทุกข์",
        )
    transition = transition_for(state, event)
    if transition is None:
        allowed = ", ".join(t.event for t in events_from(state) if t.roles != _SYSTEM) or "none"
        return _refusal(
            "not_allowed_in_state",
            f"'{event}' is not allowed while the case is {state.value}; allowed now: {allowed}",
            f"ทำรายการนี้ไม่ได้ขณะที่เรื่องอยู่ในสถานะ “{STATE_LABELS[state][1]}”",
        )
    if actor.role not in transition.roles:
        roles = ", ".join(sorted(r.value for r in transition.roles))
        return _refusal(
            "role_not_allowed",
            f"'{event}' needs one of the roles {roles}, not {actor.role.value}.",
            "ท่านไม่มีสิทธิ์ทำรายการนี้กับเรื่องนี้",
        )
    payload = payload or {}
    missing = tuple(f.name for f in transition.fields if f.required and payload.get(f.name) in (None, "", []))
    if missing:
        return Decision(
            False,
            f"'{event}' needs: {', '.join(missing)}",
            f"ต้องระบุ: {', '.join(missing)}",
            "missing_fields",
            transition,
            missing_fields=missing,
        )
    if transition.task_from is not None:
        own = _own_task(actor, ctx)
        if own is None:
            return _refusal(
                "no_task",
                f"agency {actor.agency or '(none)'} has no task on this case",
                f"หน่วยงาน {actor.agency or '(ไม่ระบุ)'} ไม่มีงานในเรื่องนี้",
            )
        if own.status is not transition.task_from:
            return _refusal(
                "task_done",
                f"the task of agency {actor.agency} is {own.status.value}: '{event}' is not possible now",
                f"งานของหน่วยงาน {actor.agency} อยู่ในสถานะ “{TASK_STATUS_LABELS[own.status][1]}” จึงทำรายการนี้ไม่ได้แล้ว",
            )
    if transition.guard is not None:
        refused = GUARDS[transition.guard](actor, payload, ctx)
        if refused is not None:
            return replace(refused, transition=transition)
    target = transition.target
    if transition.task_to is not None and transition.source in AGENCY_PHASES:
        own = _own_task(actor, ctx)
        after = [replace(t, status=transition.task_to) if t is own else t for t in ctx.tasks]
        target = phase_of(after)
    return Decision(True, transition=transition, target=target)


def allowed_events(state: State, actor: Actor, ctx: Context | None = None) -> list[Transition]:
    """The edges ``actor`` could fire now (payload aside): what the UI offers as buttons."""
    out = []
    for t in events_from(state):
        sample = {f.name: _sample(f, ctx) for f in t.fields}
        if decide(state, t.event, actor, sample, ctx).allowed:
            out.append(t)
    return out


def _sample(spec: FieldSpec, ctx: Context | None) -> Any:
    if spec.kind == "int":
        return spec.minimum
    if spec.kind == "agency" and ctx is not None:
        pending = [t.agency for t in ctx.tasks if t.extension_pending]
        return pending[0] if pending else None
    if spec.kind == "agencies" and not spec.required:
        return None  # naming them is a choice (a supervisor's); the action is open without it
    return "x"


def as_table(transitions: Iterable[Transition] = TRANSITIONS) -> list[dict[str, Any]]:
    """The table as plain JSON-able rows (for ``rongtuk process export --format json``)."""
    return [
        {
            "event": t.event,
            "source": t.source.value,
            "target": t.target.value,
            "roles": sorted(r.value for r in t.roles),
            "label_en": t.label[0],
            "label_th": t.label[1],
            "fields": [f.describe() for f in t.fields],
            "notify": sorted(a.value for a in t.notify),
            "per_agency": t.per_agency,
            "guard": t.guard,
            "public": t.public,
        }
        for t in transitions
    ]
