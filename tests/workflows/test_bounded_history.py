"""A case's history stays bounded whatever people do, and a case that continues as new carries on whole.

Before this, ~1,060 ratings took one case to 15,483 events; after a worker restart its replay passed the
workflow task timeout and every later action failed. Now repeatable actions have limits (refused updates
never reach the history) and a long history continues as new with the whole state.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.rebuild import HistoryReader, history_runs, records_in_history, replay_cases
from activities.sla import SlaActivities
from config.settings import Settings
from config.temporal import data_converter
from sla.calendar import WorkingCalendar
from sla.policy import SlaPolicy
from store.db import Database
from tests.workflows.conftest import TEST_POLICY, Rig
from tests.workflows.paths import (
    CITIZEN,
    DOPA,
    RESPONSE,
    STARTED,
    Handle,
    act,
    events_named,
    eventually,
    reach,
    timeline,
)
from worker import WORKFLOWS, build_replayer, build_worker
from workflows.complaint import ComplaintWorkflow
from workflows.models import ActionRequest
from workflows.process import State

# Far more than any limit: the first few count, the rest are refused before they touch the history.
ATTEMPTS = 2000


async def test_thousands_of_ratings_leave_the_history_small_and_the_case_answering(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    """On the real server (speculative workflow tasks), a refused update leaves nothing in the history."""
    queue = f"tq-{uuid.uuid4()}"
    async with build_worker(dev_env.client, settings, db, task_queue=queue):
        _, handle = await reach(dev_env.client, queue, State.CLOSED)
        # This case is on the dev server, not the session's time-skipping one: end it here, with its worker.
        STARTED.remove(handle)
        try:
            await _flood(handle, settings)
        finally:
            await handle.terminate("test over")


async def _flood(handle: Handle, settings: Settings) -> None:
    before = len((await handle.fetch_history()).events)

    async def rate(i: int) -> bool:
        try:
            await act(handle, "rate", CITIZEN, rating=1 + i % 5, comment="ก" * 1000)
        except (WorkflowUpdateFailedError, RPCError):
            return False
        return True

    accepted = 0
    # Eight at a time: the server itself refuses more than ten in-flight updates per workflow (429 at the API).
    for start in range(0, ATTEMPTS, 8):
        accepted += sum(await asyncio.gather(*(rate(i) for i in range(start, start + 8))))
    assert accepted == TEST_POLICY.max_rating_changes + 1
    history = await handle.fetch_history()
    # Each accepted rating costs a handful of events; the refused ones cost none.
    assert len(history.events) - before < 15 * accepted
    summary = await act(handle, "request_review", CITIZEN, reason="ยังไม่ได้รับการแก้ไข")
    assert summary.status is State.STAGE2
    replayed = await build_replayer(settings).replay_workflow(
        await handle.fetch_history(), raise_on_replay_failure=False
    )
    assert replayed.replay_failure is None


SHORT = SlaPolicy(screening=TEST_POLICY.screening, history_limit=100)


@pytest.fixture
async def own_server(settings: Settings, db: Database) -> AsyncIterator[Rig]:
    """A time-skipping server of its own, with cases continuing as new past 100 history events.

    Seen here: once a workflow has continued as new, the time-skipping test server no longer skips time by
    itself while a client waits for another workflow's result (``env.sleep`` still works), so this test keeps
    off the session's server.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=data_converter(settings),
    )
    sla = SlaActivities(WorkingCalendar(), SHORT)
    try:
        async with build_worker(env.client, settings, db, task_queue="continue-as-new", sla=sla):
            yield Rig(env.client, env, sla, "continue-as-new")
    finally:
        await env.shutdown()


async def test_a_long_case_continues_as_new_with_its_whole_state(
    own_server: Rig, db: Database, settings: Settings
) -> None:
    rig = own_server
    case_id, handle = await reach(rig.client, rig.task_queue, State.STAGE1)
    STARTED.remove(handle)
    for i in range(40):
        await act(handle, "progress", DOPA, note=f"ความคืบหน้าครั้งที่ {i + 1}")
    current = rig.client.get_workflow_handle_for(ComplaintWorkflow.run, handle.id)
    runs = await history_runs(rig.client, handle.id)
    assert len(runs) >= 3, "the case should have continued as new more than once"
    assert all(len(run.events) <= SHORT.history_limit + 30 for run in runs)

    # Everything carried over: the sequence, the task and its clock, the limits' counters.
    state = await current.query(ComplaintWorkflow.state)
    assert state.tasks[0].notes == 40
    events = await timeline(db, case_id)
    assert [e.seq for e in events] == list(range(1, state.seq + 1)), "no transition lost or written twice"
    assert sum(e.event == "progress" for e in events) == 40
    await rig.env.sleep(timedelta(days=20))
    breach = await eventually(lambda: events_named(db, case_id, "sla_breach"))
    assert breach[0].data["agency"] == "DOPA"

    summary = await current.execute_update(ComplaintWorkflow.act, ActionRequest("respond", DOPA, dict(RESPONSE)))
    assert summary.status is State.RESPONDED
    replayer = build_replayer(settings)
    runs = await history_runs(rig.client, handle.id)
    for run in runs:
        result = await replayer.replay_workflow(run, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
    # The rebuild reads every run's records, from the first transition on, as a replay of the runs captures them.
    read = await records_in_history(rig.client.data_converter, runs)
    assert read is not None and [r.case.seq for r in read] == list(range(1, summary.seq + 1))
    replayed = await replay_cases(HistoryReader(rig.client, WORKFLOWS).replayer(), [(case_id, runs)])
    assert read == replayed[0][1]
