"""``AgencyTaskWorkflow``: the clock of one agency's task on a case, as a child of ``ComplaintWorkflow``.

Each assigned agency gets one, with its own deadline (acceptance, then response, moved by extensions). The
child fires that deadline's reminder, breach and escalation alarms and signals them to the case, which
records them on the timeline and notifies; the case tells the child when the deadline moves or the task ends.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.models import Alarm, Deadline, TaskAlarm, TaskInput

TASK_ALARM_SIGNAL = "task_alarm"


@workflow.defn
class AgencyTaskWorkflow:
    def __init__(self) -> None:
        self._deadline: Deadline | None = None
        self._finished = False
        self._changed = False

    @workflow.run
    async def run(self, inp: TaskInput) -> None:
        self._deadline = inp.deadline
        parent = workflow.get_external_workflow_handle(inp.parent_workflow_id)
        while not self._finished:
            alarm = self._deadline.next_alarm() if self._deadline else None
            self._changed = False
            timeout = max(alarm.at - workflow.now(), timedelta(0)) if alarm else None
            try:
                await workflow.wait_condition(lambda: self._changed or self._finished, timeout=timeout)
            except TimeoutError:
                if alarm is None or self._deadline is None or alarm not in self._deadline.alarms:
                    continue
                alarm.fired = True
                signal = TaskAlarm(inp.agency, workflow.info().workflow_id, alarm, self._deadline.due_at)
                try:
                    await parent.signal(TASK_ALARM_SIGNAL, signal)
                except ApplicationError:
                    # The case ended (terminated or reset) without telling this task: nothing left to time.
                    workflow.logger.warning("case workflow gone; the task's clock stops")
                    return
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.signal
    def set_deadline(self, deadline: Deadline | None) -> None:
        """The task's deadline moved (accepted: now the response is due; extension approved)."""
        self._deadline = deadline
        self._changed = True

    @workflow.signal
    def finish(self) -> None:
        """The task is over (answered, refused, cancelled): no more alarms."""
        self._finished = True

    @workflow.query
    def deadline(self) -> Deadline | None:
        return self._deadline

    @workflow.query
    def pending_alarms(self) -> list[Alarm]:
        return [a for a in self._deadline.alarms if not a.fired] if self._deadline else []
