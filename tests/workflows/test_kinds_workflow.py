"""Kinds, priorities and SLA classes in the running workflow (time-skipping server, real activities).

An urgent case's shorter deadlines fire as such; a class chosen at screening moves the due date; a
reclassification in any open state is on the timeline with its reason and its before/after values.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sla.calendar import BANGKOK, WorkingCalendar
from store.db import Database
from tests.workflows.conftest import Rig
from tests.workflows.paths import (
    DOPA,
    OFFICER,
    SUPERVISOR,
    act,
    case_row,
    events_named,
    eventually,
    file,
    reach,
    tasks_of,
)
from workflows.process import OPEN_STATES, State

CALENDAR = WorkingCalendar()


async def test_an_urgent_case_has_shorter_deadlines_and_they_fire(rig: Rig, db: Database) -> None:
    urgent_id, urgent = await reach(rig.client, rig.task_queue, State.STAGE1, priority="urgent")
    normal_id, _ = await reach(rig.client, rig.task_queue, State.STAGE1)
    u_row, n_row = await case_row(db, urgent_id), await case_row(db, normal_id)
    assert (u_row.priority, u_row.sla_class, n_row.sla_class) == ("urgent", "urgent", "standard")
    assert u_row.expected_by is not None and n_row.expected_by is not None
    assert u_row.expected_by < n_row.expected_by, "the citizen is promised an earlier date"
    accepted_at = (await tasks_of(db, urgent_id))["DOPA"].accepted_at
    assert accepted_at is not None
    due = CALENDAR.add_working_days(accepted_at, 2)  # urgent: stage 1 in 2 working days, not 5
    assert u_row.due_at == due
    await rig.env.sleep(timedelta(days=10))
    (breach,) = await eventually(lambda: events_named(db, urgent_id, "sla_breach"))
    assert due <= breach.at < CALENDAR.add_working_days(accepted_at, 3)
    assert breach.data["rule"] == "stage1_response" and breach.data["agency"] == "DOPA"
    assert urgent is not None


async def test_a_class_chosen_at_screening_moves_the_due_date(rig: Rig, db: Database) -> None:
    plain_id, _ = await file(rig.client, rig.task_queue)
    case_id, handle = await file(rig.client, rig.task_queue)
    await act(handle, "screen", OFFICER, sla_class="complex", reason="ต้องตรวจสอบพื้นที่จริง")
    row, plain = await case_row(db, case_id), await case_row(db, plain_id)
    assert (row.sla_class, plain.sla_class) == ("complex", "standard")
    assert row.expected_by is not None and plain.expected_by is not None and row.expected_by > plain.expected_by
    (screened,) = await events_named(db, case_id, "screen")
    assert screened.data["sla_class"] == "complex" and screened.data["reason"] == "ต้องตรวจสอบพื้นที่จริง"
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA"])
    await act(handle, "agency_accept", DOPA)
    accepted_at = (await tasks_of(db, case_id))["DOPA"].accepted_at
    assert accepted_at is not None
    assert (await case_row(db, case_id)).due_at == CALENDAR.add_working_days(accepted_at, 10)


@pytest.mark.parametrize("state", sorted(OPEN_STATES, key=list(State).index))
async def test_reclassify_in_every_open_state_is_on_the_timeline_with_its_reason(
    rig: Rig, db: Database, state: State
) -> None:
    case_id, handle = await reach(rig.client, rig.task_queue, state)
    await act(handle, "reclassify", SUPERVISOR, kind="tipoff", centre="DAMRONG-50", reason="ผู้แจ้งเป็นพยาน")
    (row,) = await events_named(db, case_id, "reclassify")
    assert (row.from_state, row.to_state, row.actor_role, row.public) == (state.value, state.value, "supervisor", False)
    assert row.data["reason"] == "ผู้แจ้งเป็นพยาน"
    assert row.data["before"] == {"kind": "complaint", "centre": "PSC-1111"}
    assert row.data["after"] == {"kind": "tipoff", "centre": "DAMRONG-50"}
    case = await case_row(db, case_id)
    assert (case.kind, case.centre, case.status) == ("tipoff", "DAMRONG-50", state.value)


# --- rongtuk sla recalculate -----------------------------------------------------------------------------------


async def test_recalculate_dry_run_says_what_would_move_and_the_real_run_moves_it(rig: Rig, db: Database) -> None:
    from cli.recalculate import recalculate_cases, report_lines

    case_id, _handle = await reach(rig.client, rig.task_queue, State.STAGE1, priority="urgent")
    before = await case_row(db, case_id)
    assert before.due_at is not None
    # The Cabinet makes the task's last working day a holiday (a bridge day): its deadline must move a day on.
    last_day = (before.due_at.astimezone(BANGKOK) - timedelta(seconds=1)).date()
    rig.sla.calendar = WorkingCalendar(extra_holidays={last_day: "วันหยุดพิเศษ (ครม.)"})
    ids = [case_id]

    preview = await recalculate_cases(rig.client, rig.sla, dry_run=True, case_ids=ids)
    assert preview.checked == 1 and preview.cases_moved == 1 and not preview.failed
    task_move = next(m for m in preview.moves if m.what == "task:DOPA")
    assert task_move.rule == "stage1_response" and task_move.before == before.due_at
    assert task_move.after is not None and task_move.after > before.due_at
    assert not await events_named(db, case_id, "deadlines_moved"), "a dry run changes nothing"
    assert "would move" in report_lines(preview, dry_run=True)[-1]

    done = await recalculate_cases(rig.client, rig.sla, case_ids=ids)
    assert [(m.what, m.before, m.after) for m in done.moves] == [(m.what, m.before, m.after) for m in preview.moves]
    await eventually(lambda: events_named(db, case_id, "deadlines_moved"))
    assert (await case_row(db, case_id)).due_at == task_move.after
    again = await recalculate_cases(rig.client, rig.sla, case_ids=ids)
    assert again.checked == 1 and again.moves == [], "nothing moves twice"
