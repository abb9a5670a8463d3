"""An agency's question to the complainant in stage 1: its task's clock stands still until the answer (or the
lapse), then its deadline moves by exactly the working days waited.

Expected dates are worked out with the calendar from the times the workflow recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from sla.calendar import WorkingCalendar
from store import models
from store.db import Database
from tests.workflows.conftest import TEST_POLICY, Rig
from tests.workflows.paths import CITIZEN, DOPA, act, case_row, events_named, eventually, reach, tasks_of
from workflows.complaint import ComplaintWorkflow
from workflows.process import State

CALENDAR = WorkingCalendar()


async def _audiences(db: Database, case_id: str, seq: int) -> set[str]:
    async with db.session() as s:
        rows = await s.execute(
            select(models.Notification.audience).where(
                models.Notification.case_id == case_id, models.Notification.seq == seq
            )
        )
        return set(rows.scalars())


async def test_an_agency_question_stops_its_clock_and_the_answer_moves_the_due_date_by_the_days_waited(
    rig: Rig, db: Database
) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE1)
    task = (await tasks_of(db, case_id))["DOPA"]
    assert task.accepted_at is not None and task.due_at is not None
    first_due = task.due_at
    assert first_due == CALENDAR.add_working_days(task.accepted_at, TEST_POLICY.stage1_response)

    await act(handle, "agency_ask_info", DOPA, question="บ้านเลขที่เท่าไร")
    asked = (await events_named(db, case_id, "agency_ask_info"))[0]
    assert asked.public and asked.data["question"] == "บ้านเลขที่เท่าไร"
    assert "complainant" in await _audiences(db, case_id, asked.seq)
    waiting = (await tasks_of(db, case_id))["DOPA"]
    stopped_at = (await handle.query(ComplaintWorkflow.state)).tasks[0].asked_at
    assert stopped_at is not None and stopped_at <= asked.at < stopped_at + timedelta(seconds=5)
    assert waiting.question_asked_at == stopped_at and waiting.questions == 1
    lapse_at = CALENDAR.add_working_days(stopped_at, TEST_POLICY.awaiting_info_lapse)
    assert waiting.due_at == lapse_at and (await case_row(db, case_id)).due_rule == "awaiting_info_lapse"

    # Long enough for the task's own deadline to have passed had its clock been running: past as many working
    # days as the task had (a fixed number of calendar days is not, where holidays fall in it).
    past_due = CALENDAR.add_working_days(stopped_at, TEST_POLICY.stage1_response + 1)
    await rig.env.sleep(past_due - await rig.env.get_current_time())
    await act(handle, "answer_agency", CITIZEN, answer="บ้านเลขที่ 12/3")
    answered = (await events_named(db, case_id, "answer_agency"))[0]
    assert await events_named(db, case_id, "sla_breach", "sla_reminder") == [], "the task's clock stood still"

    waited = CALENDAR.working_days_between(stopped_at, answered.at)
    assert waited >= TEST_POLICY.stage1_response
    moved = (await tasks_of(db, case_id))["DOPA"]
    assert moved.question_asked_at is None and moved.due_at is not None
    assert moved.due_at == CALENDAR.add_working_days(task.accepted_at, TEST_POLICY.stage1_response + waited)
    # Due moments are the midnight that ends the due day: compare the due days themselves.
    second = timedelta(seconds=1)
    assert CALENDAR.working_days_between(first_due - second, moved.due_at - second) == waited, (
        "moved by the days waited"
    )
    assert (
        answered.data["waited_working_days"] == waited
        and datetime.fromisoformat(answered.data["due_at"]) == moved.due_at
    )
    assert "agency" in await _audiences(db, case_id, answered.seq)
    row = await case_row(db, case_id)
    assert row.status == "stage1" and row.due_at == moved.due_at and row.due_rule == "stage1_response"
    assert row.expected_by is not None and row.expected_by >= moved.due_at
    state = await handle.query(ComplaintWorkflow.state)
    assert state.tasks[0].paused_days == waited and state.tasks[0].suspended is None


async def test_an_unanswered_agency_question_is_reminded_then_lapses_and_the_agency_goes_on(
    rig: Rig, db: Database
) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE1)
    accepted_at = (await tasks_of(db, case_id))["DOPA"].accepted_at
    assert accepted_at is not None
    await act(handle, "agency_ask_info", DOPA, question="มีรูปถ่ายเพิ่มเติมไหม")
    asked = (await events_named(db, case_id, "agency_ask_info"))[0]
    await rig.env.sleep(timedelta(days=25))
    reminder, lapse = await eventually(
        lambda: _both(db, case_id, ("agency_info_reminder", "agency_info_lapse")), timeout=30
    )
    warn = TEST_POLICY.awaiting_info_lapse - TEST_POLICY.awaiting_info_warning
    assert reminder.at >= CALENDAR.add_working_days(asked.at, warn) and reminder.public
    assert lapse.at >= CALENDAR.add_working_days(asked.at, TEST_POLICY.awaiting_info_lapse)
    assert lapse.data["agency"] == "DOPA" and lapse.data["waited_working_days"] == TEST_POLICY.awaiting_info_lapse
    assert {"complainant", "agency"} <= await _audiences(db, case_id, lapse.seq)
    task = (await tasks_of(db, case_id))["DOPA"]
    expected = CALENDAR.add_working_days(accepted_at, TEST_POLICY.stage1_response + TEST_POLICY.awaiting_info_lapse)
    assert task.status == "accepted" and task.question_asked_at is None and task.due_at == expected
    assert (await case_row(db, case_id)).status == "stage1", "the case goes on; only the question lapsed"
    # The clock runs again: the agency can still answer the case.
    await act(handle, "respond", DOPA, outcome="resolved", response="ดำเนินการตามข้อมูลที่มี")
    assert (await case_row(db, case_id)).status == "responded"


async def _both(db: Database, case_id: str, names: tuple[str, ...]) -> list[models.CaseEvent] | None:
    events = await events_named(db, case_id, *names)
    return events if [e.event for e in events] == list(names) else None
