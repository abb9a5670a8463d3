"""The read-model projection against the real database: retries and replays never duplicate or regress."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from temporalio.exceptions import ApplicationError

from activities.notifications import NotificationActivities
from activities.projection import ReadModelActivities
from domain.complaint import Complaint
from store import models
from store.db import Database
from workflows.models import (
    AgencyTask,
    CaseEvent,
    CaseState,
    NotificationRequest,
    ProjectionRequest,
    TransitionRecord,
)
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


def record(case_id: str, seq: int, status: State, *, intake: bool = False) -> TransitionRecord:
    req = request(case_id, seq, status, intake=intake)
    audiences = [Audience.COMPLAINANT, Audience.AGENCY, Audience.SUPERVISOR]
    return TransitionRecord(req.event, req.case, audiences, ["DOPA"], req.complaint)


async def outbox(db: Database, case_id: str) -> list[tuple[int, str, str]]:
    async with db.session() as s:
        found = await s.execute(
            select(models.Notification.seq, models.Notification.channel, models.Notification.recipient).where(
                models.Notification.case_id == case_id
            )
        )
        return sorted(found.all())


async def test_one_write_records_the_case_its_timeline_and_its_outbox_once(db: Database) -> None:
    write = ReadModelActivities(db).record_transition
    case_id = f"RT-R-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # a retry writes nothing twice
        await write(record(case_id, 1, State.RECEIVED, intake=True))
        await write(record(case_id, 2, State.SCREENING))
    assert await counts(db, case_id) == (2, 1, "screening")
    expected = [("sms", "complainant"), ("line", "complainant"), ("web", "DOPA"), ("web", "supervisors")]
    assert await outbox(db, case_id) == sorted([(seq, *row) for seq in (1, 2) for row in expected])
    async with db.session() as s:
        events = (await s.execute(select(models.CaseEvent).where(models.CaseEvent.case_id == case_id))).scalars()
        chain = sorted(events, key=lambda e: e.seq)
    assert chain[0].prev_hash is None and chain[1].prev_hash == chain[0].hash


async def test_a_refused_intake_leaves_a_bare_stuck_row_that_a_good_write_completes(db: Database) -> None:
    write = ReadModelActivities(db).record_transition
    case_id = f"RT-S-{uuid.uuid4().hex[:8]}"
    good = record(case_id, 1, State.RECEIVED, intake=True)
    bad = replace(good, case=replace(good.case, escalation_level=2**64))
    with pytest.raises(ApplicationError):
        await write(bad)
    async with db.session() as s:
        row = await s.get(models.Case, case_id)
    assert row is not None and row.stuck_at is not None and row.last_seq == 0 and row.description == ""
    await write(good)
    async with db.session() as s:
        row = await s.get(models.Case, case_id)
    assert row is not None and row.stuck_at is None and row.last_seq == 1 and row.description == "ทดสอบ"
    assert row.preferred_channels == ["sms", "line"]


async def test_a_transition_written_by_a_task_that_never_completed_gives_way_to_the_history(db: Database) -> None:
    """The worker or server died after a workflow task wrote seq 2 (a breach) but before Temporal recorded the task;
    the task ran again from the history, where an officer's screen had arrived first and took seq 2."""
    write = ReadModelActivities(db).record_transition
    case_id = f"RT-S-{uuid.uuid4().hex[:8]}"
    await write(record(case_id, 1, State.RECEIVED, intake=True))
    phantom = record(case_id, 2, State.RECEIVED)
    phantom.event.event = "sla_breach"
    await write(phantom)
    async with db.session() as s:
        await s.execute(  # one of the phantom's messages already went out: it stays on record
            update(models.Notification)
            .where(models.Notification.case_id == case_id, models.Notification.seq == 2)
            .where(models.Notification.recipient == "DOPA")
            .values(status="sent")
        )
    real = record(case_id, 2, State.SCREENING)
    real.event.event = "screen"
    await write(real)
    await write(real)  # and a retry of the real one changes nothing more

    async with db.session() as s:
        rows = (
            await s.execute(
                select(models.CaseEvent).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
            )
        ).scalars()
        timeline = [(r.seq, r.event, r.to_state, r.prev_hash, r.hash) for r in rows]
        case = await s.get(models.Case, case_id)
        messages = (
            await s.execute(
                select(models.Notification.recipient, models.Notification.event, models.Notification.status).where(
                    models.Notification.case_id == case_id, models.Notification.seq == 2
                )
            )
        ).all()
    assert [(seq, event, to) for seq, event, to, _, _ in timeline] == [
        (1, "filed", "received"),
        (2, "screen", "screening"),
    ]
    assert timeline[1][3] == timeline[0][4], "the replacing row is chained to its predecessor"
    assert case is not None and case.status == "screening" and case.last_seq == 2
    # The phantom's unsent messages are gone and the real transition's are queued; what was sent stays on record.
    assert ("DOPA", "sla_breach", "sent") in messages
    pending = [(recipient, event) for recipient, event, status in messages if status == "pending"]
    assert pending and all(event == "screen" for _, event in pending), messages
    assert len(messages) == 4, messages  # DOPA (sent), supervisors, and the complainant by SMS and by LINE


async def test_a_new_case_written_whole_has_the_rows_its_transitions_write_one_at_a_time(db: Database) -> None:
    """The rebuild's bulk write (``new_case_rows``, ``write_new_cases``) against ``write_transition``, on corners
    the recorded cases do not reach: a task gone from a later snapshot, a recipient twice in one transition, a
    transition with no complainant channels, a later record that carries the complaint again."""
    from activities.projection import new_case_rows, write_new_cases, write_transition
    from tests.integration.test_rebuild import forget, rows

    cases: list[list[TransitionRecord]] = []
    for _ in range(3):
        case_id = f"RT-W-{uuid.uuid4().hex[:8]}"
        first, second, third = (
            record(case_id, 1, State.RECEIVED, intake=True),
            record(case_id, 2, State.ASSIGNMENT),
            record(case_id, 3, State.STAGE1),
        )
        two = [AgencyTask("DOPA", TaskStatus.ASSIGNED, assigned_at=T0), AgencyTask("BMA", assigned_at=T0)]
        second = replace(
            second,
            case=replace(second.case, tasks=two, category="roads", priority="urgent"),
            audiences=[Audience.COMPLAINANT, Audience.AGENCY, Audience.AGENCY],
            agencies=["DOPA", "BMA", "DOPA"],
        )
        accepted = [AgencyTask("DOPA", TaskStatus.ACCEPTED, assigned_at=T0, accepted_at=T0 + timedelta(hours=1))]
        third = replace(third, case=replace(third.case, tasks=accepted), channels=[], complaint=first.complaint)
        cases.append([first, second, third])
    ids = [records[0].case.case_id for records in cases]

    async with db.session() as s:
        for records in cases:
            for rec in records:
                await write_transition(s, rec, allow_gap=True)
    one_at_a_time = await rows(db, ids)
    await forget(db, ids)
    whole = [new_case_rows(records) for records in cases]
    async with db.session() as s:
        await write_new_cases(s, [c for c in whole if c is not None])
    assert None not in whole
    assert await rows(db, ids) == one_at_a_time
    bma = [t for t in one_at_a_time["agency_tasks"] if t["agency"] == "BMA"]
    assert len(bma) == 3 and all(t["case_status"] == "assignment" and t["case_priority"] == "urgent" for t in bma)
    assert len(one_at_a_time["notifications"]) == 3 * (4 + 4 + 2)  # complainant 2 channels, agencies once each
