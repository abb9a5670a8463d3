"""``ComplaintWorkflow``: one durable workflow per case, executing the process table.

Human actions arrive as the ``act`` update. Its validator asks the table (``process.decide``) whether the
action is allowed now, so a refused action never reaches the history. Every transition is projected into the
read model (local activity) and fires the notification activity before the update returns.

Deadlines are timers in the workflow: the case's own (screening, waiting for information, stage 2) here, and
each agency task's in an ``AgencyTaskWorkflow`` child that signals its alarms back. Reminders, breaches and
escalations are transitions of the table like any other, made by the system.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from dateutil.relativedelta import relativedelta

from workflows import search_attributes as sa
from workflows.agency_task import TASK_ALARM_SIGNAL, AgencyTaskWorkflow
from workflows.models import (
    ActionRequest,
    AgencyTask,
    Alarm,
    CaseEvent,
    CaseInput,
    CaseState,
    CaseSummary,
    DaysLeftRequest,
    Deadline,
    NotificationRequest,
    PausedClock,
    PolicySnapshot,
    ProjectionRequest,
    ScheduleRequest,
    TaskAlarm,
    TaskInput,
)
from workflows.process import (
    ACTIVE_TASK,
    FILED_LABEL,
    INITIAL_STATE,
    OPEN_TASK,
    SETTLED_STATES,
    TERMINAL_STATES,
    Actor,
    Audience,
    Context,
    Decision,
    Role,
    State,
    TaskStatus,
    TaskView,
    Transition,
    decide,
    transition_for,
)

T = TypeVar("T")
ACTION_NOT_ALLOWED = "ActionNotAllowed"
SYSTEM = Actor("rongtuk", Role.SYSTEM)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# States whose deadline belongs to the case itself; in the agency phase the tasks carry theirs.
CASE_CLOCK_STATES = frozenset(
    {State.RECEIVED, State.SCREENING, State.AWAITING_INFO, State.STAGE2, State.STAGE2_INVESTIGATION}
)
ALARM_EVENTS = {
    "reminder": "sla_reminder",
    "breach": "sla_breach",
    "escalation": "sla_escalation",
    "info_reminder": "info_reminder",
    "lapse": "lapse",
}


def workflow_id_for(case_id: str) -> str:
    """The workflow id of a case: derived from the case number, so any process can address it."""
    return f"complaint-{case_id}"


@workflow.defn
class ComplaintWorkflow:
    def __init__(self) -> None:
        self._case: CaseState | None = None
        self._filed = False
        self._changed = False
        self._policy = PolicySnapshot()
        self._search_attributes = True
        # Serialises transitions (updates, alarms, signals) so they take sequence numbers and reach the read
        # model in order.
        self._lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSummary:
        now = workflow.now()
        self._search_attributes = inp.search_attributes
        self._policy = await self._local("sla_policy", None, PolicySnapshot)
        channel = str(inp.complaint.get("channel", "web"))
        case = self._case = CaseState(
            case_id=inp.case_id,
            tracking_code=inp.tracking_code,
            status=INITIAL_STATE,
            received_at=now,
            channel=channel,
            category=inp.complaint.get("category"),
            occurred_on=inp.complaint.get("occurred_on"),
        )
        async with self._lock:
            case.expected_by = (await self._schedule(now, "answer")).due_at
            case.deadline = await self._schedule(now, "screening")
            await self._record(
                event="filed",
                from_state=None,
                actor=inp.filed_by,
                data={"channel": channel, "label": list(FILED_LABEL)},
                audiences=[Audience.COMPLAINANT],
                complaint=inp.complaint,
            )
        self._filed = True
        await self._run_clock()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._summary()

    async def _run_clock(self) -> None:
        """Sleep until the case's next alarm (or the end of its retention) unless something changes first."""
        case = self.case
        while True:
            if case.status in TERMINAL_STATES:
                return
            settled = case.status in SETTLED_STATES
            if settled and case.retain_until is not None and workflow.now() >= case.retain_until:
                return
            alarm = case.deadline.next_alarm() if case.deadline else None
            wake = [t for t in (alarm.at if alarm else None, case.retain_until if settled else None) if t]
            self._changed = False
            timeout = max(min(wake) - workflow.now(), timedelta(0)) if wake else None
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=timeout)
            except TimeoutError:
                if alarm is None:
                    continue
                async with self._lock:
                    # The deadline may have been replaced while this timer slept.
                    if case.deadline and any(a is alarm for a in case.deadline.alarms) and not alarm.fired:
                        await self._fire(alarm, case.deadline, task=None)

    @property
    def case(self) -> CaseState:
        if self._case is None:  # only before the first workflow task has run
            raise ApplicationError("the case is still being filed", "not_filed", type=ACTION_NOT_ALLOWED)
        return self._case

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.update
    async def receipt(self) -> CaseSummary:
        """Wait until intake is durable and projected, then return what the complainant is told."""
        await workflow.wait_condition(lambda: self._filed)
        return self._summary()

    @workflow.update
    async def act(self, req: ActionRequest) -> CaseSummary:
        """Perform a human action of the process table (screen, accept, agency_accept, respond, ...)."""
        async with self._lock:
            # Re-check under the lock: an update that waited for it may find the case has moved on.
            decision = self._decide(req)
            if not decision.allowed or decision.transition is None or decision.target is None:
                raise ApplicationError(decision.reason, decision.code, type=ACTION_NOT_ALLOWED, non_retryable=True)
            await self._perform(decision.transition, decision.target, req.actor, req.payload)
        return self._summary()

    @act.validator
    def _validate_act(self, req: ActionRequest) -> None:
        if not self._filed:
            raise ApplicationError("the case is still being filed", "not_filed", type=ACTION_NOT_ALLOWED)
        if req.actor.role is Role.SYSTEM:
            raise ApplicationError("system events are not actions", "role_not_allowed", type=ACTION_NOT_ALLOWED)
        decision = self._decide(req)
        if not decision.allowed:
            raise ApplicationError(decision.reason, decision.code, type=ACTION_NOT_ALLOWED)

    @workflow.signal(name=TASK_ALARM_SIGNAL)
    async def task_alarm(self, signal: TaskAlarm) -> None:
        """An agency task's deadline alarm fired in its child workflow."""
        await workflow.wait_condition(lambda: self._filed)
        async with self._lock:
            task = next((t for t in self.case.tasks if t.workflow_id == signal.workflow_id), None)
            if task is None or task.status not in OPEN_TASK or task.deadline is None:
                return  # the task ended while the signal was on its way
            alarm = next(
                (
                    a
                    for a in task.deadline.alarms
                    if (a.kind, a.level, a.at) == (signal.alarm.kind, signal.alarm.level, signal.alarm.at)
                    and not a.fired
                ),
                None,
            )
            if alarm is not None:
                await self._fire(alarm, task.deadline, task=task)

    @workflow.signal
    async def recalculate(self) -> None:
        """The calendar or policy changed (e.g. the Cabinet added a holiday): move every running deadline."""
        await workflow.wait_condition(lambda: self._filed)
        async with self._lock:
            case = self.case
            if case.status in TERMINAL_STATES | SETTLED_STATES:
                return
            self._policy = await self._local("sla_policy", None, PolicySnapshot)
            before = (case.expected_by, case.due_at())
            acknowledged = case.deadline is not None and case.deadline is case.stage2_response
            if case.deadline:
                case.deadline = await self._reschedule(case.deadline)
            if acknowledged:
                case.stage2_response = case.deadline
            elif case.stage2_response:
                case.stage2_response = await self._reschedule(case.stage2_response)
            for task in self._open_tasks():
                if task.deadline:
                    task.deadline = await self._reschedule(task.deadline)
                    await self._move_task_deadline(task)
            if case.stage == 2 and case.stage2_response:
                case.expected_by = case.stage2_response.due_at
            elif case.paused is None:
                promise = (await self._schedule(case.received_at, "answer")).due_at
                case.expected_by = max(promise, self._latest_due() or promise)
            if (case.expected_by, case.due_at()) != before:
                transition = transition_for(case.status, "deadlines_moved")
                if transition is not None:
                    await self._perform(transition, case.status, SYSTEM, {})

    @workflow.query
    def summary(self) -> CaseSummary:
        """The case as it stands (status, next expected date, agencies)."""
        return self._summary()

    @workflow.query
    def state(self) -> CaseState:
        """The whole workflow state, for auditors and debugging."""
        return self.case

    # --- the table -----------------------------------------------------------------------------------------

    def _context(self) -> Context:
        case = self.case
        return Context(
            tasks=tuple(TaskView(t.agency, t.status, t.extension_pending > 0, t.extended_by) for t in case.tasks),
            now=workflow.now(),
            rejections=case.rejections,
            max_rejections=self._policy.max_rejections,
            extension_allowance=self._policy.extension_allowance,
            review_deadline=case.review_deadline,
            late_review_allowed=case.late_review_allowed,
        )

    def _decide(self, req: ActionRequest) -> Decision:
        return decide(self.case.status, req.event, req.actor, req.payload, self._context())

    async def _perform(
        self,
        transition: Transition,
        target: State,
        actor: Actor,
        payload: dict[str, Any],
        *,
        data: dict[str, Any] | None = None,
        audiences: set[Audience] | None = None,
        agencies: list[str] | None = None,
    ) -> None:
        """Apply a transition: its effects on the case, then record, project and notify it."""
        case, now = self.case, workflow.now()
        from_state = case.status
        # Agencies whose task this transition ends (reassign, proceed, withdraw) still hear of it.
        involved = [t.agency for t in self._open_tasks()]
        case.status = target
        await self._effects(transition.event, actor, payload, now)
        if target not in CASE_CLOCK_STATES:
            case.deadline = None
        if target in TERMINAL_STATES | SETTLED_STATES and case.closed_at is None:
            case.closed_at = now
        recorded = {k: v for k, v in payload.items() if v not in (None, "", [])} | (data or {})
        await self._record(
            event=transition.event,
            from_state=from_state,
            actor=actor,
            data=recorded,
            audiences=sorted(set(transition.notify) | (audiences or set())),
            public=transition.public,
            agencies=agencies if agencies is not None else self._involved(involved),
        )

    def _involved(self, before: list[str]) -> list[str]:
        """Agencies to tell of a transition: those working on the case before or after it, or that answered."""
        now_working = [t.agency for t in self.case.tasks if t.status in ACTIVE_TASK]
        return list(dict.fromkeys([*before, *now_working]))

    async def _effects(self, event: str, actor: Actor, payload: dict[str, Any], now: datetime) -> None:
        """What each event does to the case beyond its state (the table says where it goes)."""
        case = self.case
        own = next((t for t in case.tasks if t.agency == actor.agency and t.status in OPEN_TASK), None)
        match event:
            case "screen":
                case.handler = actor.id
            case "accept":
                case.category, case.stage = str(payload["category"]), 1
                await self._assign(list(payload["agencies"]), now)
            case "assign":
                await self._assign(list(payload["agencies"]), now)
            case "reassign":
                await self._end_tasks(OPEN_TASK, TaskStatus.CANCELLED)
                await self._assign(list(payload["agencies"]), now)
            case "need_info":
                await self._pause(now)
            case "reply":
                await self._resume(now)
            case "out_of_scope" | "duplicate" | "lapse":
                case.closure_reason = {"lapse": "lapsed"}.get(event, event)
                case.duplicate_of = payload.get("original_case_id")
                case.retain_until = now + timedelta(days=self._policy.retention_days)
            case "escalate_stage2" | "request_review":
                await self._start_stage2(now)
            case "agency_accept" if own is not None:
                own.status, own.accepted_at = TaskStatus.ACCEPTED, now
                own.deadline = await self._schedule(now, "stage1_response")
                own.breached_at, own.escalation_level = None, 0
                await self._move_task_deadline(own)
            case "agency_reject" if own is not None:
                own.status, own.reason = TaskStatus.REJECTED, payload.get("reason")
                case.rejections += 1
                await self._finish_task(own)
            case "proceed":
                waiting = (TaskStatus.ASSIGNED,) if case.status is State.STAGE1 else OPEN_TASK
                await self._end_tasks(waiting, TaskStatus.CANCELLED)
            case "request_extension" if own is not None:
                own.extension_pending = int(payload["working_days"])
            case "approve_extension" | "refuse_extension":
                task = next(t for t in case.tasks if t.agency == payload["agency"] and t.extension_pending)
                if event == "approve_extension" and task.accepted_at and task.deadline:
                    task.extended_by += task.extension_pending
                    task.deadline = await self._reschedule(
                        task.deadline, working_days=self._policy.stage1_response + task.extended_by
                    )
                    await self._move_task_deadline(task)
                    if case.expected_by is None or task.deadline.due_at > case.expected_by:
                        case.expected_by = task.deadline.due_at
                task.extension_pending = 0
            case "respond" if own is not None:
                own.status, own.responded_at, own.outcome = TaskStatus.RESPONDED, now, str(payload["outcome"])
                case.outcome = own.outcome
                case.root_cause = payload.get("root_cause") or case.root_cause
                case.action_taken = payload.get("action_taken") or case.action_taken
                await self._finish_task(own)
            case "close":
                case.outcome = payload.get("outcome") or case.outcome
                case.stage1_closed_at = now
                case.review_deadline = self._review_deadline(now)
                case.retain_until = case.review_deadline + timedelta(days=self._policy.retention_days)
            case "rate":
                case.rating, case.rating_comment = int(payload["rating"]), payload.get("comment")
            case "allow_late_review":
                case.late_review_allowed = True
            case "reopen":
                case.closed_at = case.closure_reason = case.retain_until = None
                case.deadline = await self._schedule(now, "screening")
                case.expected_by = (await self._schedule(now, "answer")).due_at
            case "acknowledge":
                case.deadline = case.stage2_response
            case "extend_stage2" if case.deadline is not None:
                case.deadline = await self._reschedule(
                    case.deadline, working_days=case.deadline.working_days + int(payload["working_days"])
                )
                case.stage2_response = case.deadline
                case.expected_by = case.deadline.due_at
            case "respond_stage2":
                until = now + relativedelta(months=self._policy.ombudsman_months)
                payload["ombudsman_until"] = until.date().isoformat()
                case.outcome = str(payload["outcome"])
                case.root_cause = payload.get("root_cause") or case.root_cause
                case.action_taken = payload.get("action_taken") or case.action_taken
                case.stage2_closed_at = case.closed_at = now
                case.retain_until = until + timedelta(days=self._policy.retention_days)
            case "withdraw":
                await self._end_tasks(OPEN_TASK, TaskStatus.CANCELLED)
            case "escalate":
                case.escalation_level += 1

    # --- deadlines -----------------------------------------------------------------------------------------

    async def _fire(self, alarm: Alarm, deadline: Deadline, *, task: AgencyTask | None) -> None:
        """A deadline's alarm went off: record it as the system's transition and notify."""
        alarm.fired = True
        case = self.case
        event = ALARM_EVENTS[alarm.kind]
        transition = transition_for(case.status, event)
        if transition is None:
            return
        if alarm.kind in {"breach", "escalation"}:
            # The case keeps its first breach and highest rung whichever clock it was; a task keeps its own.
            for holder in (case, task) if task is not None else (case,):
                holder.breached_at = holder.breached_at or workflow.now()
                holder.escalation_level = max(holder.escalation_level, alarm.level)
        data: dict[str, Any] = {"rule": deadline.rule, "due_at": deadline.due_at.isoformat()}
        if alarm.level:
            data["level"] = alarm.level
        if task is not None:
            data["agency"] = task.agency
        await self._perform(
            transition,
            transition.target,
            SYSTEM,
            {},
            data=data,
            audiences=set(alarm.audiences),
            agencies=[task.agency] if task else None,
        )

    async def _schedule(self, start: datetime, rule: str, working_days: int | None = None) -> Deadline:
        return await self._local("sla_schedule", ScheduleRequest(start, rule, working_days), Deadline)

    async def _reschedule(self, deadline: Deadline, *, working_days: int | None = None) -> Deadline:
        """The same deadline computed again (new calendar or allowance); alarms already fired stay fired."""
        fresh = await self._schedule(deadline.start, deadline.rule, working_days or deadline.working_days)
        fired = {(a.kind, a.level) for a in deadline.alarms if a.fired}
        for alarm in fresh.alarms:
            alarm.fired = (alarm.kind, alarm.level) in fired
        return fresh

    async def _pause(self, now: datetime) -> None:
        """Stop the clocks while the complainant is asked for information; keep what was left of them."""
        case = self.case
        running = case.deadline
        left = await self._days_left(now, running.due_at) if running else 0
        answer_left = await self._days_left(now, case.expected_by) if case.expected_by else 0
        case.paused = PausedClock(running.rule if running else "screening", left, answer_left)
        case.deadline = await self._schedule(now, "awaiting_info_lapse")

    async def _resume(self, now: datetime) -> None:
        """Restart the clocks with the working days that were left when they stopped."""
        case = self.case
        paused = case.paused or PausedClock("screening", 1, 0)
        case.deadline = await self._schedule(now, paused.rule, max(paused.remaining, 1))
        promise = await self._schedule(now, "answer", max(paused.answer_remaining, 1))
        case.expected_by = max(promise.due_at, case.deadline.due_at)
        case.paused = None

    async def _start_stage2(self, now: datetime) -> None:
        case = self.case
        case.stage, case.stage2_started_at = 2, now
        case.closed_at = case.retain_until = None
        case.deadline = await self._schedule(now, "stage2_acknowledge")
        case.stage2_response = await self._schedule(now, "stage2_response")
        case.expected_by = case.stage2_response.due_at

    def _review_deadline(self, replied: datetime) -> datetime:
        """Stage 2 may be asked for within N months of the stage 1 reply or M of the event, whichever is later."""
        case = self.case
        by_reply: datetime = replied + relativedelta(months=self._policy.review_request_months)
        if not case.occurred_on:  # the event's date is unknown: the reply's limit alone applies
            return by_reply
        occurred = date.fromisoformat(case.occurred_on)
        by_event: datetime = datetime.combine(occurred, replied.timetz()) + relativedelta(
            months=self._policy.complaint_months
        )
        return max(by_reply, by_event)

    def _latest_due(self) -> datetime | None:
        dues = [t.deadline.due_at for t in self._open_tasks() if t.deadline]
        return max(dues) if dues else None

    async def _days_left(self, now: datetime, due_at: datetime) -> int:
        return await self._local("working_days_left", DaysLeftRequest(now, due_at), int)

    # --- agency tasks --------------------------------------------------------------------------------------

    def _open_tasks(self) -> list[AgencyTask]:
        return [t for t in self.case.tasks if t.status in OPEN_TASK]

    async def _assign(self, agencies: list[str], now: datetime) -> None:
        """One task, with its own clock in a child workflow, per agency not already working on the case."""
        case = self.case
        busy = {t.agency for t in self._open_tasks()}
        parent_id = workflow.info().workflow_id
        for agency in agencies:
            if agency in busy:
                continue
            case.task_counter += 1
            deadline = await self._schedule(now, "agency_acceptance")
            task = AgencyTask(
                agency=agency, workflow_id=f"{parent_id}-task-{case.task_counter}", assigned_at=now, deadline=deadline
            )
            case.tasks.append(task)
            await workflow.start_child_workflow(
                AgencyTaskWorkflow.run,
                TaskInput(case_id=case.case_id, agency=agency, parent_workflow_id=parent_id, deadline=deadline),
                id=task.workflow_id,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            )

    async def _end_tasks(self, statuses: Collection[TaskStatus], to: TaskStatus) -> None:
        for task in self.case.tasks:
            if task.status in statuses:
                task.status = to
                await self._finish_task(task)

    async def _move_task_deadline(self, task: AgencyTask) -> None:
        """Tell the task's child that its deadline moved (acceptance, extension, recalculation)."""
        await workflow.get_external_workflow_handle(task.workflow_id).signal(
            AgencyTaskWorkflow.set_deadline, task.deadline
        )

    async def _finish_task(self, task: AgencyTask) -> None:
        """Tell the task's child its work is over, so its clock stops."""
        await workflow.get_external_workflow_handle(task.workflow_id).signal(AgencyTaskWorkflow.finish)

    # --- recording -----------------------------------------------------------------------------------------

    async def _record(
        self,
        *,
        event: str,
        from_state: State | None,
        actor: Actor,
        data: dict[str, Any],
        audiences: list[Audience],
        public: bool = True,
        complaint: dict[str, Any] | None = None,
        agencies: list[str] | None = None,
    ) -> None:
        """Give the transition its sequence number, project it, mark it in search attributes, notify."""
        case = self.case
        case.seq += 1
        self._changed = True
        record = CaseEvent(
            case_id=case.case_id,
            seq=case.seq,
            event=event,
            from_state=from_state,
            to_state=case.status,
            actor=actor,
            at=workflow.now(),
            data=data,
            public=public,
        )
        workflow.logger.info("transition %s -> %s (%s)", from_state, case.status, event)
        await workflow.execute_local_activity(
            "project_event",
            ProjectionRequest(event=record, case=case, complaint=complaint),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        )
        self._upsert_search_attributes()
        await workflow.execute_activity(
            "notify",
            NotificationRequest(
                case_id=case.case_id,
                seq=case.seq,
                event=event,
                state=case.status,
                audiences=audiences,
                agencies=agencies if agencies is not None else self._involved([]),
                expected_by=case.expected_by,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=NOTIFY_RETRY,
            result_type=int,
        )

    def _overdue(self) -> bool:
        deadlines = [self.case.deadline] + [t.deadline for t in self._open_tasks()]
        return any(a.fired and a.kind in {"breach", "escalation"} for d in deadlines if d for a in d.alarms)

    def _upsert_search_attributes(self) -> None:
        if not self._search_attributes:
            return
        case, due = self.case, self.case.due_at()
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(case.status.value),
                sa.AGENCY.value_set([t.agency for t in self._open_tasks()]),
                sa.DUE_AT.value_set(due) if due else sa.DUE_AT.value_unset(),
                sa.OVERDUE.value_set(self._overdue()),
            ]
        )

    async def _local(self, name: str, arg: Any, result_type: type[T]) -> T:
        args = [] if arg is None else [arg]
        return await workflow.execute_local_activity(  # type: ignore[no-any-return]
            name,
            args=args,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_RETRY,
            result_type=result_type,
        )

    def _summary(self) -> CaseSummary:
        case = self.case
        return CaseSummary(
            case_id=case.case_id,
            tracking_code=case.tracking_code,
            status=case.status,
            seq=case.seq,
            expected_by=case.expected_by,
            agencies=[t.agency for t in case.tasks if t.status in ACTIVE_TASK],
            due_at=case.due_at(),
        )
