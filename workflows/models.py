"""Serialisable types that cross the workflow boundary: inputs, state, events, activity requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.complaint import Complaint
from sla.rules import AlarmKind, DeadlineRule
from workflows.process import OPEN_TASK, Actor, Audience, State, TaskStatus


@dataclass
class Alarm:
    """A moment a deadline's timer fires: ``reminder`` before it, ``breach`` at it, ``escalation`` after it
    (``level`` counts the ladder's rungs), or ``info_reminder``/``lapse`` while waiting for the complainant."""

    kind: AlarmKind
    at: datetime
    level: int = 0
    audiences: list[Audience] = field(default_factory=list)
    fired: bool = False


@dataclass
class Deadline:
    """``working_days`` of ``rule`` counted from ``start``: due at ``due_at``, with its alarms."""

    rule: DeadlineRule
    start: datetime
    working_days: int
    due_at: datetime
    alarms: list[Alarm] = field(default_factory=list)

    def next_alarm(self) -> Alarm | None:
        pending = [a for a in self.alarms if not a.fired]
        return min(pending, key=lambda a: a.at) if pending else None


@dataclass
class ScheduleRequest:
    """Compute ``rule``'s deadline from ``start`` (``working_days`` overrides the policy's allowance)."""

    start: datetime
    rule: DeadlineRule
    working_days: int | None = None


# The steps whose allowances add up to the date a complainant is promised at intake.
ANSWER_RULES = (DeadlineRule.SCREENING, DeadlineRule.AGENCY_ACCEPTANCE, DeadlineRule.STAGE1_RESPONSE)


@dataclass
class PolicySnapshot:
    """The policy figures the workflow needs beyond deadlines, fetched once and on recalculation."""

    max_rejections: int = 2
    stage1_response: int = 5
    extension_allowance: int = 5
    review_request_months: int = 2
    complaint_months: int = 6
    ombudsman_months: int = 12
    retention_days: int = 30
    max_rating_changes: int = 3
    max_progress_notes: int = 50
    max_info_requests: int = 5
    max_agency_questions: int = 3
    max_reopens: int = 3
    max_manual_escalations: int = 10
    history_limit: int = 2000
    # False in snapshots recorded before the `responded` state had a clock: those cases keep running without.
    responded_clock: bool = False
    # SLA classes (config/sla.yaml): each class's allowances by rule name, and how a case's class is chosen.
    # Empty in snapshots recorded before classes existed: those cases keep the per-rule allowances.
    class_allowances: dict[str, dict[str, int]] = field(default_factory=dict)
    default_class: str = ""
    urgent_class: str = ""
    class_by_kind: dict[str, str] = field(default_factory=dict)
    class_by_category: dict[str, str] = field(default_factory=dict)

    @property
    def classes_apply(self) -> bool:
        """Whether this snapshot knows SLA classes (cases filed before them keep the per-rule allowances)."""
        return bool(self.class_allowances)

    def class_for(self, *, kind: str, priority: str, category: str | None) -> str | None:
        """The default class of a case: urgent for urgent priority, else its category's, else its kind's."""
        if not self.classes_apply:
            return None
        if priority == "urgent" and self.urgent_class:
            return self.urgent_class
        if category and category in self.class_by_category:
            return self.class_by_category[category]
        return self.class_by_kind.get(kind) or self.default_class or None

    def allowance(self, sla_class: str | None, rule: DeadlineRule) -> int | None:
        """Working days of ``rule`` in ``sla_class`` (None: the class does not set it, use the rule's own)."""
        days = self.class_allowances.get(sla_class or "")
        if not days:
            return None
        if rule is DeadlineRule.ANSWER:  # what the complainant is promised at intake
            return sum(days[r.value] for r in ANSWER_RULES)
        return days.get(rule.value)


@dataclass
class AgencyTask:
    agency: str
    status: TaskStatus = TaskStatus.ASSIGNED
    workflow_id: str = ""
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    responded_at: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    deadline: Deadline | None = None
    extension_pending: int = 0  # working days asked for, 0 if no request is waiting
    extended_by: int = 0
    breached_at: datetime | None = None
    escalation_level: int = 0
    notes: int = 0  # progress notes posted
    stage: int = 1  # 2: an investigation task of agency-led stage 2
    questions: int = 0  # questions asked of the complainant
    asked_at: datetime | None = None  # a question waits for the complainant since then: the clock is stopped
    suspended: Deadline | None = None  # the task's own deadline while it is stopped
    paused_days: int = 0  # working days the task's clock has stood still in all


@dataclass
class PausedClock:
    """What was left of the deadlines when the case started waiting for the complainant."""

    rule: DeadlineRule
    remaining: int
    answer_remaining: int


@dataclass
class CaseState:
    """Everything the workflow knows of its case, in one object so continue-as-new stays trivial."""

    case_id: str
    tracking_code: str
    status: State
    received_at: datetime
    channel: str
    occurred_on: str | None = None
    seq: int = 0
    category: str | None = None
    tasks: list[AgencyTask] = field(default_factory=list)
    expected_by: datetime | None = None
    deadline: Deadline | None = None
    stage2_response: Deadline | None = None
    paused: PausedClock | None = None
    handler: str | None = None
    stage: int | None = None
    outcome: str | None = None
    closure_reason: str | None = None
    duplicate_of: str | None = None
    root_cause: str | None = None
    action_taken: str | None = None
    rejections: int = 0
    escalation_level: int = 0
    breached_at: datetime | None = None
    closed_at: datetime | None = None
    stage1_closed_at: datetime | None = None
    stage2_started_at: datetime | None = None
    stage2_closed_at: datetime | None = None
    review_deadline: datetime | None = None
    late_review_allowed: bool = False
    retain_until: datetime | None = None
    rating: int | None = None
    rating_comment: str | None = None
    task_counter: int = 0
    # Repeatable actions taken so far (their limits are the policy's).
    ratings: int = 0  # in the current stage
    out_of_time: bool = False  # the event is older than the time limit for complaining
    info_requests: int = 0
    reopens: int = 0
    manual_escalations: int = 0
    # Kind, priority and receiving centre (domain.complaint), and the SLA class whose allowances the case's
    # deadlines count (None in cases filed before classes); ``class_chosen``: a person chose it with a reason.
    kind: str = "complaint"
    priority: str = "normal"
    centre: str = "PSC-1111"
    sla_class: str | None = None
    class_chosen: bool = False

    def current_deadline(self) -> Deadline | None:
        """The deadline of the step the case is in: its own, or the earliest of its open agency tasks."""
        if self.deadline is not None:
            return self.deadline
        running = [t.deadline for t in self.tasks if t.deadline is not None and t.status in OPEN_TASK]
        return min(running, key=lambda d: d.due_at) if running else None

    def due_at(self) -> datetime | None:
        current = self.current_deadline()
        return current.due_at if current else None


@dataclass
class CaseInput:
    """What starts a ``ComplaintWorkflow`` run. ``complaint`` holds personal data: the payload codec encrypts it
    in Temporal's history, and it never goes into search attributes or logs.

    A run that continues as new passes the whole ``state`` (and the ``policy`` it had) to the next run, which
    carries on from there without filing anything again.
    """

    case_id: str
    tracking_code: str
    complaint: Complaint
    filed_by: Actor
    # Custom search attributes need registering on the server; test servers that cannot are told not to.
    search_attributes: bool = True
    state: CaseState | None = None
    policy: PolicySnapshot | None = None
    # The deployment auto-screens (RONGTUK_AUTO_SCREEN): ask the screening before an officer sees the case.
    auto_screen: bool = False
    # When the API committed the complaint (DB-first intake): the case's clock starts then, not when a relay
    # got the workflow started. None for cases filed before, and for runs that continued as new.
    received_at: datetime | None = None


@dataclass
class ActionRequest:
    """A human action on a case: the ``event`` of the process table, who does it and its inputs."""

    event: str
    actor: Actor
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseSummary:
    """What an update returns to the API: the case as it stands after the action."""

    case_id: str
    tracking_code: str
    status: State
    seq: int
    expected_by: datetime | None
    agencies: list[str]
    due_at: datetime | None = None


@dataclass
class CaseEvent:
    """One transition, as the read model's timeline and the notification outbox record it."""

    case_id: str
    seq: int
    event: str
    from_state: State | None
    to_state: State
    actor: Actor
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    public: bool = True


@dataclass
class ProjectionRequest:
    """A read-model write (workflow version 1; kept so that its histories replay and rebuild)."""

    event: CaseEvent
    case: CaseState
    complaint: Complaint | None = None


@dataclass
class NotificationRequest:
    """Tell ``audiences`` that the case moved; the activity resolves channels and addresses itself."""

    case_id: str
    seq: int
    event: str
    state: State
    audiences: list[Audience]
    agencies: list[str]
    expected_by: datetime | None = None


@dataclass
class TransitionRecord:
    """Everything one transition writes, in one transaction: the case's new snapshot, the timeline row and the
    notification outbox rows for ``audiences`` (``complaint`` only on intake)."""

    event: CaseEvent
    case: CaseState
    audiences: list[Audience]
    agencies: list[str]
    complaint: Complaint | None = None
    # The complainant's preferred channels (the workflow has them from intake; None: read them from the case).
    channels: list[str] | None = None


@dataclass
class AutoScreenRequest:
    """Screen a newly filed complaint with the auto-screen policy."""

    case_id: str
    complaint: Complaint


@dataclass
class AutoScreenDecision:
    """``accept`` (with the category and agencies) or ``queue`` (for an officer), with the confidence and why."""

    action: str
    confidence: float
    category: str | None = None
    agencies: list[str] = field(default_factory=list)
    summary: str | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class DeadlineMove:
    """A date of a case that a recalculation moved: ``what`` is ``case`` (the step's own deadline),
    ``stage2_response``, ``task:<agency>`` or ``expected_by`` (the date promised to the complainant)."""

    case_id: str
    what: str
    rule: str | None
    before: datetime | None
    after: datetime | None


@dataclass
class DaysLeftRequest:
    """How many working days are left from ``now`` until ``due_at``."""

    now: datetime
    due_at: datetime


@dataclass
class TaskInput:
    """What a case hands to the child workflow that keeps one agency task's clock."""

    case_id: str
    agency: str
    parent_workflow_id: str
    deadline: Deadline | None


@dataclass
class TaskAlarm:
    """A child's timer fired: the case records it on the timeline and notifies."""

    agency: str
    workflow_id: str
    alarm: Alarm
    due_at: datetime


def workflow_id_for(case_id: str) -> str:
    """The workflow id of a case: derived from the case number, so any process can address it."""
    return f"complaint-{case_id}"


def task_workflow_id(case_workflow_id: str, number: int) -> str:
    """The workflow id of a case's ``number``-th agency task."""
    return f"{case_workflow_id}-task-{number}"
