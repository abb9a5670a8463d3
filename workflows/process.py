"""The complaint process as data: states, events, who may fire them, what they need, where they lead.

This module is the single source of truth for allowed actions. ``ComplaintWorkflow`` executes it, the API
reads it for ``allowed_actions`` and its 409s, the console draws its buttons from it and the exporters render
it as BPMN and Mermaid. It is pure: no Temporal, no SQL, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    RECEIVED = "received"
    SCREENING = "screening"
    ASSIGNMENT = "assignment"
    STAGE1 = "stage1"
    RESPONDED = "responded"
    CLOSED = "closed"
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


INITIAL_STATE = State.RECEIVED
TERMINAL_STATES = frozenset({State.CLOSED, State.WITHDRAWN})
OPEN_STATES = frozenset(State) - TERMINAL_STATES

# The SLA rule (see sla/policy.py) whose deadline runs while a case waits in each state; the workflow arms
# these timers and the BPMN export draws them as timer boundary events.
STATE_DEADLINES: Mapping[State, str] = {
    State.SCREENING: "screening",
    State.ASSIGNMENT: "agency_acceptance",
    State.STAGE1: "stage1_response",
}

STATE_LABELS: Mapping[State, tuple[str, str]] = {
    State.RECEIVED: ("Received", "รับเรื่องแล้ว"),
    State.SCREENING: ("Being screened", "กำลังตรวจสอบเรื่อง"),
    State.ASSIGNMENT: ("Sent to the responsible agency", "ส่งเรื่องให้หน่วยงานที่รับผิดชอบ"),
    State.STAGE1: ("Agency is handling it", "หน่วยงานกำลังดำเนินการ"),
    State.RESPONDED: ("Agency has responded", "หน่วยงานตอบกลับแล้ว"),
    State.CLOSED: ("Closed", "ยุติเรื่อง"),
    State.WITHDRAWN: ("Withdrawn by the complainant", "ผู้ร้องถอนเรื่อง"),
}


@dataclass(frozen=True)
class FieldSpec:
    """One input an action needs; the API builds its request model from these."""

    name: str
    kind: str  # "text" | "code" | "choice" | "agencies"
    required: bool = True
    max_length: int = 2000
    choices: tuple[str, ...] = ()
    help: str = ""

    def describe(self) -> dict[str, Any]:
        """The field as the API shows it next to an allowed action."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "required": self.required}
        if self.kind in {"text", "code"}:
            out["max_length"] = self.max_length
        if self.choices:
            out["choices"] = list(self.choices)
        if self.help:
            out["help"] = self.help
        return out


@dataclass(frozen=True)
class Transition:
    """An edge of the process: ``event`` fired by one of ``roles`` moves ``source`` to ``target``.

    ``per_agency`` edges are fired by each assigned agency for its own task; the case follows ``target`` once
    every task has reached ``task_status`` and stays in ``source`` until then.
    """

    event: str
    source: State
    target: State
    roles: frozenset[Role]
    label: tuple[str, str]
    fields: tuple[FieldSpec, ...] = ()
    notify: frozenset[Audience] = frozenset({Audience.COMPLAINANT})
    public: bool = True
    per_agency: bool = False
    task_status: TaskStatus | None = None


NOTE = FieldSpec("note", "text", required=False, help="Free text kept on the timeline")
_STAFF = frozenset({Role.OFFICER, Role.SUPERVISOR})
_ALL = frozenset(Audience)


def _withdrawals() -> list[Transition]:
    return [
        Transition(
            "withdraw",
            state,
            State.WITHDRAWN,
            frozenset({Role.CITIZEN, Role.OFFICER, Role.SUPERVISOR}),
            ("Withdrawn", "ถอนเรื่อง"),
            fields=(FieldSpec("reason", "text", required=False, max_length=1000),),
            notify=_ALL if state in {State.ASSIGNMENT, State.STAGE1} else frozenset({Audience.COMPLAINANT}),
        )
        for state in (State.RECEIVED, State.SCREENING, State.ASSIGNMENT, State.STAGE1, State.RESPONDED)
    ]


TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "screen",
        State.RECEIVED,
        State.SCREENING,
        _STAFF,
        ("Screening started", "เริ่มตรวจสอบเรื่อง"),
        fields=(NOTE,),
    ),
    Transition(
        "accept",
        State.SCREENING,
        State.ASSIGNMENT,
        _STAFF,
        ("Accepted and sent to the agency", "รับเรื่องและส่งต่อหน่วยงาน"),
        fields=(
            FieldSpec("category", "code", max_length=100, help="Complaint category code"),
            FieldSpec("agencies", "agencies", help="Codes of the agencies that must act (one task each)"),
            FieldSpec("summary", "text", required=False, help="Officer's summary for the agency"),
        ),
        notify=_ALL,
    ),
    Transition(
        "agency_accept",
        State.ASSIGNMENT,
        State.STAGE1,
        frozenset({Role.AGENCY}),
        ("Agency accepted the case", "หน่วยงานรับเรื่องแล้ว"),
        fields=(NOTE,),
        notify=_ALL,
        per_agency=True,
        task_status=TaskStatus.ACCEPTED,
    ),
    Transition(
        "respond",
        State.STAGE1,
        State.RESPONDED,
        frozenset({Role.AGENCY}),
        ("Agency responded", "หน่วยงานแจ้งผลการดำเนินการ"),
        fields=(
            FieldSpec("outcome", "choice", choices=tuple(Outcome)),
            FieldSpec("response", "text", max_length=5000, help="What was done, as the complainant will read it"),
            FieldSpec("root_cause", "text", required=False),
            FieldSpec("action_taken", "text", required=False),
        ),
        notify=_ALL,
        per_agency=True,
        task_status=TaskStatus.RESPONDED,
    ),
    Transition(
        "close",
        State.RESPONDED,
        State.CLOSED,
        _STAFF,
        ("Case closed", "ยุติเรื่อง"),
        fields=(NOTE,),
        notify=_ALL,
    ),
    *_withdrawals(),
)

EVENTS: frozenset[str] = frozenset(t.event for t in TRANSITIONS)
_BY_EDGE: Mapping[tuple[State, str], Transition] = {(t.source, t.event): t for t in TRANSITIONS}
FILED_LABEL = ("Complaint received", "ได้รับเรื่องร้องทุกข์")


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


@dataclass(frozen=True)
class Decision:
    """The outcome of asking the table whether ``event`` may happen now."""

    allowed: bool
    reason: str = ""
    # Why not, for callers that answer differently: unknown_event, not_allowed_in_state, role_not_allowed,
    # missing_fields, no_task, task_done.
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


def _refusal(code: str, reason: str) -> Decision:
    return Decision(allowed=False, reason=reason, code=code)


def decide(
    state: State,
    event: str,
    actor: Actor,
    payload: Mapping[str, Any] | None = None,
    tasks: Sequence[TaskView] = (),
) -> Decision:
    """Whether ``actor`` may fire ``event`` in ``state`` with ``payload``, and where the case goes if so."""
    if event not in EVENTS:
        return _refusal("unknown_event", f"'{event}' is not an action of the complaint process")
    transition = transition_for(state, event)
    if transition is None:
        allowed = ", ".join(t.event for t in events_from(state)) or "none"
        return _refusal(
            "not_allowed_in_state",
            f"'{event}' is not allowed while the case is {state.value}; allowed now: {allowed}",
        )
    if actor.role not in transition.roles:
        roles = ", ".join(sorted(r.value for r in transition.roles))
        return _refusal("role_not_allowed", f"'{event}' needs one of the roles {roles}, not {actor.role.value}")
    payload = payload or {}
    missing = tuple(f.name for f in transition.fields if f.required and payload.get(f.name) in (None, "", []))
    if missing:
        return Decision(
            False,
            f"'{event}' needs: {', '.join(missing)}",
            "missing_fields",
            transition,
            missing_fields=missing,
        )
    if not transition.per_agency:
        return Decision(True, transition=transition, target=transition.target)
    own = [t for t in tasks if t.agency == actor.agency]
    if not own:
        return _refusal("no_task", f"agency {actor.agency or '(none)'} has no task on this case")
    required_before = _TASK_BEFORE[transition.task_status] if transition.task_status else None
    if own[0].status != required_before:
        return _refusal("task_done", f"agency {actor.agency} has already done '{event}' on this case")
    others_done = all(t.status == transition.task_status for t in tasks if t.agency != actor.agency)
    return Decision(True, transition=transition, target=transition.target if others_done else state)


_TASK_BEFORE: Mapping[TaskStatus, TaskStatus] = {
    TaskStatus.ACCEPTED: TaskStatus.ASSIGNED,
    TaskStatus.RESPONDED: TaskStatus.ACCEPTED,
}


def allowed_events(state: State, actor: Actor, tasks: Sequence[TaskView] = ()) -> list[Transition]:
    """The edges ``actor`` could fire now (payload aside): what the UI offers as buttons."""
    out = []
    for t in events_from(state):
        decision = decide(state, t.event, actor, {f.name: "x" for f in t.fields}, tasks)
        if decision.allowed:
            out.append(t)
    return out


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
        }
        for t in transitions
    ]
