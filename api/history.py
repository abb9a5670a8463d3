"""A case's timeline as Temporal's event history tells it: who did what, when, which deadline fired.

The history is the source of truth; its payloads are encrypted by the project's codec (config/temporal.py), so
they are decoded here with the client's data converter. The complaint itself (personal data) is left out:
the history view says who acted, not what the complainant wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from api.errors import not_found
from api.service import temporal_unavailable
from store.audit import ChainReport
from store.models import CaseEvent
from workflows.complaint import workflow_id_for

_E = EventType


@dataclass(frozen=True)
class HistoryEntry:
    event_id: int
    at: datetime
    kind: str
    detail: dict[str, Any]
    state: str | None = None  # the case's state after this entry, when the history says it


async def fetch_runs(client: Client, *, case_id: str) -> list[WorkflowHistory]:
    """Every run of the case's workflow, oldest first: a long case continues as new (404 if Temporal has
    none, 503 if it is away)."""
    from activities.rebuild import history_runs

    try:
        return await history_runs(client, workflow_id_for(case_id))
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise not_found(
                f"Temporal has no history for case {case_id}.", f"ไม่พบประวัติของเรื่อง {case_id} ใน Temporal"
            ) from None
        raise temporal_unavailable() from None
    except RuntimeError:
        raise temporal_unavailable() from None


async def _decode(converter: DataConverter, payloads: Payloads) -> list[Any]:
    if not payloads.payloads:
        return []
    return await converter.decode(payloads.payloads)


def _actor(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {"id": value.get("id"), "role": value.get("role"), "agency": value.get("agency")}


def _fires_at(clock: datetime, timeout: timedelta) -> datetime:
    """When a timer set at ``clock`` fires, to the nearest second. The workflow counted its timeout from its own
    ``now``, which is its task's start give or take some milliseconds (the task's start is the closest moment the
    history records), and deadlines fall on whole seconds: a deadline at midnight reads as midnight."""
    return (clock + timeout + timedelta(milliseconds=500)).replace(microsecond=0)


async def _entry(event: HistoryEvent, converter: DataConverter, clock: datetime | None) -> HistoryEntry | None:
    """``clock``: the workflow's ``now`` when it wrote ``event``: its task's start, or the completion of a local
    activity it waited for in that task."""
    at = event.event_time.ToDatetime(tzinfo=UTC)
    t = event.event_type
    if t == _E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        inputs = await _decode(converter, event.workflow_execution_started_event_attributes.input)
        first = inputs[0] if inputs and isinstance(inputs[0], dict) else {}
        return HistoryEntry(
            event.event_id,
            at,
            "filed",
            {"case_id": first.get("case_id"), "by": _actor(first.get("filed_by"))},
            state="received",
        )
    if t == _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        args = await _decode(converter, request.input.args)
        detail: dict[str, Any] = {"update": request.input.name, "update_id": request.meta.update_id}
        if args and isinstance(args[0], dict):
            detail |= {"action": args[0].get("event"), "by": _actor(args[0].get("actor"))}
            detail["fields"] = sorted((args[0].get("payload") or {}).keys())
        return HistoryEntry(event.event_id, at, "action_accepted", detail)
    if t == _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        if event.workflow_execution_update_completed_event_attributes.outcome.HasField("failure"):
            return HistoryEntry(
                event.event_id,
                at,
                "action_failed",
                {
                    "update_id": event.workflow_execution_update_completed_event_attributes.meta.update_id,
                    "reason": event.workflow_execution_update_completed_event_attributes.outcome.failure.message,
                },
            )
        result = await _decode(converter, event.workflow_execution_update_completed_event_attributes.outcome.success)
        summary = result[0] if result and isinstance(result[0], dict) else {}
        return HistoryEntry(
            event.event_id,
            at,
            "action_completed",
            {
                "update_id": event.workflow_execution_update_completed_event_attributes.meta.update_id,
                "seq": summary.get("seq"),
            },
            state=summary.get("status"),
        )
    if t == _E.EVENT_TYPE_TIMER_STARTED:
        timeout = event.timer_started_event_attributes.start_to_fire_timeout
        return HistoryEntry(
            event.event_id,
            at,
            "deadline_set",
            {
                "timer_id": event.timer_started_event_attributes.timer_id,
                "fires_in_seconds": timeout.ToSeconds(),
                "fires_at": _fires_at(clock or at, timeout.ToTimedelta()).isoformat(),
            },
        )
    if t == _E.EVENT_TYPE_TIMER_FIRED:
        return HistoryEntry(
            event.event_id, at, "deadline_fired", {"timer_id": event.timer_fired_event_attributes.timer_id}
        )
    if t == _E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        return HistoryEntry(
            event.event_id, at, "signal", {"name": event.workflow_execution_signaled_event_attributes.signal_name}
        )
    if t == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return HistoryEntry(
            event.event_id, at, "activity", {"name": event.activity_task_scheduled_event_attributes.activity_type.name}
        )
    if t == _E.EVENT_TYPE_MARKER_RECORDED:
        return await _marker_entry(event, at, converter)
    if t == _E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        return HistoryEntry(
            event.event_id,
            at,
            "agency_task_started",
            {"workflow_id": event.start_child_workflow_execution_initiated_event_attributes.workflow_id},
        )
    if t == _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
        return HistoryEntry(
            event.event_id,
            at,
            "agency_task_ended",
            {"workflow_id": event.child_workflow_execution_completed_event_attributes.workflow_execution.workflow_id},
        )
    if t in (_E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW):
        return HistoryEntry(
            event.event_id,
            at,
            "workflow_" + EventType.Name(t).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower(),
            {},
        )
    return None  # workflow tasks and other engine bookkeeping


async def _marker_entry(event: HistoryEvent, at: datetime, converter: DataConverter) -> HistoryEntry:
    """A local activity; a read-model write that left its record says which transition it was, who made it and
    the state it left (its data and the complaint stay out: this view says who acted, not what was written)."""
    from activities.projection import RECORD_TRANSITION
    from activities.rebuild import local_activity

    detail: dict[str, Any] = {"marker": event.marker_recorded_event_attributes.marker_name}
    found = local_activity(event)
    if found is None:
        return HistoryEntry(event.event_id, at, "local_activity", detail)
    detail["activity"] = found.activity_type
    if found.activity_type != RECORD_TRANSITION or found.result is None:
        return HistoryEntry(event.event_id, at, "local_activity", detail)
    decoded = await converter.decode([found.result])
    change = decoded[0].get("event") if isinstance(decoded[0], dict) else None
    if not isinstance(change, dict):  # a write before writes answered with their record
        return HistoryEntry(event.event_id, at, "local_activity", detail)
    detail = {
        "seq": change.get("seq"),
        "event": change.get("event"),
        "from_state": change.get("from_state"),
        "by": _actor(change.get("actor")),
    }
    return HistoryEntry(event.event_id, at, "transition", detail, state=change.get("to_state"))


async def entries_of_runs(runs: list[WorkflowHistory], converter: DataConverter) -> list[HistoryEntry]:
    """The entries of every run, in order (event ids start again with each run)."""
    return [entry for run in runs for entry in await history_entries(run, converter)]


async def history_entries(history: WorkflowHistory, converter: DataConverter) -> list[HistoryEntry]:
    """The history's events that tell the case's story, decoded."""
    from activities.rebuild import completed_at

    entries, clock = [], None
    for event in history.events:
        if event.event_type == _E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            clock = event.event_time.ToDatetime(tzinfo=UTC)
        elif (done := completed_at(event)) is not None and (clock is None or done > clock):
            # The workflow's clock after a local activity is its completion (a timer set after a slow write
            # counts from there: under load, more than the half second _fires_at rounds away).
            clock = done
        if (entry := await _entry(event, converter, clock)) is not None:
            entries.append(entry)
    return entries


def state_as_of(entries: list[HistoryEntry], moment: datetime) -> str | None:
    """The last state the history states at or before ``moment`` (None before the case was filed)."""
    state = None
    for entry in entries:
        if entry.at > moment:
            break
        if entry.state is not None:
            state = entry.state
    return state


async def check_against_history(
    report: ChainReport, rows: list[CaseEvent], runs: list[WorkflowHistory], converter: DataConverter
) -> ChainReport:
    """The event log must say what Temporal's history says: every row as the history records its transition
    (the records the writes left there); for a history recorded before the writes left them, each action's
    resulting seq and state. ``report`` is the chain's own check, ``rows`` the case's event log."""
    from activities.rebuild import records_in_history

    by_seq = {row.seq: row for row in rows}
    records = await records_in_history(converter, runs)
    if records is not None:
        return _against_records(by_seq, records, report)
    for entry in await entries_of_runs(runs, converter):
        seq = entry.detail.get("seq") if entry.kind == "action_completed" else (1 if entry.kind == "filed" else None)
        if seq is None or entry.state is None:
            continue
        row = by_seq.get(seq)
        if row is None or row.to_state != entry.state:
            found = row.to_state if row is not None else "nothing"
            problem = f"the event log says {found}, Temporal's history says {entry.state}"
            return ChainReport(report.case_id, report.rows, seq, problem)
    return report


def _against_records(rows: dict[int, CaseEvent], records: list[Any], report: ChainReport) -> ChainReport:
    """Each row must be the timeline row its transition's record makes, field for field (a row the history does
    not record yet, after the last, is a write still in flight)."""
    from activities.projection import chained
    from store.audit import chain_row
    from store.chain import CHAINED_FIELDS, event_hash

    prev = None
    for rec in records:
        expected = chained(rec.event, prev)
        prev = expected["hash"]
        row = rows.get(rec.event.seq)
        if row is None:
            problem = f"missing from the event log; Temporal's history records {rec.event.event}"
            return ChainReport(report.case_id, report.rows, rec.event.seq, problem)
        if row.to_state != expected["to_state"]:
            problem = f"the event log says {row.to_state}, Temporal's history says {expected['to_state']}"
            return ChainReport(report.case_id, report.rows, rec.event.seq, problem)
        if row.hash == expected["hash"]:
            continue  # the same content after the same predecessor
        found = chain_row(row)
        # Field by field, as the hash sees each one (times in UTC, data as canonical JSON).
        differ = [
            name
            for name in CHAINED_FIELDS
            if event_hash(None, {name: found[name]}) != event_hash(None, {name: expected[name]})
        ]
        if differ:
            verb = "differs" if len(differ) == 1 else "differ"
            problem = f"{', '.join(differ)} {verb} from what Temporal's history records"
            return ChainReport(report.case_id, report.rows, rec.event.seq, problem)
    return report


def history_json(history: WorkflowHistory) -> dict[str, Any]:
    """The history as ``temporal workflow show --output json`` writes it (what ``WorkflowHistory.from_json``
    and ``rongtuk replay --history-file`` read); payloads stay encrypted."""
    return history.to_json_dict()
