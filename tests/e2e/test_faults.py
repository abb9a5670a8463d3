"""Faults in the middle of many running cases: the worker SIGKILLed, the Temporal dev server killed and restarted
on its SQLite file. Afterwards every case has reached its state, and every transition has exactly one timeline
row and one outbox row per recipient.

Separate processes (dev server, worker) on 127.0.0.1, bounded in count (40 cases) and time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from cli.devserver import ProcessGroup, free_port, temporal_command, wait_for_port
from config.settings import Settings
from config.temporal import data_converter
from tests.workflows.paths import CITIZEN, DOPA, OFFICER, RESPONSE, complaint
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.models import ActionRequest, CaseInput
from workflows.process import Actor, State

pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("RONGTUK_FAULT_CASES", "40"))  # make test-faults runs 200
STEPS: list[tuple[str, Actor, dict[str, object]]] = [
    ("screen", OFFICER, {}),
    ("accept", OFFICER, {"category": "roads", "agencies": ["DOPA"]}),
    ("agency_accept", DOPA, {}),
    ("respond", DOPA, RESPONSE),
    ("close", OFFICER, {}),
]


class Processes:
    """The dev server on a SQLite file and one worker, each restartable."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.tmp = tmp
        self.group = ProcessGroup()
        self.port = free_port()
        self.env = {
            "RONGTUK_ENV": "test",
            "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{self.port}",
            "RONGTUK_DATABASE_URL": database_url,
            "RONGTUK_DATA_DIR": str(tmp),
            "RONGTUK_TASK_QUEUE": "rongtuk-faults",
            "RONGTUK_SEARCH_ATTRIBUTES": "false",
            "RONGTUK_DELIVERY_IN_WORKER": "false",
        }

    def start_server(self) -> None:
        server = self.group.start(
            "temporal",
            temporal_command(db_file=self.tmp / "temporal.db", port=self.port, ui_port=None),
            log=self.tmp / "temporal.log",
        )
        wait_for_port(self.port, proc=server)

    def start_worker(self) -> None:
        self.group.start("worker", [sys.executable, "-m", "worker"], env=self.env, log=self.tmp / "worker.log")

    def kill(self, name: str) -> None:
        self.group.stop(name, sig=signal.SIGKILL, timeout=5)


@pytest.fixture
def processes(tmp_path: Path, database_url: str) -> Iterator[Processes]:
    p = Processes(tmp_path, database_url)
    try:
        p.start_server()
        p.start_worker()
        yield p
    finally:
        p.group.stop()


async def _retrying(call: object, *, attempts: int = 60) -> object:
    """Keep calling through the fault: the server or the worker comes back within the test's bounds."""
    for attempt in range(attempts):
        try:
            return await call()  # type: ignore[operator]
        except (RPCError, RuntimeError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            await asyncio.sleep(min(0.25 * (attempt + 1), 2.0))
    raise AssertionError("the system did not come back in time")


async def _drive(client_of: object, case_id: str) -> None:
    async def file() -> object:
        client: Client = await client_of()  # type: ignore[operator]
        handle = await client.start_workflow(
            ComplaintWorkflow.run,
            CaseInput(case_id, case_id[-10:], complaint(), CITIZEN, search_attributes=False),
            id=workflow_id_for(case_id),
            task_queue="rongtuk-faults",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return await asyncio.wait_for(handle.execute_update(ComplaintWorkflow.receipt), 10)

    await _retrying(file)
    for k, (event, actor, payload) in enumerate(STEPS):

        async def step(
            event: str = event, actor: Actor = actor, payload: dict[str, object] = payload, k: int = k
        ) -> object:
            client: Client = await client_of()  # type: ignore[operator]
            handle = client.get_workflow_handle_for(ComplaintWorkflow.run, workflow_id_for(case_id))
            try:
                # The same update id on every retry: Temporal applies it once and answers the retry with it.
                return await asyncio.wait_for(
                    handle.execute_update(ComplaintWorkflow.act, ActionRequest(event, actor, dict(payload)), id=f"{k}"),
                    10,
                )
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError) and cause.type == "ActionNotAllowed":
                    raise AssertionError(f"{case_id}: {event} refused after a fault: {cause.message}") from None
                raise

        await _retrying(step)


async def test_cases_come_through_a_killed_worker_and_a_restarted_server(
    processes: Processes, database_url: str
) -> None:
    settings = Settings(env="test")
    current: list[Client] = []

    async def client_of() -> Client:
        if not current:
            current.append(await Client.connect(f"127.0.0.1:{processes.port}", data_converter=data_converter(settings)))
        return current[0]

    finished: list[str] = []
    at_fault: list[int] = []

    async def faults() -> None:
        await asyncio.sleep(1.5)
        at_fault.append(len(finished))
        processes.kill("worker")
        await asyncio.sleep(1.0)
        processes.start_worker()
        await asyncio.sleep(2.0)
        at_fault.append(len(finished))
        processes.kill("temporal")
        await asyncio.sleep(0.5)
        processes.start_server()

    ids = [f"RT-FAULT-{os.getpid()}-{n:03d}" for n in range(CASES)]
    gate = asyncio.Semaphore(10)

    async def one(case_id: str) -> None:
        async with gate:
            await _drive(client_of, case_id)
        finished.append(case_id)

    await asyncio.wait_for(asyncio.gather(faults(), *(one(c) for c in ids)), timeout=120 + 3 * CASES)

    # Both faults struck while cases were still on their way.
    assert len(at_fault) == 2 and all(n < CASES for n in at_fault), at_fault
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        statuses = dict(
            (await conn.execute(text("SELECT case_id, status FROM cases WHERE case_id LIKE 'RT-FAULT-%'"))).all()
        )
        events = (
            await conn.execute(
                text(
                    "SELECT case_id, seq, count(*) FROM case_events WHERE case_id LIKE 'RT-FAULT-%' "
                    "GROUP BY case_id, seq"
                )
            )
        ).all()
        duplicates = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE case_id LIKE 'RT-FAULT-%' "
                    "GROUP BY case_id, seq, audience, channel, recipient HAVING count(*) > 1) AS d"
                )
            )
        ).scalar_one()
    await engine.dispose()
    assert {c: statuses.get(c) for c in ids} == dict.fromkeys(ids, State.CLOSED.value)
    per_case: dict[str, list[int]] = {}
    for case_id, seq, n in events:
        assert n == 1, f"{case_id} transition {seq} recorded {n} times"
        per_case.setdefault(case_id, []).append(seq)
    assert all(sorted(per_case[c]) == list(range(1, len(STEPS) + 2)) for c in ids)
    assert duplicates == 0
