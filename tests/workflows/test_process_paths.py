"""The whole process in the time-skipping environment: every state, the refusals, the SLA clocks.

Expected dates are worked out with the working-day calendar (tested on its own in tests/unit) from the times
the workflow recorded; what is under test here is that the workflow arms, moves, pauses and fires them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from sla.calendar import BANGKOK, WorkingCalendar
from store.db import Database
from tests.workflows.conftest import TEST_POLICY, Rig
from tests.workflows.paths import (
    BMA,
    CITIZEN,
    DOL,
    DOPA,
    OFFICER,
    RESPONSE,
    RTP,
    SUPERVISOR,
    act,
    case_row,
    events_named,
    eventually,
    reach,
    tasks_of,
    timeline,
)
from workflows.complaint import ComplaintWorkflow
from workflows.process import (
    EVENTS,
    OPEN_STATES,
    STATE_DEADLINES,
    State,
    events_from,
)

CALENDAR = WorkingCalendar()
SLA_EVENTS = ("sla_reminder", "sla_breach", "sla_escalation")


async def refused(handle: object, event: str, actor: object, **payload: object) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await act(handle, event, actor, **payload)  # type: ignore[arg-type]
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ActionNotAllowed"
    return str(cause.details[0])


# --- every state ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(State))
async def test_actions_not_in_the_table_are_refused_in_every_state(rig: Rig, db: Database, state: State) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, state)
    before = [(e.seq, e.event) for e in await timeline(db, case_id)]
    allowed_here = {t.event for t in events_from(state)}
    for event in sorted(EVENTS - allowed_here):
        if state in {State.REFERRED, State.WITHDRAWN}:
            break  # the workflow has ended: nothing can reach it (the API answers 409 from the read model)
        assert await refused(handle, event, SUPERVISOR) == "not_allowed_in_state"
    assert [(e.seq, e.event) for e in await timeline(db, case_id)] == before
    if state in {State.REFERRED, State.WITHDRAWN}:
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


@pytest.mark.parametrize("state", sorted(OPEN_STATES, key=list(State).index))
async def test_withdrawal_from_every_open_state_ends_the_case_and_its_tasks(
    rig: Rig, db: Database, state: State
) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, state)
    await act(handle, "withdraw", CITIZEN, reason="แก้ไขได้เองแล้ว")
    result = await handle.result()
    assert result.status is State.WITHDRAWN
    tasks = await tasks_of(db, case_id)
    assert all(t.status in {"cancelled", "responded"} for t in tasks.values())
    for task in (await handle.query(ComplaintWorkflow.state)).tasks:
        child = rig.client.get_workflow_handle(task.workflow_id)
        assert (await child.describe()).status is WorkflowExecutionStatus.COMPLETED, task.agency
    assert (await case_row(db, case_id)).due_at is None


@pytest.mark.parametrize("state", [s for s in STATE_DEADLINES if s is not State.AWAITING_INFO])
async def test_deadline_reminder_breach_and_escalation_in_every_state_with_a_clock(
    rig: Rig, db: Database, state: State
) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, state)
    await act(handle, "escalate", SUPERVISOR, reason="ผู้ร้องโทรมาหลายครั้ง")
    await rig.env.sleep(timedelta(days=40))
    fired = await eventually(lambda: _has_all(db, case_id, SLA_EVENTS))
    # The state's own clock (in stage 2 an investigating agency's task runs its own alongside).
    fired = [e for e in fired if e.data["rule"] == STATE_DEADLINES[state]]
    assert [e.event for e in fired] == list(SLA_EVENTS), "reminder, then breach, then escalation"
    assert all(e.to_state == state.value and e.actor_role == "system" for e in fired)
    row = await case_row(db, case_id)
    assert row.status == state.value and row.escalation_level == 2 and row.breached_at is not None


async def _has_all(db: Database, case_id: str, names: tuple[str, ...]) -> list[object] | None:
    events = await events_named(db, case_id, *names)
    return events if {e.event for e in events} == set(names) else None


# --- SLA (issue 4) --------------------------------------------------------------------------------------------


async def test_agency_reminder_breach_and_escalation_fire_at_their_working_days(rig: Rig, db: Database) -> None:
    case_id, _handle = await reach(rig.client, rig.task_queue, State.STAGE1)
    accepted_at = (await tasks_of(db, case_id))["DOPA"].accepted_at
    assert accepted_at is not None
    due = CALENDAR.add_working_days(accepted_at, TEST_POLICY.stage1_response)
    assert (await case_row(db, case_id)).due_at == due
    await rig.env.sleep(timedelta(days=30))
    events = await eventually(lambda: _has_all(db, case_id, SLA_EVENTS))
    reminder, breach, escalation = events
    assert CALENDAR.add_working_days(accepted_at, 4) <= reminder.at < due
    assert due <= breach.at < CALENDAR.add_working_days(accepted_at, 6)
    assert CALENDAR.add_working_days(accepted_at, 7) <= escalation.at
    assert breach.data["agency"] == "DOPA" and escalation.data["level"] == 2
    async with db.session() as s:
        from sqlalchemy import select

        from store import models

        audiences = {
            (n.seq, n.audience)
            for n in (
                await s.execute(select(models.Notification).where(models.Notification.case_id == case_id))
            ).scalars()
        }
    assert (escalation.seq, "agency_head") in audiences and (breach.seq, "supervisor") in audiences
    assert (reminder.seq, "agency") in audiences and (reminder.seq, "supervisor") not in audiences
    task = (await tasks_of(db, case_id))["DOPA"]
    assert task.breached_at is not None and task.escalation_level == 2


async def test_no_reminder_or_escalation_for_the_agency_once_it_has_answered(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.RESPONDED)
    await rig.env.sleep(timedelta(days=30))
    await act(handle, "close", OFFICER)  # a round trip, so anything that was going to fire has fired
    fired = await events_named(db, case_id, *SLA_EVENTS)
    # Only PSC's own clock for closing the case ran on; the agency's task was over.
    assert fired and all("agency" not in e.data and e.data["rule"] == "closure" for e in fired)
    child = rig.client.get_workflow_handle(f"{handle.id}-task-1")
    assert (await child.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_the_responded_state_has_a_clock_for_psc_to_close_the_case(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.RESPONDED)
    row = await case_row(db, case_id)
    responded = (await events_named(db, case_id, "respond"))[0]
    assert row.due_rule == "closure" and row.due_at == CALENDAR.add_working_days(responded.at, 2)
    await rig.env.sleep(timedelta(days=30))
    reminder, breach, escalation = await eventually(lambda: _has_all(db, case_id, SLA_EVENTS))
    assert reminder.at < row.due_at <= breach.at < escalation.at
    notified = await _audiences(db, case_id, breach.seq)
    assert "supervisor" in notified and "complainant" not in notified
    await act(handle, "close", OFFICER)
    assert (await case_row(db, case_id)).due_at is None


async def _audiences(db: Database, case_id: str, seq: int) -> set[str]:
    from sqlalchemy import select

    from store import models

    async with db.session() as s:
        rows = await s.execute(
            select(models.Notification.audience).where(
                models.Notification.case_id == case_id, models.Notification.seq == seq
            )
        )
        return set(rows.scalars())


async def test_extension_moves_the_deadline_and_the_promised_date(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE1)
    task = (await tasks_of(db, case_id))["DOPA"]
    assert task.accepted_at is not None
    promised = (await case_row(db, case_id)).expected_by
    code = await refused(handle, "request_extension", DOPA, reason="ต้องรองบประมาณ", working_days=6)
    assert code == "extension_too_long"  # 5 + 6 > the 10-day ceiling
    await act(handle, "request_extension", DOPA, reason="ต้องรองบประมาณ", working_days=3)
    assert await refused(handle, "request_extension", DOPA, reason="อีก", working_days=1) == "extension_pending"
    await act(handle, "approve_extension", SUPERVISOR, agency="DOPA")
    row = await case_row(db, case_id)
    assert row.due_at == CALENDAR.add_working_days(task.accepted_at, 8)
    assert promised is not None and row.expected_by is not None and row.expected_by >= row.due_at
    await act(handle, "request_extension", DOPA, reason="อีกนิด", working_days=2)
    await act(handle, "refuse_extension", SUPERVISOR, agency="DOPA", reason="ไม่มีเหตุผลพิเศษ")
    assert (await case_row(db, case_id)).due_at == CALENDAR.add_working_days(task.accepted_at, 8)
    assert await refused(handle, "request_extension", DOPA, reason="ขออีก", working_days=3) == "extension_too_long"
    approved = (await events_named(db, case_id, "approve_extension"))[0]
    async with db.session() as s:
        from sqlalchemy import select

        from store import models

        told = (
            (
                await s.execute(
                    select(models.Notification.audience).where(
                        models.Notification.case_id == case_id, models.Notification.seq == approved.seq
                    )
                )
            )
            .scalars()
            .all()
        )
    assert "complainant" in told


async def test_waiting_for_information_pauses_the_clock_and_resumes_with_the_days_left(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING)
    first_due = (await case_row(db, case_id)).due_at
    assert first_due is not None
    await act(handle, "need_info", OFFICER, question="ซอยอะไร")
    asked = (await events_named(db, case_id, "need_info"))[0].at
    left = CALENDAR.working_days_between(asked, first_due)
    await rig.env.sleep(timedelta(days=4))
    await act(handle, "reply", CITIZEN, answer="ซอยสุขุมวิท 101")
    replied = (await events_named(db, case_id, "reply"))[0].at
    assert await events_named(db, case_id, "sla_breach") == [], "the clock was paused"
    assert (await case_row(db, case_id)).due_at == CALENDAR.add_working_days(replied, max(left, 1))


async def test_awaiting_information_lapses_with_a_notice_first(rig: Rig, db: Database) -> None:
    case_id, _handle = await reach(rig.client, rig.task_queue, State.AWAITING_INFO)
    await rig.env.sleep(timedelta(days=20))
    events = await eventually(lambda: _has_all(db, case_id, ("info_reminder", "lapse")))
    assert [e.event for e in events] == ["info_reminder", "lapse"]
    row = await case_row(db, case_id)
    assert row.status == "closed" and row.closure_reason == "lapsed"


async def announce_holiday_and_recalculate(rig: Rig, handle: object) -> None:
    """The Cabinet makes the next working day a holiday; the worker gets the new calendar; the case is told."""
    now = await rig.env.get_current_time()
    day = now.astimezone(BANGKOK).date() + timedelta(days=1)
    while not CALENDAR.is_working_day(day):
        day += timedelta(days=1)
    rig.sla.calendar = WorkingCalendar(extra_holidays={day: "Cabinet bridge day"})
    await handle.signal(ComplaintWorkflow.recalculate)  # type: ignore[attr-defined]


async def test_recalculation_after_a_new_holiday_moves_running_deadlines(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE1)
    before = (await case_row(db, case_id)).due_at
    assert before is not None
    await announce_holiday_and_recalculate(rig, handle)
    moved = await eventually(lambda: events_named(db, case_id, "deadlines_moved"))
    assert moved[0].actor_role == "system"
    after = (await case_row(db, case_id)).due_at
    accepted_at = (await tasks_of(db, case_id))["DOPA"].accepted_at
    assert accepted_at is not None and after is not None
    assert after > before
    assert after == rig.sla.calendar.add_working_days(accepted_at, TEST_POLICY.stage1_response)


@pytest.mark.parametrize("state", sorted(OPEN_STATES, key=list(State).index))
async def test_recalculation_is_recorded_in_every_open_state(rig: Rig, db: Database, state: State) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, state)
    await announce_holiday_and_recalculate(rig, handle)
    await eventually(lambda: events_named(db, case_id, "deadlines_moved"))


# --- paths of issue 3 -----------------------------------------------------------------------------------------


async def test_several_agencies_one_refuses_one_late_supervisor_decides(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING)
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA", "BMA", "RTP"])
    assert (await act(handle, "agency_accept", DOPA)).status is State.ASSIGNMENT
    assert (await act(handle, "agency_reject", BMA, reason="เป็นถนนของกรมทางหลวง")).status is State.ASSIGNMENT
    assert (await act(handle, "assign", OFFICER, agencies=["DOL"])).status is State.ASSIGNMENT
    await act(handle, "agency_accept", DOL)
    assert (await act(handle, "agency_accept", RTP)).status is State.STAGE1
    await act(handle, "progress", RTP, note="กำลังตรวจสอบพื้นที่")
    await act(handle, "respond", DOPA, **RESPONSE)
    assert (await act(handle, "respond", DOL, **RESPONSE)).status is State.STAGE1  # RTP still working
    await rig.env.sleep(timedelta(days=14))
    late = await eventually(lambda: events_named(db, case_id, "sla_breach"))
    assert [e.data["agency"] for e in late] == ["RTP"]
    assert (await act(handle, "proceed", SUPERVISOR, reason="ได้คำตอบครบถ้วนแล้ว")).status is State.RESPONDED
    tasks = await tasks_of(db, case_id)
    assert {a: t.status for a, t in tasks.items()} == {
        "DOPA": "responded",
        "BMA": "rejected",
        "RTP": "cancelled",
        "DOL": "responded",
    }
    assert (await case_row(db, case_id)).rejections == 1
    for n in range(1, 5):
        child = rig.client.get_workflow_handle(f"{handle.id}-task-{n}")
        assert (await child.describe()).status is WorkflowExecutionStatus.COMPLETED
    await act(handle, "close", OFFICER)


async def test_repeated_refusals_need_a_supervisor_to_reroute(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING)
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA"])
    await act(handle, "agency_reject", DOPA, reason="ไม่ใช่อำนาจ")
    await act(handle, "assign", OFFICER, agencies=["BMA"])
    await act(handle, "agency_reject", BMA, reason="ไม่ใช่อำนาจ")
    assert await refused(handle, "assign", OFFICER, agencies=["RTP"]) == "needs_supervisor"
    await act(handle, "assign", SUPERVISOR, agencies=["RTP"])
    await act(handle, "agency_accept", RTP)
    assert (await act(handle, "reassign", SUPERVISOR, agencies=["DOL"], reason="ผิดหน่วยงาน")).status is (
        State.ASSIGNMENT
    )
    assert await refused(handle, "proceed", SUPERVISOR, reason="ไปต่อ") == "no_task_ready"
    assert (await act(handle, "agency_accept", DOL)).status is State.STAGE1
    tasks = await tasks_of(db, case_id)
    assert {a: t.status for a, t in tasks.items()} == {
        "DOPA": "rejected",
        "BMA": "rejected",
        "RTP": "cancelled",
        "DOL": "accepted",
    }


async def test_screening_outcomes_close_with_advice_or_a_link(rig: Rig, db: Database) -> None:
    original, _ = await reach(rig.client, rig.task_queue, State.STAGE1)
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING)
    await act(handle, "duplicate", OFFICER, original_case_id=original)
    row = await case_row(db, case_id)
    assert row.status == "closed" and row.closure_reason == "duplicate" and row.duplicate_of == original
    other, handle2 = await reach(rig.client, rig.task_queue, State.SCREENING)
    await act(handle2, "out_of_scope", OFFICER, advice="ติดต่อศาลปกครอง")
    assert (await case_row(db, other)).closure_reason == "out_of_scope"
    assert await refused(handle2, "request_review", CITIZEN, reason="ไม่พอใจ") == "no_stage1_response"
    await act(handle2, "reopen", SUPERVISOR, reason="ตรวจสอบใหม่")
    assert (await case_row(db, other)).status == "screening"


async def test_stage2_straight_from_screening_and_the_ombudsman_notice(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING)
    assert (await act(handle, "escalate_stage2", OFFICER, reason="เรื่องร้ายแรง")).status is State.STAGE2
    row = await case_row(db, case_id)
    started = row.stage2_started_at
    assert row.stage == 2 and started is not None
    assert row.due_at == CALENDAR.add_working_days(started, 3)
    assert row.expected_by == CALENDAR.add_working_days(started, 20)
    await act(handle, "acknowledge", OFFICER, points="การบริการ", outcome_wanted="ขอโทษ")
    assert (await case_row(db, case_id)).due_at == CALENDAR.add_working_days(started, 20)
    await act(handle, "extend_stage2", SUPERVISOR, reason="ต้องสอบพยานเพิ่ม", working_days=10)
    assert (await case_row(db, case_id)).due_at == CALENDAR.add_working_days(started, 30)
    await act(handle, "respond_stage2", SUPERVISOR, **RESPONSE)
    final = (await events_named(db, case_id, "respond_stage2"))[0]
    assert final.data["ombudsman_until"] > final.at.date().isoformat()
    await act(handle, "rate", CITIZEN, rating=4, comment="ดีขึ้น")
    await act(handle, "refer", CITIZEN, ombudsman_reference="OMB-1")
    assert (await handle.result()).status is State.REFERRED
    assert (await case_row(db, case_id)).rating == 4


async def test_review_after_the_time_limit_is_refused_unless_a_supervisor_allows_it(rig: Rig, db: Database) -> None:
    _case_id, handle = await reach(rig.client, rig.task_queue, State.CLOSED)
    await act(handle, "rate", CITIZEN, rating=2)
    await rig.env.sleep(timedelta(days=65))
    assert await refused(handle, "request_review", CITIZEN, reason="ยังไม่ได้แก้") == "review_time_limit"
    await act(handle, "allow_late_review", SUPERVISOR, reason="ผู้ร้องป่วย")
    assert (await act(handle, "request_review", CITIZEN, reason="ยังไม่ได้แก้")).status is State.STAGE2


async def test_settled_case_workflow_ends_after_its_windows(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.CLOSED)
    review_deadline = (await case_row(db, case_id)).review_deadline
    assert review_deadline is not None
    result = await handle.result()  # time skips over the review window and the retention period
    assert result.status is State.CLOSED
    ended = (await handle.describe()).close_time
    assert ended is not None and ended >= review_deadline + timedelta(days=TEST_POLICY.retention_days)


async def test_supervisor_goes_on_without_an_agency_that_never_answers(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING)
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA", "BMA"])
    await act(handle, "agency_accept", DOPA)
    await rig.env.sleep(timedelta(days=7))
    silent = await eventually(lambda: events_named(db, case_id, "sla_breach"))
    assert silent[0].data["agency"] == "BMA" and silent[0].data["rule"] == "agency_acceptance"
    assert (await act(handle, "proceed", SUPERVISOR, reason="BMA ไม่ตอบ")).status is State.STAGE1
    tasks = await tasks_of(db, case_id)
    assert (tasks["DOPA"].status, tasks["BMA"].status) == ("accepted", "cancelled")


async def test_reopened_case_can_go_back_to_the_same_agency(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.CLOSED)
    await act(handle, "reopen", SUPERVISOR, reason="ปัญหาเกิดซ้ำ")
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA"])
    state = await handle.query(ComplaintWorkflow.state)
    assert [(t.agency, t.status.value) for t in state.tasks] == [("DOPA", "responded"), ("DOPA", "assigned")]
    assert (await act(handle, "agency_accept", DOPA)).status is State.STAGE1
    assert (await act(handle, "respond", DOPA, **RESPONSE)).status is State.RESPONDED
    assert (await case_row(db, case_id)).due_rule == "closure"  # PSC's clock to close it again


async def test_an_old_event_is_flagged_at_intake_and_accepted_only_with_a_reason(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.SCREENING, occurred_on="2024-01-15")
    filed = (await events_named(db, case_id, "filed"))[0]
    assert filed.data["out_of_time"] is True and filed.data["occurred_on"] == "2024-01-15"
    assert await refused(handle, "accept", OFFICER, category="roads", agencies=["DOPA"]) == "out_of_time"
    summary = await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA"], reason="อยู่ต่างประเทศ")
    assert summary.status is State.ASSIGNMENT
    accepted = (await events_named(db, case_id, "accept"))[0]
    assert accepted.data["reason"] == "อยู่ต่างประเทศ"
