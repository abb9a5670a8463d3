"""Agency-led stage 2 (SPSO model): PSC acknowledges and answers, the agencies that answered stage 1 investigate,
each on a task with its own deadline inside PSC's, its own reminder, breach and escalation to the agency head.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from sla.calendar import WorkingCalendar
from store import models
from store.db import Database
from tests.workflows.conftest import TEST_POLICY, Rig
from tests.workflows.paths import (
    DOPA,
    FINDINGS,
    OFFICER,
    RESPONSE,
    SUPERVISOR,
    act,
    case_row,
    events_named,
    eventually,
    reach,
    tasks_of,
)
from tests.workflows.test_process_paths import refused
from workflows.complaint import ComplaintWorkflow
from workflows.process import State

CALENDAR = WorkingCalendar()
ALARMS = ("sla_reminder", "sla_breach", "sla_escalation")


async def _audiences(db: Database, case_id: str, seq: int) -> set[str]:
    async with db.session() as s:
        rows = await s.execute(
            select(models.Notification.audience).where(
                models.Notification.case_id == case_id, models.Notification.seq == seq
            )
        )
        return set(rows.scalars())


async def _task_alarms(db: Database, case_id: str) -> list[models.CaseEvent] | None:
    fired = [e for e in await events_named(db, case_id, *ALARMS) if e.data.get("rule") == "stage2_findings"]
    return fired if {e.event for e in fired} == set(ALARMS) else None


async def test_the_investigating_agency_has_its_own_deadline_reminder_breach_and_escalation(
    rig: Rig, db: Database
) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE2_INVESTIGATION)
    acknowledged = (await events_named(db, case_id, "acknowledge"))[0]
    assert acknowledged.data["investigating"] == ["DOPA"]
    assert "agency" in await _audiences(db, case_id, acknowledged.seq)
    task = (await tasks_of(db, case_id))["DOPA"]
    assert task.stage == 2 and task.status == "accepted" and task.due_at is not None
    state = await handle.query(ComplaintWorkflow.state)
    started = state.tasks[-1].deadline
    assert started is not None and started.rule == "stage2_findings"
    assert task.due_at == CALENDAR.add_working_days(started.start, TEST_POLICY.stage2_findings)
    row = await case_row(db, case_id)
    assert row.due_rule == "stage2_response" and row.due_at is not None and task.due_at <= row.due_at

    await rig.env.sleep(timedelta(days=40))
    reminder, breach, escalation = await eventually(lambda: _task_alarms(db, case_id), timeout=30)
    assert all(e.data["agency"] == "DOPA" for e in (reminder, breach, escalation))
    assert reminder.at < task.due_at <= breach.at < escalation.at
    assert "agency" in await _audiences(db, case_id, reminder.seq)
    assert {"agency", "supervisor"} <= await _audiences(db, case_id, breach.seq)
    assert {"agency", "agency_head"} <= await _audiences(db, case_id, escalation.seq)
    late = (await tasks_of(db, case_id))["DOPA"]
    assert late.breached_at is not None and late.escalation_level == 2

    # PSC's final answer waits for the findings; past the agency's deadline a supervisor may give it anyway.
    assert await refused(handle, "respond_stage2", OFFICER, **RESPONSE) == "findings_pending"
    await act(handle, "respond_stage2", SUPERVISOR, **RESPONSE)
    assert (await case_row(db, case_id)).status == "closed_stage2"
    assert (await tasks_of(db, case_id))["DOPA"].status == "cancelled"
    child = rig.client.get_workflow_handle(state.tasks[-1].workflow_id)
    assert (await eventually(child.describe)).status is WorkflowExecutionStatus.COMPLETED


async def test_psc_gives_its_final_answer_once_the_agency_has_reported(rig: Rig, db: Database) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE2_INVESTIGATION)
    assert await refused(handle, "respond_stage2", SUPERVISOR, **RESPONSE) == "findings_pending"
    await act(handle, "report_findings", DOPA, **FINDINGS)
    reported = (await events_named(db, case_id, "report_findings"))[0]
    assert reported.to_state == "stage2_investigation" and "supervisor" in await _audiences(db, case_id, reported.seq)
    assert (await tasks_of(db, case_id))["DOPA"].status == "responded"
    assert (await case_row(db, case_id)).root_cause == FINDINGS["root_cause"]
    await act(handle, "respond_stage2", OFFICER, **RESPONSE)
    assert (await case_row(db, case_id)).status == "closed_stage2"
    final = (await events_named(db, case_id, "respond_stage2"))[0]
    assert {"complainant", "agency"} <= await _audiences(db, case_id, final.seq)
