"""One worker for all workflow tests, with a policy and a calendar a test may adjust.

The time-skipping server keeps one clock for the whole session, and a workflow whose worker has gone would
hold that clock still at its next timer. So every workflow test's cases are served by this one session-wide
worker until the session ends, and a test that skips time also moves the earlier tests' cases along.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.sla import SlaActivities
from config.settings import Settings
from sla.calendar import WorkingCalendar
from sla.policy import SlaPolicy
from store.db import Database
from tests.workflows.histories import record_if_new, use_database
from tests.workflows.paths import STARTED
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

# Screening longer than the default 1 working day, so that its reminder exists and can be seen to fire.
TEST_POLICY = SlaPolicy(screening=3)
TASK_QUEUE = "workflow-tests"


@dataclass
class Rig:
    client: Client
    env: WorkflowEnvironment
    sla: SlaActivities
    task_queue: str


@pytest.fixture(scope="session")
async def session_rig(time_env: WorkflowEnvironment, settings: Settings, db: Database) -> AsyncIterator[Rig]:
    sla = SlaActivities(WorkingCalendar(), TEST_POLICY)
    use_database(db)
    async with build_worker(time_env.client, settings, db, task_queue=TASK_QUEUE, sla=sla):
        yield Rig(time_env.client, time_env, sla, TASK_QUEUE)


@pytest.fixture
def rig(session_rig: Rig) -> Iterator[Rig]:
    """The session's worker; a calendar a test swapped in is put back afterwards."""
    yield session_rig
    session_rig.sla.calendar = WorkingCalendar()


@pytest.fixture(autouse=True)
async def end_cases_afterwards(session_rig: Rig) -> AsyncIterator[None]:
    """Terminate what a test left running: the test server's one clock would otherwise carry every earlier
    case's timers into every later test's time skips (and they would slow them down)."""
    yield
    record_to = os.environ.get("RONGTUK_RECORD_HISTORIES")
    for handle in STARTED:
        if record_to:
            await record_if_new(session_rig.client, handle, Path(record_to))
        with contextlib.suppress(RPCError):
            state = await handle.query(ComplaintWorkflow.state)
            for task in state.tasks:
                with contextlib.suppress(RPCError):
                    await session_rig.client.get_workflow_handle(task.workflow_id).terminate("test over")
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")
    STARTED.clear()


@pytest.fixture
def time_worker(session_rig: Rig) -> Client:
    return session_rig.client


@pytest.fixture
def task_queue() -> str:
    return TASK_QUEUE
