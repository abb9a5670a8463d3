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


def record(
    case_id: str, seq: int, status: State, *, intake: bool = False, channels: list[str] | None = None
) -> TransitionRecord:
    """A transition's record. The workflow gives the complainant's ``channels``; records written before it did
    have none (the write reads them from the case), and take the write's general path."""
    req = request(case_id, seq, status, intake=intake)
    audiences = [Audience.COMPLAINANT, Audience.AGENCY, Audience.SUPERVISOR]
    return TransitionRecord(req.event, req.case, audiences, ["DOPA"], req.complaint, channels=channels)


# Records with channels take the write at once on PostgreSQL (``write_transition_at_once``); without, the
# general path's transaction. Each test of ``record_transition`` runs both ways.
CHANNELS = pytest.mark.parametrize("channels", [None, ["sms", "line"]], ids=["channels-read", "channels-given"])


async def outbox(db: Database, case_id: str) -> list[tuple[int, str, str]]:
    async with db.session() as s:
        found = await s.execute(
            select(models.Notification.seq, models.Notification.channel, models.Notification.recipient).where(
                models.Notification.case_id == case_id
            )
        )
        return sorted(found.all())


@CHANNELS
async def test_one_write_records_the_case_its_timeline_and_its_outbox_once(
    db: Database, channels: list[str] | None
) -> None:
    write = ReadModelActivities(db).record_transition
    case_id = f"RT-R-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # a retry writes nothing twice
        await write(record(case_id, 1, State.RECEIVED, intake=True))
        await write(record(case_id, 2, State.SCREENING, channels=channels))
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


@CHANNELS
async def test_a_transition_written_by_a_task_that_never_completed_gives_way_to_the_history(
    db: Database, channels: list[str] | None
) -> None:
    """The worker or server died after a workflow task wrote seq 2 (a breach) but before Temporal recorded the task;
    the task ran again from the history, where an officer's screen had arrived first and took seq 2."""
    write = ReadModelActivities(db).record_transition
    case_id = f"RT-S-{uuid.uuid4().hex[:8]}"
    await write(record(case_id, 1, State.RECEIVED, intake=True))
    phantom = record(case_id, 2, State.RECEIVED, channels=channels)
    phantom.event.event = "sla_breach"
    await write(phantom)
    async with db.session() as s:
        await s.execute(  # one of the phantom's messages already went out: it stays on record
            update(models.Notification)
            .where(models.Notification.case_id == case_id, models.Notification.seq == 2)
            .where(models.Notification.recipient == "DOPA")
            .values(status="sent")
        )
    real = record(case_id, 2, State.SCREENING, channels=channels)
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


async def test_the_write_at_once_leaves_exactly_the_rows_of_the_transaction(db: Database) -> None:
    """``write_transition_at_once`` (PostgreSQL) against ``write_transition``'s transaction, the same records in
    the same order on the same case: a filing, a retry, a task added, a late older write (the case row is past
    it), a transition written by a task that never completed and the one that took its number, a transition
    with no outbox rows. On SQLite it declines every record, and the transaction writes them all."""
    from activities.projection import write_transition, write_transition_at_once
    from tests.integration.test_rebuild import forget, rows

    case_id = f"RT-A-{uuid.uuid4().hex[:8]}"
    sms = ["sms", "line"]
    filed, screened = record(case_id, 1, State.RECEIVED, intake=True), record(case_id, 2, State.SCREENING, channels=sms)
    assigned = record(case_id, 3, State.ASSIGNMENT, channels=sms)
    two = [
        AgencyTask("DOPA", TaskStatus.ACCEPTED, T0, accepted_at=T0 + timedelta(hours=1)),
        AgencyTask("BMA", assigned_at=T0),
    ]
    assigned = replace(assigned, case=replace(assigned.case, tasks=two), agencies=["DOPA", "BMA"])
    phantom = record(case_id, 4, State.ASSIGNMENT, channels=sms)
    phantom = replace(phantom, case=replace(phantom.case, tasks=two))
    phantom.event.event = "sla_breach"
    real = record(case_id, 4, State.STAGE1, channels=sms)
    real = replace(real, case=replace(real.case, tasks=two, escalation_level=1))
    quiet = replace(record(case_id, 5, State.STAGE1, channels=sms), audiences=[], agencies=[])
    quiet = replace(quiet, case=replace(quiet.case, tasks=two))
    # A review sends the case back to DOPA: the case holds its stage-1 task and its stage-2 task, one row.
    again = [*two, AgencyTask("DOPA", TaskStatus.ASSIGNED, T0 + timedelta(days=9), stage=2)]
    review = record(case_id, 6, State.STAGE2_INVESTIGATION, channels=sms)
    review = replace(review, case=replace(review.case, tasks=again, stage=2))
    records = [filed, screened, screened, assigned, screened, phantom, real, real, quiet, review]

    async def transaction(rec: TransitionRecord) -> None:
        async with db.session() as s:
            await write_transition(s, rec)

    for rec in records:
        await transaction(rec)
    expected = await rows(db, [case_id])
    await forget(db, [case_id])
    taken = []
    for rec in records:
        at_once = await write_transition_at_once(db, rec)
        taken.append(at_once)
        if not at_once:
            await transaction(rec)
    assert await rows(db, [case_id]) == expected
    if db.is_sqlite:
        assert taken == [False] * len(records)
    else:  # the filing, the retries, the late write and the superseding one go the general way
        assert taken == [False, True, False, True, False, True, False, False, True, True]
    assert [e["event"] for e in sorted(expected["case_events"], key=lambda e: e["seq"])] == [
        "filed",
        "e2",
        "e3",
        "e4",
        "e5",
        "e6",
    ]
    tasks = {t["agency"]: (t["status"], t["stage"]) for t in expected["agency_tasks"]}
    assert tasks == {"DOPA": ("assigned", 2), "BMA": ("assigned", 1)}


async def test_a_write_at_once_the_database_refuses_is_written_the_general_way(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the one statement were refused for the way it is built, the transaction decides: the case is written,
    not marked stuck, and the refusal is logged."""
    import structlog
    from sqlalchemy.exc import IntegrityError

    from activities import projection

    async def refused(db: Database, rec: TransitionRecord) -> bool:
        raise IntegrityError("WITH moved AS (...)", {}, Exception("cannot affect row a second time"))

    write = ReadModelActivities(db).record_transition
    case_id = f"RT-F-{uuid.uuid4().hex[:8]}"
    await write(record(case_id, 1, State.RECEIVED, intake=True))
    monkeypatch.setattr(projection, "write_transition_at_once", refused)
    # A fresh logger: the module's own may be cached (cache_logger_on_first_use) with processors that write past
    # capture_logs, once another test configured logging again.
    monkeypatch.setattr(projection, "log", structlog.get_logger(projection.__name__))
    with structlog.testing.capture_logs() as logs:
        await write(record(case_id, 2, State.SCREENING, channels=["sms"]))
    assert await counts(db, case_id) == (2, 1, "screening")
    async with db.session() as s:
        row = await s.get(models.Case, case_id)
    assert row is not None and row.stuck_at is None
    assert [e["error"] for e in logs if e["event"] == "write_at_once_refused"] == ["IntegrityError"]
