"""A complaint committed by the API first: the workflow the relay starts accepts the pre-inserted row (one
case row, the hash chain from nothing, the receipt's dates kept), and a lost read model rebuilds it the same.

Real dev server and worker, the session's real database. With ``RONGTUK_RECORD_HISTORIES`` set, the case's
history is kept as a golden history of the ``db-first-intake`` patch (``tests/workflows/test_replay.py``).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from temporalio.testing import WorkflowEnvironment

from activities.rebuild import HistoryReader, rebuild
from activities.sla import SlaActivities
from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from api.views import expected_date
from config.settings import Settings
from intake.idempotency import Answer
from intake.relay import IntakeRelay
from sla.policy import load_policy
from store import models
from store.chain import event_hash
from store.db import Database
from tests.api.conftest import complaint
from tests.workflows.paths import OFFICER, STARTED, act
from worker import WORKFLOWS, build_worker
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.process import Actor, Role

TABLES = (models.Notification, models.AgencyTask, models.CaseEvent, models.Case)


async def _rows(db: Database, case_id: str) -> tuple[models.Case, list[models.CaseEvent]]:
    async with db.session() as s:
        case = await s.get(models.Case, case_id, populate_existing=True)
        events = list(
            (
                await s.execute(
                    select(models.CaseEvent).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
                )
            ).scalars()
        )
    assert case is not None
    return case, events


def _assert_chain(events: list[models.CaseEvent]) -> None:
    prev = None
    for e in events:
        row = {c.key: getattr(e, c.key) for c in models.CaseEvent.__table__.columns}
        assert e.prev_hash == prev and e.hash == event_hash(prev, row), f"chain broken at {e.seq}"
        prev = e.hash


async def _committed(settings: Settings, db: Database) -> tuple[Settings, SlaActivities, Answer]:
    """A complaint committed by the API (DB-first) on a fresh task queue; no relay has started it."""
    here = settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}", "search_attributes": False})
    sla = SlaActivities(here.calendar(), load_policy())
    desk = IntakeDesk(db=db, settings=here, sla=sla)
    answer = await file_complaint(
        desk, complaint=ComplaintIn.model_validate(complaint()), actor=Actor("citizen:web", Role.CITIZEN)
    )
    return here, sla, answer


async def test_the_first_write_completes_the_row_intake_committed(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    here, sla, answer = await _committed(settings, db)
    queue, case_id = here.task_queue, answer.body["case_id"]
    before, events = await _rows(db, case_id)
    assert before.status == "received" and before.last_seq == 0 and events == []

    async with build_worker(dev_env.client, here, db, task_queue=queue, sla=sla):
        assert await IntakeRelay(db, dev_env.client, here).drain() >= 1
        handle = dev_env.client.get_workflow_handle_for(ComplaintWorkflow.run, workflow_id_for(case_id))
        STARTED.append(handle)
        summary = await handle.execute_update(ComplaintWorkflow.receipt)
        await act(handle, "screen", OFFICER)
        after, events = await _rows(db, case_id)

    # The workflow kept the time and dates of the receipt (its clock starts when the API committed).
    assert after.received_at == before.received_at and summary.expected_by == before.expected_by
    assert str(expected_date(summary.expected_by)) == answer.body["expected_by"]
    assert after.tracking_code == answer.body["tracking_code"] and after.last_seq == 2
    assert [e.event for e in events] == ["filed", "screen"]
    _assert_chain(events)

    # Lose the read model's rows of the case and rebuild them from Temporal: the same rows come back.
    async with db.session() as s:
        for table in TABLES:
            await s.execute(delete(table).where(table.case_id == case_id))
    await rebuild(reader=HistoryReader(dev_env.client, WORKFLOWS), db=db, case_id=case_id)
    rebuilt, rebuilt_events = await _rows(db, case_id)
    assert rebuilt.received_at == after.received_at and rebuilt.expected_by == after.expected_by
    assert [(e.seq, e.hash) for e in rebuilt_events] == [(e.seq, e.hash) for e in events]

    if record_to := os.environ.get("RONGTUK_RECORD_HISTORIES"):
        history = await handle.fetch_history()
        folder = Path(record_to)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{workflow_id_for(case_id)}.json").write_text(history.to_json())


async def test_an_action_sent_with_the_start_waits_for_the_filing_and_is_decided_then(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    """The API's update-with-start (``api.service.perform_action`` with a ``CaseStart``): no relay has started
    the case. The actions reach the workflow in its first task, before it has filed the case; they are
    accepted and decided once it has: a refusal changes nothing, an allowed action follows the filing."""
    from api.errors import AppError
    from api.service import perform_action
    from intake.relay import case_start
    from workflows.models import ActionRequest

    here, sla, answer = await _committed(settings, db)
    queue, case_id = here.task_queue, answer.body["case_id"]
    async with db.session() as s:
        start = await case_start(s, case_id)
    assert start is not None and start.task_queue == queue

    async def send(event: str, actor: Actor, update_id: str) -> object:
        return await perform_action(
            client=dev_env.client,
            case_id=case_id,
            request=ActionRequest(event, actor, {}),
            update_id=update_id,
            wait_seconds=30,
            start=start,
        )

    async with build_worker(dev_env.client, here, db, task_queue=queue, sla=sla):
        # An agency cannot screen: the table refuses it once the case is filed, and nothing else changes.
        with pytest.raises(AppError) as refused:
            await send("screen", Actor("dopa-1", Role.AGENCY, "DOPA"), f"u-{uuid.uuid4()}")
        assert refused.value.status == 403 and refused.value.code == "role_not_allowed"
        handle = dev_env.client.get_workflow_handle_for(ComplaintWorkflow.run, workflow_id_for(case_id))
        STARTED.append(handle)
        summary = await send("screen", OFFICER, f"u-{uuid.uuid4()}")
        after, events = await _rows(db, case_id)

    assert getattr(summary, "seq", None) == 2
    assert [e.event for e in events] == ["filed", "screen"] and after.last_seq == 2
    # A relay that gets to its intake row later finds the workflow started: a case is started once.
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from intake.relay import STARTED as ROW_STARTED
    from intake.relay import IntakeRelay

    with pytest.raises(WorkflowAlreadyStartedError):
        await IntakeRelay(db, dev_env.client, here).start(start.inp, task_queue=queue)
    async with db.session() as s:  # as that relay records it (other tests' relays drain what is pending)
        await s.execute(
            update(models.IntakeOutbox).where(models.IntakeOutbox.case_id == case_id).values(status=ROW_STARTED)
        )
    _assert_chain(events)
    assert str(expected_date(after.expected_by)) == answer.body["expected_by"]

    if record_to := os.environ.get("RONGTUK_RECORD_HISTORIES"):
        history = await handle.fetch_history()
        folder = Path(record_to)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{workflow_id_for(case_id)}.json").write_text(history.to_json())
