"""``rongtuk sla recalculate``: move running cases' deadlines after the calendar or the SLA policy changed.

Each running case is asked through the ``recalculate_deadlines`` update, which moves its timers (agency tasks'
included) with the workers' calendar and policy and answers with the dates that moved, so the report is
what the cases did. ``--dry-run`` asks nothing of the cases: it reads each one's state and policy (queries)
and computes the same recalculation here, with this machine's configuration, on a copy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from temporalio.client import Client
from temporalio.service import RPCError

from activities.sla import SlaActivities, snapshot_of
from sla.calendar import BANGKOK
from sla.rules import DeadlineRule
from workflows.case_rules import preview_recalculation
from workflows.complaint import ComplaintWorkflow
from workflows.models import Deadline, DeadlineMove, ScheduleRequest, workflow_id_for

RUNNING = "WorkflowType = 'ComplaintWorkflow' AND ExecutionStatus = 'Running'"


@dataclass
class RecalculationReport:
    """The running cases looked at, the dates that moved (or would), and the cases that could not be asked."""

    checked: int = 0
    moves: list[DeadlineMove] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def cases_moved(self) -> int:
        return len({m.case_id for m in self.moves})


class _LocalScheduler:
    """The scheduler port computed here, with this machine's calendar and policy (for the dry run)."""

    def __init__(self, sla: SlaActivities) -> None:
        self.sla = sla

    async def schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        return self.sla.schedule_for(ScheduleRequest(start, rule, working_days))

    async def days_left(self, now: datetime, due_at: datetime) -> int:
        return self.sla.calendar.working_days_between(now, due_at)


async def _running(client: Client, case_ids: Iterable[str] | None) -> AsyncIterator[str]:
    if case_ids is not None:
        for case_id in case_ids:
            yield workflow_id_for(case_id)
        return
    async for execution in client.list_workflows(RUNNING):
        yield execution.id


async def recalculate_cases(
    client: Client, sla: SlaActivities, *, dry_run: bool = False, case_ids: Iterable[str] | None = None
) -> RecalculationReport:
    """Recalculate every running case (or ``case_ids``); with ``dry_run``, only say what would move."""
    report = RecalculationReport()
    new = snapshot_of(sla.policy, sla.category_classes)
    scheduler = _LocalScheduler(sla)
    async for workflow_id in _running(client, case_ids):
        handle = client.get_workflow_handle(workflow_id)
        try:
            if dry_run:
                state = await handle.query(ComplaintWorkflow.state)
                old = await handle.query(ComplaintWorkflow.policy)
                moves = await preview_recalculation(state, old, new, scheduler)
            else:
                moves = await handle.execute_update(ComplaintWorkflow.recalculate_deadlines)
        except RPCError as exc:
            report.failed.append(f"{workflow_id}: {exc.status.name}")
            continue
        report.checked += 1
        report.moves.extend(moves)
    return report


def _day(moment: datetime | None) -> str:
    return moment.astimezone(BANGKOK).isoformat(timespec="minutes") if moment else "-"


def report_lines(report: RecalculationReport, *, dry_run: bool) -> list[str]:
    """The report as the command prints it: one line per date moved, then the totals."""
    lines = [
        f"{m.case_id}  {m.what}{f' ({m.rule})' if m.rule else ''}: {_day(m.before)} -> {_day(m.after)}"
        for m in report.moves
    ]
    verb = "would move" if dry_run else "moved"
    lines.append(
        f"checked {report.checked} running case(s): {report.cases_moved} {verb} "
        f"({len(report.moves)} date(s)), {report.checked - report.cases_moved} unchanged"
    )
    lines += [f"FAILED {failed}" for failed in report.failed]
    return lines
