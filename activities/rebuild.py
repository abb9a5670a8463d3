"""The read model rebuilt from Temporal: every transition of a case, as its histories record it.

Since the write answers with the record it wrote, a case's history holds every record as the result of its
``record_transition`` local activity (the marker Temporal records for it): they are read from there, decrypted
and checked (every transition from the first, none missing) without running the workflow code. A history that
does not hold them all (recorded before the write answered, a write the read model refused, a v1 history) is
replayed instead, with the workers' own workflow code, while an interceptor keeps what each transition handed to
the read-model write. Either way: exactly the records the live write received. A case that continued as new is
followed back through its earlier runs. Writing those records again is idempotent, so a rebuild can run while
the system runs, and a rebuilt read model equals the first one row for row.
"""

from __future__ import annotations

import asyncio
import copy
import json
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
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

from activities.projection import RECORD_TRANSITION
from store.db import Database
from workflows.models import NotificationRequest, ProjectionRequest, TransitionRecord, workflow_id_for

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)

# The replay that is running now keeps its captures here. Replays in one process take turns (the workflow
# code runs in executor threads, out of reach of context variables), so the list is never shared.
_CAPTURED: list[Any] = []
_REPLAYING = asyncio.Lock()


class _Outbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        if input.activity in {RECORD_TRANSITION, "project_event"}:
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


# The marker Temporal records for a local activity: its "data" (activity type, attempt, ...) and its "result".
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class LocalActivityMarker:
    """A local activity as its marker records it: which activity (None if unnamed) and its answer (None if it
    failed or answered nothing the marker keeps)."""

    activity_type: str | None
    result: Payload | None


def local_activity(event: HistoryEvent) -> LocalActivityMarker | None:
    """The local activity a history event records, or None if the event is not a local activity's marker."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    result = marker.details.get("result")
    answered = not marker.HasField("failure") and result is not None and len(result.payloads) == 1
    return LocalActivityMarker(
        activity_type_of(marker.details.get("data")), result.payloads[0] if answered and result else None
    )


async def records_in_history(
    converter: DataConverter, histories: Sequence[WorkflowHistory]
) -> list[TransitionRecord] | None:
    """Every transition of a case, read from the answers of its writes in its runs' histories (oldest run
    first), or ``None`` if they do not hold them all: then the histories must be replayed.

    They hold them all when every ``record_transition`` marker has a record for an answer (an older write
    answered None; a refused one has a failure instead) and the records run from transition 1 without a gap.
    A write still in flight when the history was read is not there yet; the worker writes it when it completes.
    """
    results = []
    for history in histories:
        for event in history.events:
            found = local_activity(event)
            if found is None or found.activity_type not in (None, "project_event", RECORD_TRANSITION):
                continue
            # Unnamed: let the replay see it; project_event: version 1, notifications were another activity.
            if found.activity_type != RECORD_TRANSITION or found.result is None:
                return None
            results.append(found.result)
    if not results:
        return None
    try:
        records = await converter.decode(results, [TransitionRecord] * len(results))
    except Exception:  # a key this process lacks, a record of another shape: the replay says what it can
        return None
    by_seq: dict[int, TransitionRecord] = {}
    for rec in records:
        if not isinstance(rec, TransitionRecord):
            return None  # an older write's answer: None decodes as None whatever the type asked for
        by_seq.setdefault(rec.case.seq, rec)
    if sorted(by_seq) != list(range(1, len(by_seq) + 1)):
        return None
    return [by_seq[seq] for seq in sorted(by_seq)]


def completed_at(event: HistoryEvent) -> datetime | None:
    """When the local activity a marker records completed (the SDK's core writes it), or None. The workflow's
    clock moves to that moment when the activity's result reaches it: a timer started after it counts from
    there, not from the start of the workflow task."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    marker = event.marker_recorded_event_attributes
    data = marker.details.get("data") if marker.marker_name == LOCAL_ACTIVITY_MARKER else None
    try:
        done = json.loads(data.payloads[0].data)["complete_time"] if data is not None else None
        return datetime.fromtimestamp(int(done["seconds"]) + int(done.get("nanos", 0)) / 1e9, UTC) if done else None
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def activity_type_of(data: Payloads | None) -> str | None:
    """The activity type a local-activity marker's ``data`` names (JSON written by the SDK's core)."""
    try:
        return str(json.loads(data.payloads[0].data)["activity_type"]) if data is not None else None
    except (IndexError, KeyError, TypeError, ValueError):
        return None


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

    async def fetch(self, case_id: str) -> list[WorkflowHistory]:
        """The case's runs, oldest first; none if Temporal no longer holds the case."""
        try:
            return await self.runs(workflow_id_for(case_id))
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return []
            raise

    async def transitions(self, case_id: str) -> list[TransitionRecord]:
        """Every transition of the case, in order, as the read-model write received them."""
        histories = await self.fetch(case_id)
        records = (await replay_cases(self.replayer(), [(case_id, histories)], self.client.data_converter))[0][1]
        if records is None:
            # Half a case is worse than none: report it (rongtuk replay shows the mismatch).
            raise RuntimeError(f"the history of case {case_id} does not replay on this code") from None
        return records


async def replay_cases(
    replayer: Replayer,
    cases: Sequence[tuple[str, list[WorkflowHistory]]],
    converter: DataConverter | None = None,
) -> list[tuple[str, list[TransitionRecord] | None]]:
    """Each case's transitions from its runs' histories (``None`` for a case that does not replay).

    With a ``converter``, a case whose histories hold every record (``records_in_history``) is read from them;
    the others are replayed. All runs go through one replay worker (``workflow_replay_iterator``), which
    replays them one after the other: what was captured between two results belongs to the run that just
    finished.
    """
    return await _read_or_replay(cases, converter, lambda rest: _replay(replayer, rest))


_Cases = Sequence[tuple[str, list[WorkflowHistory]]]


async def _read_or_replay(
    cases: _Cases,
    converter: DataConverter | None,
    replay: Callable[[_Cases], Awaitable[dict[str, list[TransitionRecord] | None]]],
) -> list[tuple[str, list[TransitionRecord] | None]]:
    """Each case's transitions, in order: read from its histories where they hold them all (with a
    ``converter``), the rest handed to ``replay``."""
    read: dict[str, list[TransitionRecord]] = {}
    if converter is not None:
        for case_id, histories in cases:
            records = await records_in_history(converter, histories) if histories else None
            if records is not None:
                read[case_id] = records
    rest = [(c, h) for c, h in cases if c not in read]
    replayed = await replay(rest) if rest else {}
    return [(case_id, read[case_id] if case_id in read else replayed[case_id]) for case_id, _ in cases]


async def _replay(
    replayer: Replayer, cases: Sequence[tuple[str, list[WorkflowHistory]]]
) -> dict[str, list[TransitionRecord] | None]:
    """Each case's transitions by replaying its runs' histories with the capture interceptor."""

    async def runs() -> AsyncIterator[WorkflowHistory]:
        for _, histories in cases:
            for history in histories:
                yield history

    per_run: list[tuple[list[TransitionRecord], bool]] = []
    if any(histories for _, histories in cases):
        async with _REPLAYING:
            _CAPTURED.clear()
            try:
                async with replayer.workflow_replay_iterator(runs()) as results:
                    async for result in results:
                        # A running case's history ends mid-task; what it holds replays all the same.
                        per_run.append((_records(_CAPTURED), result.replay_failure is None))
                        _CAPTURED.clear()
            finally:
                _CAPTURED.clear()
    out: dict[str, list[TransitionRecord] | None] = {}
    done = iter(per_run)
    for case_id, histories in cases:
        records: dict[int, TransitionRecord] = {}
        replayed = True
        for _ in histories:
            captured, ok = next(done)
            replayed = replayed and ok
            for rec in captured:
                records.setdefault(rec.case.seq, rec)
        out[case_id] = [records[seq] for seq in sorted(records)] if replayed else None
    return out


# --- replay in worker processes -------------------------------------------------------------------------------
# A replay is CPU in Python: one process replays on one core. The rebuild (and ``rongtuk replay --all``) hand
# each of N processes a share of the histories, serialised as protobuf, and take the results back.

_PROCESS: dict[str, Any] = {}
SerialisedHistory = tuple[str, bytes]


def serialise(history: WorkflowHistory) -> SerialisedHistory:
    return history.workflow_id, History(events=history.events).SerializeToString()


def deserialise(item: SerialisedHistory) -> WorkflowHistory:
    history = History()
    history.ParseFromString(item[1])
    return WorkflowHistory(item[0], list(history.events))


def _start_process(settings: Settings) -> None:
    """Per worker process: an event loop, and the capture replayer with the workers' workflows and codec."""
    from config.temporal import data_converter
    from worker import WORKFLOWS, build_replayer

    _PROCESS["loop"] = asyncio.new_event_loop()
    _PROCESS["settings"] = settings
    _PROCESS["capture"] = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(settings),
        workflow_runner=UnsandboxedWorkflowRunner(),
        interceptors=[_Capture()],
    )
    _PROCESS["check"] = build_replayer(settings)


def _replay_share(
    cases: list[tuple[str, list[SerialisedHistory]]],
) -> list[tuple[str, list[TransitionRecord] | None]]:
    """In a worker process: the transitions of a share of the cases, replayed."""
    decoded = [(case_id, [deserialise(h) for h in histories]) for case_id, histories in cases]
    loop: asyncio.AbstractEventLoop = _PROCESS["loop"]
    return loop.run_until_complete(replay_cases(_PROCESS["capture"], decoded))


def _check_share(histories: list[SerialisedHistory]) -> list[tuple[str, str, str | None]]:
    """In a worker process: replay a share of histories in the workers' sandbox; (workflow, run, error)."""

    async def check() -> list[tuple[str, str, str | None]]:
        async def source() -> AsyncIterator[WorkflowHistory]:
            for item in histories:
                yield deserialise(item)

        out = []
        async with _PROCESS["check"].workflow_replay_iterator(source()) as results:
            async for result in results:
                history, failure = result.history, result.replay_failure
                run_id = history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
                out.append((history.workflow_id, run_id, f"{type(failure).__name__}: {failure}" if failure else None))
        return out

    loop: asyncio.AbstractEventLoop = _PROCESS["loop"]
    return loop.run_until_complete(check())


def default_jobs() -> int:
    """One replay process per core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ReplayProcesses:
    """``jobs`` worker processes, each with its own replayers; shares of histories go to whichever is free."""

    def __init__(self, settings: Settings, jobs: int) -> None:
        # spawn, not fork: the parent runs an event loop and the Temporal runtime's threads.
        self.jobs = jobs
        self._pool = ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_process, initargs=(settings,)
        )

    async def transitions(
        self, cases: Sequence[tuple[str, list[WorkflowHistory]]]
    ) -> list[tuple[str, list[TransitionRecord] | None]]:
        """The cases' transitions, replayed in one of the processes."""
        share = [(case_id, [serialise(h) for h in histories]) for case_id, histories in cases]
        return await asyncio.get_running_loop().run_in_executor(self._pool, _replay_share, share)

    async def check(self, histories: Sequence[WorkflowHistory]) -> list[tuple[str, str, str | None]]:
        share = [serialise(h) for h in histories]
        return await asyncio.get_running_loop().run_in_executor(self._pool, _check_share, share)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


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


async def _batches(
    reader: HistoryReader, ids: AsyncIterator[str], size: int, fetch_concurrency: int, ahead: int = 2
) -> AsyncIterator[list[tuple[str, list[WorkflowHistory] | BaseException]]]:
    """Cases in batches of ``size``, their histories fetched from Temporal ``fetch_concurrency`` at a time; the
    next ``ahead`` batches are fetched while the caller works on one (reading records is faster than fetching)."""
    gate = asyncio.Semaphore(fetch_concurrency)

    async def fetch(case_id: str) -> list[WorkflowHistory]:
        async with gate:
            return await reader.fetch(case_id)

    async def fetched(batch: list[str]) -> list[tuple[str, list[WorkflowHistory] | BaseException]]:
        results = await asyncio.gather(*(fetch(c) for c in batch), return_exceptions=True)
        return list(zip(batch, results, strict=True))

    fetching: deque[asyncio.Future[list[tuple[str, list[WorkflowHistory] | BaseException]]]] = deque()
    try:
        batch: list[str] = []
        async for found in ids:
            batch.append(found)
            if len(batch) >= size:
                fetching.append(asyncio.ensure_future(fetched(batch)))
                batch = []
                if len(fetching) > ahead:
                    yield await fetching.popleft()
        if batch:
            fetching.append(asyncio.ensure_future(fetched(batch)))
        while fetching:
            yield await fetching.popleft()
    finally:
        for pending in fetching:
            pending.cancel()


async def _new_cases(session: AsyncSession, case_ids: list[str]) -> set[str]:
    """Which of these cases the read model has no rows of: no case row, or a bare one (last_seq 0, as a refused
    write or intake before the workflow's first write leaves it), and no timeline, task or outbox row."""
    from store.models import AgencyTask, Case, CaseEvent, Notification

    present = union(
        select(Case.case_id).where(Case.case_id.in_(case_ids), Case.last_seq != 0),
        *(select(m.case_id).where(m.case_id.in_(case_ids)) for m in (CaseEvent, AgencyTask, Notification)),
    )
    return set(case_ids) - set(await session.scalars(present))


async def _write_cases(
    db: Database, cases: list[tuple[str, list[TransitionRecord]]], *, bulk: bool = True
) -> list[str]:
    """Write a batch of cases in one transaction; the cases that could not be written (each case whole or not
    at all: if the batch fails, its cases are written again one transaction each, and one that fails alone once
    more one transition at a time).

    The cases the read model has no rows of are written with a few statements for the whole batch, the rows
    computed from their records (``new_case_rows``, ``bulk``); the others one transition at a time
    (``write_transition``), which keeps what is ahead and replaces what another transition left.
    """
    from activities.projection import new_case_rows, write_new_cases, write_transition

    try:
        async with db.session() as session:
            new = await _new_cases(session, [c for c, _ in cases]) if bulk else set()
            written_whole = []
            for case_id, records in cases:
                rows = new_case_rows(records) if case_id in new else None
                if rows is not None:
                    written_whole.append(rows)
                    continue
                for rec in records:
                    await write_transition(session, rec, allow_gap=True)
            await write_new_cases(session, written_whole)
        return []
    except Exception:
        if len(cases) == 1:
            if bulk:  # a live write may have come first: this case's rows are there now
                return await _write_cases(db, cases, bulk=False)
            log.error("rebuild_failed", case_id=cases[0][0], error="write")
            return [cases[0][0]]
    failed: list[str] = []
    for case in cases:
        failed += await _write_cases(db, [case], bulk=bulk)
    return failed


async def rebuild(
    *,
    reader: HistoryReader,
    db: Database,
    case_id: str | None = None,
    since: datetime | None = None,
    progress: Callable[[str, int], None] | None = None,
    processes: ReplayProcesses | None = None,
    batch_size: int = 50,
    fetch_concurrency: int = 16,
    bulk: bool = True,
    read_records: bool = True,
) -> RebuildReport:
    """Re-project cases from Temporal into the read model (all of them, or one); idempotent.

    A pipeline: histories are fetched ``fetch_concurrency`` at a time in batches of ``batch_size`` cases;
    each batch's records are read from the histories (``records_in_history``, in this process) or, where they
    are not all there, replayed (in ``processes`` if given, several batches at once, else in this process)
    while the batch before it is written, one transaction per batch
    (``bulk=False``: every case one transition at a time, as the projection writes them live;
    ``read_records=False``: every case replayed, as before the write answered with its record).
    """
    report = RebuildReport()

    async def replay(
        batch: list[tuple[str, list[WorkflowHistory] | BaseException]],
    ) -> list[tuple[str, list[TransitionRecord] | None]]:
        ok = [(c, h) for c, h in batch if not isinstance(h, BaseException)]
        for c, h in batch:
            if isinstance(h, BaseException):
                log.error("rebuild_failed", case_id=c, error=type(h).__name__)
                report.failed.append(c)
        converter = reader.client.data_converter if read_records else None
        if processes is None:
            return await replay_cases(reader.replayer(), ok, converter)

        pool = processes

        async def in_processes(rest: _Cases) -> dict[str, list[TransitionRecord] | None]:
            return dict(await pool.transitions(rest))

        # Reading the records costs less than handing the histories to a process: only replays go there.
        return await _read_or_replay(ok, converter, in_processes)

    async def write(done: list[tuple[str, list[TransitionRecord] | None]]) -> None:
        cases: list[tuple[str, list[TransitionRecord]]] = []
        for found, records in done:
            if records is None:
                log.error("rebuild_failed", case_id=found, error="replay")
                report.failed.append(found)
            else:
                cases.append((found, records))
        failed = set(await _write_cases(db, cases, bulk=bulk))
        report.failed += sorted(failed)
        for found, records in cases:
            if found in failed:
                continue
            report.cases += 1
            report.transitions += len(records)
            if progress is not None:
                progress(found, len(records))

    in_flight: deque[asyncio.Future[list[tuple[str, list[TransitionRecord] | None]]]] = deque()
    ahead = processes.jobs if processes is not None else 1
    ids = case_ids(reader.client, since=since, case_id=case_id)
    try:
        async for batch in _batches(reader, ids, batch_size, fetch_concurrency):
            in_flight.append(asyncio.ensure_future(replay(batch)))
            if len(in_flight) > ahead:
                await write(await in_flight.popleft())
        while in_flight:
            await write(await in_flight.popleft())
    finally:
        for pending in in_flight:
            pending.cancel()
    return report
