"""The read-model projection against the real database: retries and replays never duplicate or regress."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from activities.notifications import NotificationActivities
from activities.projection import ReadModelActivities
from domain.complaint import Complaint
from store import models
from store.db import Database
from workflows.models import AgencyTask, CaseEvent, CaseState, NotificationRequest, ProjectionRequest
from workflows.process import Actor, Audience, Role, State, TaskStatus

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
OFFICER = Actor("o-1", Role.OFFICER)


def request(case_id: str, seq: int, status: State, *, intake: bool = False) -> ProjectionRequest:
    case = CaseState(
        case_id=case_id,
        tracking_code=uuid.uuid4().hex[:10],
        status=status,
        received_at=T0,
        channel="hotline",
        seq=seq,
        tasks=[AgencyTask("DOPA", TaskStatus.ASSIGNED, T0)] if seq > 1 else [],
    )
    event = CaseEvent(
        case_id=case_id,
        seq=seq,
        event="filed" if intake else f"e{seq}",
        from_state=None,
        to_state=status,
        actor=OFFICER,
        at=T0 + timedelta(minutes=seq),
    )
    complaint = Complaint.model_validate(
        {"channel": "hotline", "description": "ทดสอบ", "complainant": {"preferred_channels": ["sms", "line"]}}
    )
    return ProjectionRequest(event=event, case=case, complaint=complaint if intake else None)


async def counts(db: Database, case_id: str) -> tuple[int, int, str | None]:
    async with db.session() as s:
        events = await s.scalar(select(func.count()).where(models.CaseEvent.case_id == case_id))
        tasks = await s.scalar(select(func.count()).where(models.AgencyTask.case_id == case_id))
        status = await s.scalar(select(models.Case.status).where(models.Case.case_id == case_id))
    return int(events or 0), int(tasks or 0), status


async def test_repeated_and_late_writes_change_nothing(db: Database) -> None:
    project = ReadModelActivities(db).project_event
    case_id = f"RT-P-{uuid.uuid4().hex[:8]}"
    intake = request(case_id, 1, State.RECEIVED, intake=True)
    await project(intake)
    await project(intake)
    second = request(case_id, 2, State.SCREENING)
    await project(second)
    await project(second)
    assert await counts(db, case_id) == (2, 1, "screening")
    # An older write retried after a newer one must not move the case back.
    await project(intake)
    await project(replace(request(case_id, 1, State.RECEIVED), complaint=None))
    assert await counts(db, case_id) == (2, 1, "screening")
    async with db.session() as s:
        case = await s.get(models.Case, case_id)
    assert case is not None and case.received_at == T0 and case.last_seq == 2


async def test_notifications_are_recorded_once_per_recipient(db: Database) -> None:
    case_id = f"RT-N-{uuid.uuid4().hex[:8]}"
    await ReadModelActivities(db).project_event(request(case_id, 1, State.RECEIVED, intake=True))
    notify = NotificationActivities(db).notify
    req = NotificationRequest(
        case_id=case_id,
        seq=1,
        event="filed",
        state=State.RECEIVED,
        audiences=[Audience.COMPLAINANT, Audience.AGENCY, Audience.SUPERVISOR, Audience.AGENCY_HEAD],
        agencies=["DOPA", "BMA"],
    )
    assert await notify(req) == 7  # sms + line, two agencies, supervisors, the two agencies' heads
    await notify(req)
    async with db.session() as s:
        rows = (
            await s.execute(
                select(models.Notification.channel, models.Notification.recipient).where(
                    models.Notification.case_id == case_id
                )
            )
        ).all()
    assert sorted(rows) == sorted(
        [
            ("sms", "complainant"),
            ("line", "complainant"),
            ("web", "DOPA"),
            ("web", "BMA"),
            ("web", "supervisors"),
            ("web", "DOPA:head"),
            ("web", "BMA:head"),
        ]
    )
