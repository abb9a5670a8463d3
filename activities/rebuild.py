"""The read model rebuilt from Temporal: every transition of a case, as its histories record it.

A case's history is replayed (with the workers' own workflow code) while an interceptor keeps what each
transition handed to the read-model write: exactly the records the live write received. A case that continued
as new is followed back through its earlier runs. Writing those records again is idempotent, so a rebuild can
run while the system runs, and a rebuilt read model equals the first one row for row.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    StartLocalActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from store.db import Database
from workflows.models import NotificationRequest, ProjectionRequest, TransitionRecord, workflow_id_for

log = structlog.get_logger(__name__)

# The replay that is running now keeps its captures here. Replays in one process take turns (the workflow
# code runs in executor threads, out of reach of context variables), so the list is never shared.
_CAPTURED: list[Any] = []
_REPLAYING = asyncio.Lock()


class _Outbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        if input.activity in {"record_transition", "project_event"}:
            # The workflow goes on changing its state after the call: keep it as it was handed over.
            _CAPTURED.append(copy.deepcopy(input.args[0]))
        return super().start_local_activity(input)

    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        if input.activity == "notify":
            _CAPTURED.append(copy.deepcopy(input.args[0]))
        return super().start_activity(input)


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))


class _Capture(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Inbound


def _records(captured: list[Any]) -> list[TransitionRecord]:
    """Transition records from a replay's captures (version 1 pairs a projection with its notification)."""
    out: list[TransitionRecord] = []
    pending: ProjectionRequest | None = None
    for item in captured:
        if isinstance(item, TransitionRecord):
            out.append(item)
        elif isinstance(item, ProjectionRequest):
            if pending is not None:  # its notification never ran (the replayed history ends there)
                out.append(TransitionRecord(pending.event, pending.case, [], [], pending.complaint))
            pending = item
        elif isinstance(item, NotificationRequest) and pending is not None and pending.event.seq == item.seq:
            out.append(TransitionRecord(pending.event, pending.case, item.audiences, item.agencies, pending.complaint))
            pending = None
    if pending is not None:
        out.append(TransitionRecord(pending.event, pending.case, [], [], pending.complaint))
    return out


async def history_runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The histories of every run of a workflow, oldest first (following continue-as-new back)."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return list(reversed(histories))


@dataclass
class HistoryReader:
    """Reads cases' transitions from Temporal by replaying their histories."""

    client: Client
    workflows: list[type]
    _replayer: Replayer | None = field(default=None, init=False)

    def replayer(self) -> Replayer:
        if self._replayer is None:
            self._replayer = Replayer(
                workflows=self.workflows,
                data_converter=self.client.data_converter,
                workflow_runner=UnsandboxedWorkflowRunner(),
                interceptors=[_Capture()],
            )
        return self._replayer

    async def runs(self, workflow_id: str) -> list[WorkflowHistory]:
        """The histories of every run of a workflow, oldest first (following continue-as-new back)."""
        return await history_runs(self.client, workflow_id)

    async def transitions(self, case_id: str) -> list[TransitionRecord]:
        """Every transition of the case, in order, as the read-model write received them."""
        try:
            histories = await self.runs(workflow_id_for(case_id))
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return []
            raise
        records: dict[int, TransitionRecord] = {}
        for history in histories:
            async with _REPLAYING:
                _CAPTURED.clear()
                # A running case's history ends mid-task; what it holds replays all the same.
                result = await self.replayer().replay_workflow(history, raise_on_replay_failure=False)
                captured = _records(_CAPTURED)
                _CAPTURED.clear()
            if result.replay_failure is not None:
                # Half a case is worse than none: report it (rongtuk replay shows the mismatch).
                raise RuntimeError(f"the history of case {case_id} does not replay on this code") from None
            for rec in captured:
                records.setdefault(rec.case.seq, rec)
        return [records[seq] for seq in sorted(records)]


@dataclass
class RebuildReport:
    cases: int = 0
    transitions: int = 0
    failed: list[str] = field(default_factory=list)


async def case_ids(client: Client, *, since: datetime | None = None, case_id: str | None = None) -> AsyncIterator[str]:
    """Case numbers of every case workflow Temporal still holds (open, and closed within retention)."""
    if case_id is not None:
        yield case_id
        return
    query = "WorkflowType = 'ComplaintWorkflow'"
    if since is not None:
        query += f" AND StartTime >= '{since.isoformat()}'"
    seen: set[str] = set()
    async for execution in client.list_workflows(query):
        found = execution.id.removeprefix("complaint-")
        if found not in seen:
            seen.add(found)
            yield found


async def rebuild(
    *,
    reader: HistoryReader,
    db: Database,
    case_id: str | None = None,
    since: datetime | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> RebuildReport:
    """Re-project cases from Temporal into the read model (all of them, or one); idempotent."""
    from activities.projection import write_transition

    report = RebuildReport()
    async for found in case_ids(reader.client, since=since, case_id=case_id):
        try:
            records = await reader.transitions(found)
            # One transaction per case, not per transition: a case is rebuilt whole or not at all, and the
            # commits (an fsync each on SQLite) were most of the rebuild's time (bench/replay_bench.py).
            async with db.session() as session:
                for rec in records:
                    await write_transition(session, rec, allow_gap=True)
        except Exception as exc:
            log.error("rebuild_failed", case_id=found, error=type(exc).__name__)
            report.failed.append(found)
            continue
        report.cases += 1
        report.transitions += len(records)
        if progress is not None:
            progress(found, len(records))
    return report
