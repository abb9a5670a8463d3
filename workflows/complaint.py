"""``ComplaintWorkflow``: one durable workflow per case, executing the process table.

Human actions arrive as the ``act`` update. Its validator asks the table (``process.decide``) whether the
action is allowed now, so a refused action never reaches the history; an action that arrives before the case is
filed (sent with the workflow's start by the API) is accepted and decided by the handler once it is.

What a transition does to the case is :class:`workflows.case_rules.CaseRules`' business; this class keeps the
messages, the timers and the effects on the outside world: one local activity per transition writes the read
model and the notification outbox in one transaction, before the update returns.

Deadlines are timers in the workflow: the case's own (screening, waiting for information, stage 2) here, and
each agency task's in an ``AgencyTaskWorkflow`` child that signals its alarms back. Reminders, breaches and
escalations are transitions of the table like any other, made by the system.

A case lives for months; its history stays bounded: repeatable actions have limits (the table's guards) and
the workflow continues as new, carrying its whole state, when its history grows past the policy's limit.
Changes of behaviour are patched (``workflow.patched``) and proven against golden histories
(``tests/workflows/histories``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from activities.projection import PROJECTION_REFUSED, RECORD_TRANSITION, ReadModelActivities
    from activities.screening import ScreeningActivities
    from activities.sla import SlaActivities

from domain.complaint import DEFAULT_CENTRE
from sla.rules import DeadlineRule
from workflows import search_attributes as sa
from workflows.agency_task import TASK_ALARM_SIGNAL, AgencyTaskWorkflow
from workflows.case_rules import SYSTEM, AlarmTransition, CaseRules, case_dates, date_moves
from workflows.models import (
    ActionRequest,
    AgencyTask,
    Alarm,
    AutoScreenRequest,
    CaseEvent,
    CaseInput,
    CaseState,
    CaseSummary,
    DaysLeftRequest,
    Deadline,
    DeadlineMove,
    NotificationRequest,
    PolicySnapshot,
    ProjectionRequest,
    ScheduleRequest,
    TaskAlarm,
    TaskInput,
    TransitionRecord,
    workflow_id_for,
)
from workflows.process import (
    ACTIVE_TASK,
    FILED_LABEL,
    INITIAL_STATE,
    SETTLED_STATES,
    TERMINAL_STATES,
    Actor,
    Audience,
    Role,
    State,
    Transition,
    transition_for,
)

__all__ = ["ACTION_NOT_ALLOWED", "ComplaintWorkflow", "workflow_id_for"]

ACTION_NOT_ALLOWED = "ActionNotAllowed"
LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# The read-model write retries as long as it can succeed (database away), backing off to 30 s; errors that
# never can (bad data) are non-retryable and leave the case marked stuck.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))

# Changes of behaviour since the first recorded version (v1 in tests/workflows/histories):
# - one local activity writes the read model and the outbox (v1: a local activity, then the notify activity);
PATCH_ONE_WRITE = "one-write-per-transition"
# - task children are abandoned rather than cancelled when a run closes, so they outlive continue-as-new;
PATCH_ABANDON_TASKS = "task-children-outlive-runs"
# - a case continues as new when its history passes the policy's limit;
PATCH_CONTINUE_AS_NEW = "continue-as-new"
# - a case filed where auto-screening is on asks the screening before an officer sees it.
PATCH_AUTO_SCREEN = "auto-screen"
# - a case committed by the API first (DB-first intake) keeps the time it was received there.
PATCH_DB_FIRST_INTAKE = "db-first-intake"


@dataclass
class _Scheduler:
    """Deadlines from the worker's calendar, as local activities: recorded once, replayed exactly."""

    async def schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        return await workflow.execute_local_activity_method(
            SlaActivities.sla_schedule,
            ScheduleRequest(start, rule, working_days),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
        )

    async def days_left(self, now: datetime, due_at: datetime) -> int:
        return await workflow.execute_local_activity_method(
            SlaActivities.working_days_left,
            DaysLeftRequest(now, due_at),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
        )


async def _policy() -> PolicySnapshot:
    """The policy figures of this worker's configuration (recorded, so replays see what the case saw)."""
    return await workflow.execute_local_activity_method(
        SlaActivities.sla_policy, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=LOCAL_RETRY
    )


@dataclass
class _TaskClocks:
    """Each agency task's clock is an ``AgencyTaskWorkflow`` child, told by signals when it moves or ends."""

    case_id: str
    parent_id: str

    async def start(self, task: AgencyTask) -> None:
        close = ParentClosePolicy.REQUEST_CANCEL
        if workflow.patched(PATCH_ABANDON_TASKS):
            close = ParentClosePolicy.ABANDON
        await workflow.start_child_workflow(
            AgencyTaskWorkflow.run,
            TaskInput(
                case_id=self.case_id, agency=task.agency, parent_workflow_id=self.parent_id, deadline=task.deadline
            ),
            id=task.workflow_id,
            parent_close_policy=close,
        )

    async def move(self, task: AgencyTask) -> None:
        await workflow.get_external_workflow_handle(task.workflow_id).signal(
            AgencyTaskWorkflow.set_deadline, task.deadline
        )

    async def finish(self, task: AgencyTask) -> None:
        await workflow.get_external_workflow_handle(task.workflow_id).signal(AgencyTaskWorkflow.finish)


@workflow.defn
class ComplaintWorkflow:
    def __init__(self) -> None:
        self._rules: CaseRules | None = None
        self._input: CaseInput | None = None
        self._filed = False
        self._changed = False
        self._search_attributes = True
        # Serialises transitions (updates, alarms, signals) so they take sequence numbers and reach the read
        # model in order.
        self._lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSummary:
        self._input = inp
        self._search_attributes = inp.search_attributes
        workflow_id = workflow.info().workflow_id
        clocks = _TaskClocks(inp.case_id, workflow_id)
        if inp.state is not None:
            # Continued as new: the case carries on from the state the previous run handed over.
            self._rules = CaseRules(
                inp.state, inp.policy or PolicySnapshot(), _Scheduler(), clocks, workflow_id, patched=workflow.patched
            )
            self._filed = True
        else:
            await self._file(inp, clocks, workflow_id)
            if inp.auto_screen and workflow.patched(PATCH_AUTO_SCREEN):
                await self._auto_screen(inp)
        await self._run_clock()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._summary()

    async def _file(self, inp: CaseInput, clocks: _TaskClocks, workflow_id: str) -> None:
        now = workflow.now()
        if inp.received_at is not None and workflow.patched(PATCH_DB_FIRST_INTAKE):
            # The complainant was answered when the API committed the complaint: the clock starts there, and
            # the dates the workflow computes are the ones the receipt already gave (api/service.py).
            now = inp.received_at
        policy = await _policy()
        complaint = inp.complaint
        case = CaseState(
            case_id=inp.case_id,
            tracking_code=inp.tracking_code,
            status=INITIAL_STATE,
            received_at=now,
            channel=complaint.channel.value,
            category=complaint.category,
            occurred_on=complaint.occurred_on.isoformat() if complaint.occurred_on else None,
            kind=complaint.kind.value,
            priority=complaint.priority.value,
            centre=complaint.centre or DEFAULT_CENTRE,
        )
        self._rules = CaseRules(case, policy, _Scheduler(), clocks, workflow_id, patched=workflow.patched)
        async with self._lock:
            await self._rules.file(now)
            filed: dict[str, Any] = {"channel": case.channel, "label": list(FILED_LABEL)}
            if case.out_of_time:  # flagged for screening: taken on only with a reason
                filed |= {"out_of_time": True, "occurred_on": case.occurred_on}
            await self._record(
                event="filed",
                from_state=None,
                actor=inp.filed_by,
                data=filed,
                audiences=[Audience.COMPLAINANT],
                agencies=[],
                complaint=complaint,
            )
        self._filed = True

    async def _auto_screen(self, inp: CaseInput) -> None:
        """Screen and accept the case as the system's decision if the policy is confident enough."""
        try:
            decision = await workflow.execute_activity_method(
                ScreeningActivities.auto_screen,
                AutoScreenRequest(inp.case_id, inp.complaint),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            workflow.logger.warning("auto-screening failed: the case waits for an officer")
            return
        if decision.action != "accept" or not decision.category or not decision.agencies:
            return
        why = {"auto": True, "confidence": round(decision.confidence, 3), "reasons": decision.reasons}
        payload: dict[str, Any] = {"category": decision.category, "agencies": decision.agencies}
        if decision.summary:
            payload["summary"] = decision.summary
        async with self._lock:
            # An officer may have taken the case meanwhile: then theirs is the decision.
            for event, body in (("screen", {}), ("accept", payload)):
                verdict = self.rules.decide(ActionRequest(event, SYSTEM, body), workflow.now())
                if not verdict.allowed or verdict.transition is None or verdict.target is None:
                    return
                await self._perform(verdict.transition, verdict.target, SYSTEM, dict(body), data=why)

    async def _run_clock(self) -> None:
        """Sleep until the case's next alarm (or the end of its retention) unless something changes first."""
        case = self.case
        while True:
            if case.status in TERMINAL_STATES:
                return
            settled = case.status in SETTLED_STATES
            if settled and case.retain_until is not None and workflow.now() >= case.retain_until:
                return
            if self._history_too_long():
                await self._continue_as_new()
            alarm = case.deadline.next_alarm() if case.deadline else None
            wake = [t for t in (alarm.at if alarm else None, case.retain_until if settled else None) if t]
            self._changed = False
            timeout = max(min(wake) - workflow.now(), timedelta(0)) if wake else None
            try:
                # History grows with refused updates too on servers without speculative workflow tasks.
                await workflow.wait_condition(lambda: self._changed or self._over_limit(), timeout=timeout)
            except TimeoutError:
                if alarm is None:
                    continue
                async with self._lock:
                    # The deadline may have been replaced while this timer slept.
                    if case.deadline and any(a is alarm for a in case.deadline.alarms) and not alarm.fired:
                        await self._fire(alarm, case.deadline, task=None)

    def _over_limit(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > self.rules.policy.history_limit
        )

    def _history_too_long(self) -> bool:
        return self._over_limit() and workflow.patched(PATCH_CONTINUE_AS_NEW)

    async def _continue_as_new(self) -> None:
        """Hand the whole case to a fresh run: its history starts again from one event."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
        inp = self._input
        assert inp is not None
        workflow.logger.info("continuing as new at seq %s", self.case.seq)
        workflow.continue_as_new(
            CaseInput(
                case_id=inp.case_id,
                tracking_code=inp.tracking_code,
                complaint=inp.complaint,
                filed_by=inp.filed_by,
                search_attributes=inp.search_attributes,
                state=self.case,
                policy=self.rules.policy,
            )
        )

    @property
    def rules(self) -> CaseRules:
        if self._rules is None:  # only before the first workflow task has run
            raise ApplicationError("the case is still being filed", "not_filed", type=ACTION_NOT_ALLOWED)
        return self._rules

    @property
    def case(self) -> CaseState:
        return self.rules.case

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.update
    async def receipt(self) -> CaseSummary:
        """Wait until intake is durable and projected, then return what the complainant is told."""
        await workflow.wait_condition(lambda: self._filed)
        return self._summary()

    @workflow.update
    async def act(self, req: ActionRequest) -> CaseSummary:
        """Perform a human action of the process table (screen, accept, agency_accept, respond, ...)."""
        if not self._filed:
            # Sent with the start (the API's update-with-start) or while the case is being filed: the table
            # decides once it is. Only then: a wait that is already over would still yield to the event loop,
            # and every recorded history must replay the order it ran in.
            await workflow.wait_condition(lambda: self._filed)
        async with self._lock:
            # Re-check under the lock: an update that waited for it may find the case has moved on.
            decision = self.rules.decide(req, workflow.now())
            if not decision.allowed or decision.transition is None or decision.target is None:
                raise ApplicationError(decision.reason, decision.code, type=ACTION_NOT_ALLOWED, non_retryable=True)
            await self._perform(decision.transition, decision.target, req.actor, req.payload)
        return self._summary()

    @act.validator
    def _validate_act(self, req: ActionRequest) -> None:
        if req.actor.role is Role.SYSTEM:
            raise ApplicationError("system events are not actions", "role_not_allowed", type=ACTION_NOT_ALLOWED)
        if not self._filed:
            return  # accepted now, decided by the handler once the case is filed (and refused there if need be)
        decision = self.rules.decide(req, workflow.now())
        if not decision.allowed:
            # A refusal here is never written to the history: its Thai reason rides along as a second detail.
            raise ApplicationError(decision.reason, decision.code, decision.reason_th, type=ACTION_NOT_ALLOWED)

    @workflow.signal(name=TASK_ALARM_SIGNAL)
    async def task_alarm(self, signal: TaskAlarm) -> None:
        """An agency task's deadline alarm fired in its child workflow."""
        await workflow.wait_condition(lambda: self._filed)
        async with self._lock:
            found = self.rules.task_alarm(signal.workflow_id, signal.alarm)
            if found is not None:
                task, alarm = found
                assert task.deadline is not None
                await self._fire(alarm, task.deadline, task=task)

    @workflow.signal
    async def recalculate(self) -> None:
        """The calendar or policy changed (e.g. the Cabinet added a holiday): move every running deadline."""
        await workflow.wait_condition(lambda: self._filed)
        async with self._lock:
            if self.case.status in TERMINAL_STATES | SETTLED_STATES:
                return
            policy = await _policy()
            if await self.rules.recalculate(policy):
                transition = transition_for(self.case.status, "deadlines_moved")
                if transition is not None:
                    await self._perform(transition, self.case.status, SYSTEM, {})

    @workflow.update
    async def recalculate_deadlines(self) -> list[DeadlineMove]:
        """As the ``recalculate`` signal, answering with the dates that moved (``rongtuk sla recalculate``)."""
        await workflow.wait_condition(lambda: self._filed)
        before = case_dates(self.case)
        await self.recalculate()
        return date_moves(self.case.case_id, before, case_dates(self.case))

    @workflow.query
    def policy(self) -> PolicySnapshot:
        """The policy figures the case runs with (for previews of a recalculation)."""
        return self.rules.policy

    @workflow.query
    def summary(self) -> CaseSummary:
        """The case as it stands (status, next expected date, agencies)."""
        return self._summary()

    @workflow.query
    def state(self) -> CaseState:
        """The whole workflow state, for auditors and debugging."""
        return self.case

    # --- transitions -----------------------------------------------------------------------------------------

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
        """Apply a transition: its effects on the case (the rules), then record, project and notify it."""
        from_state = self.case.status
        involved = await self.rules.apply(transition, target, actor, payload, workflow.now())
        await self._record(
            event=transition.event,
            from_state=from_state,
            actor=actor,
            data=self.rules.recorded | (data or {}),
            audiences=sorted(set(transition.notify) | (audiences or set())),
            public=transition.public,
            agencies=agencies if agencies is not None else involved,
        )

    async def _fire(self, alarm: Alarm, deadline: Deadline, *, task: AgencyTask | None) -> None:
        """A deadline's alarm went off: record it as the system's transition and notify."""
        fired: AlarmTransition | None = self.rules.fire(alarm, deadline, task, workflow.now())
        if fired is None:
            return
        await self._perform(
            fired.transition,
            fired.transition.target,
            SYSTEM,
            dict(fired.payload),
            data=fired.data,
            audiences=fired.audiences,
            agencies=fired.agencies,
        )

    # --- recording -----------------------------------------------------------------------------------------

    async def _record(
        self,
        *,
        event: str,
        from_state: State | None,
        actor: Actor,
        data: dict[str, Any],
        audiences: list[Audience],
        agencies: list[str],
        public: bool = True,
        complaint: Any = None,
    ) -> None:
        """Give the transition its sequence number, write it (read model and outbox), mark search attributes."""
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
        if not workflow.patched(PATCH_ONE_WRITE):
            await self._record_v1(record, audiences, agencies, complaint)
            return
        try:
            # The write answers with the record it wrote, and Temporal keeps that answer in the history (the
            # local activity's marker): a rebuild reads the records from there without running this code again.
            # Taken here as the raw payload, never converted: old answers (None) and new ones replay alike.
            await workflow.execute_local_activity(
                RECORD_TRANSITION,
                TransitionRecord(
                    event=record,
                    case=case,
                    audiences=audiences,
                    agencies=agencies,
                    complaint=complaint,
                    channels=self._channels(),
                ),
                result_type=RawValue,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
        except (ActivityError, ApplicationError) as exc:
            # A local activity's failure arrives as itself, a regular one's inside an ActivityError.
            cause = exc.cause if isinstance(exc, ActivityError) else exc
            if not (isinstance(cause, ApplicationError) and cause.type == PROJECTION_REFUSED):
                raise
            # The activity marked the case stuck on the board and in /metrics. The case itself goes on: its
            # history holds the transition, and the next write (or a rebuild) re-projects it.
            workflow.logger.warning("read model refused transition %s of the case: marked stuck", case.seq)
        self._upsert_search_attributes()

    async def _record_v1(
        self, record: CaseEvent, audiences: list[Audience], agencies: list[str], complaint: Any
    ) -> None:
        """Version 1: project (local activity), then queue notifications (activity) in a second transaction."""
        case = self.case
        await workflow.execute_local_activity_method(
            ReadModelActivities.project_event,
            ProjectionRequest(event=record, case=case, complaint=complaint),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        )
        self._upsert_search_attributes()
        await workflow.execute_activity_method(
            NotificationActivities.notify,
            NotificationRequest(
                case_id=case.case_id,
                seq=case.seq,
                event=record.event,
                state=case.status,
                audiences=audiences,
                agencies=agencies,
                expected_by=case.expected_by,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=NOTIFY_RETRY,
        )

    def _channels(self) -> list[str] | None:
        """The complainant's preferred channels, as intake recorded them (spares the write a lookup)."""
        if self._input is None:
            return None
        return [c.value for c in self._input.complaint.complainant.preferred_channels] or ["web"]

    def _upsert_search_attributes(self) -> None:
        if not self._search_attributes:
            return
        case, due = self.case, self.case.due_at()
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(case.status.value),
                sa.AGENCY.value_set([t.agency for t in self.rules.open_tasks()]),
                sa.DUE_AT.value_set(due) if due else sa.DUE_AT.value_unset(),
                sa.OVERDUE.value_set(self.rules.overdue()),
            ]
        )

    def _summary(self) -> CaseSummary:
        case = self.case
        return CaseSummary(
            case_id=case.case_id,
            tracking_code=case.tracking_code,
            status=case.status,
            seq=case.seq,
            expected_by=case.expected_by,
            agencies=list(dict.fromkeys(t.agency for t in case.tasks if t.status in ACTIVE_TASK)),
            due_at=case.due_at(),
        )
