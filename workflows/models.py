"""Serialisable types that cross the workflow boundary: inputs, state, events, activity requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflows.process import Actor, Audience, State, TaskStatus


@dataclass
class CaseInput:
    """What intake hands to a new ``ComplaintWorkflow``. ``complaint`` holds personal data: the payload
    codec encrypts it in Temporal's history, and it never goes into search attributes or logs."""

    case_id: str
    tracking_code: str
    complaint: dict[str, Any]
    filed_by: Actor


@dataclass
class AgencyTask:
    agency: str
    status: TaskStatus = TaskStatus.ASSIGNED
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    responded_at: datetime | None = None
    outcome: str | None = None


@dataclass
class CaseState:
    """Everything the workflow knows of its case, in one object so continue-as-new stays trivial."""

    case_id: str
    tracking_code: str
    status: State
    received_at: datetime
    channel: str
    seq: int = 0
    category: str | None = None
    tasks: list[AgencyTask] = field(default_factory=list)
    expected_by: datetime | None = None
    handler: str | None = None
    outcome: str | None = None
    closed_at: datetime | None = None


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
    """A read-model write: the event plus the case's new snapshot; ``complaint`` only on intake."""

    event: CaseEvent
    case: CaseState
    complaint: dict[str, Any] | None = None


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
class DueRequest:
    """When is ``rule`` of the SLA policy (e.g. ``answer``, ``stage1_response``) due, counted from ``start``."""

    start: datetime
    rule: str
