"""The case's rules: what each transition does to a case beyond its state, and how its clocks run.

Plain code over :class:`CaseState`: no Temporal, no SQL, no clock of its own. Deadlines are asked of a
:class:`Scheduler` and agency tasks' clocks are driven through :class:`TaskClocks`; the workflow implements both
with local activities, child workflows and signals, and unit tests with the calendar itself and a list.

The order of the calls to those two ports is part of the workflow's recorded behaviour: a change to it is a
change of workflow behaviour (patch it, record a golden history; see docs/architecture.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from dateutil.relativedelta import relativedelta

from sla.calendar import BANGKOK
from sla.rules import AlarmKind, DeadlineRule
from workflows.models import (
    ActionRequest,
    AgencyTask,
    Alarm,
    CaseState,
    Deadline,
    DeadlineMove,
    PausedClock,
    PolicySnapshot,
    task_workflow_id,
)
from workflows.process import (
    ACTIVE_TASK,
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

SYSTEM = Actor("rongtuk", Role.SYSTEM)
# Stage 2 investigated by the agencies (tasks with their own clocks); cases acknowledged before it: PSC alone.
PATCH_AGENCY_STAGE2 = "agency-led-stage2"
# A task's alarms while its agency waits for the complainant's answer.
_QUESTION_EVENTS = {AlarmKind.INFO_REMINDER: "agency_info_reminder", AlarmKind.LAPSE: "agency_info_lapse"}
# States whose deadline belongs to the case itself; in the agency phase the tasks carry theirs.
CASE_CLOCK_STATES = frozenset(
    {State.RECEIVED, State.SCREENING, State.AWAITING_INFO, State.RESPONDED, State.STAGE2, State.STAGE2_INVESTIGATION}
)


def case_clock_states(policy: PolicySnapshot) -> frozenset[State]:
    """The states whose deadline is the case's own, for a case with this policy snapshot."""
    return CASE_CLOCK_STATES if policy.responded_clock else CASE_CLOCK_STATES - {State.RESPONDED}


class Scheduler(Protocol):
    """Working-day arithmetic (the workflow records each answer, so replays see the same dates)."""

    async def schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        """``rule``'s deadline counted from ``start`` (``working_days`` overrides the policy's allowance)."""
        ...

    async def days_left(self, now: datetime, due_at: datetime) -> int:
        """Whole working days from ``now`` until ``due_at``."""
        ...


class TaskClocks(Protocol):
    """The agency tasks' own clocks (child workflows in production)."""

    async def start(self, task: AgencyTask) -> None:
        """Start the clock of a new task."""
        ...

    async def move(self, task: AgencyTask) -> None:
        """The task's deadline moved."""
        ...

    async def finish(self, task: AgencyTask) -> None:
        """The task is over: its clock stops."""
        ...


@dataclass
class AlarmTransition:
    """What a fired alarm records: the system's transition with its data, for whom."""

    transition: Transition
    data: dict[str, Any]
    audiences: set[Audience]
    agencies: list[str] | None = None
    payload: dict[str, Any] = field(default_factory=dict)  # what the transition's effects need


@dataclass
class CaseRules:
    """The rules of one case, applied to its state in place."""

    case: CaseState
    policy: PolicySnapshot
    scheduler: Scheduler
    clocks: TaskClocks
    workflow_id: str
    # Set by apply(): the data a transition records beyond its payload.
    recorded: dict[str, Any] = field(default_factory=dict)
    # Whether a change of behaviour applies to this case (``workflow.patched`` in the workflow; always in tests).
    patched: Callable[[str], bool] = field(default=lambda _patch: True)

    # --- the table ---------------------------------------------------------------------------------------

    def context(self, now: datetime) -> Context:
        """The facts beyond the state that the table's guards need."""
        case, policy = self.case, self.policy
        return Context(
            tasks=tuple(
                TaskView(
                    t.agency,
                    t.status,
                    t.extension_pending > 0,
                    t.extended_by,
                    t.notes,
                    stage=t.stage,
                    question_pending=t.asked_at is not None,
                    questions=t.questions,
                    breached=t.breached_at is not None,
                )
                for t in case.tasks
            ),
            now=now,
            rejections=case.rejections,
            max_rejections=policy.max_rejections,
            extension_allowance=self.extension_allowance(),
            review_deadline=case.review_deadline,
            late_review_allowed=case.late_review_allowed,
            ratings=case.ratings,
            max_rating_changes=policy.max_rating_changes,
            max_progress_notes=policy.max_progress_notes,
            info_requests=case.info_requests,
            max_info_requests=policy.max_info_requests,
            max_agency_questions=policy.max_agency_questions,
            reopens=case.reopens,
            max_reopens=policy.max_reopens,
            manual_escalations=case.manual_escalations,
            max_manual_escalations=policy.max_manual_escalations,
            out_of_time=case.out_of_time,
            classification=self.classification(),
            sla_classes=frozenset(policy.class_allowances),
        )

    def classification(self) -> dict[str, str | None]:
        """Kind, priority, receiving centre and SLA class as the case has them now."""
        case = self.case
        return {"kind": case.kind, "priority": case.priority, "centre": case.centre, "sla_class": case.sla_class}

    def extension_allowance(self) -> int:
        """Extra working days a stage 1 task may be granted in all, in the case's SLA class."""
        days = self.policy.class_allowances.get(self.case.sla_class or "")
        if not days:
            return self.policy.extension_allowance
        return days["stage1_extension_max"] - days[DeadlineRule.STAGE1_RESPONSE.value]

    async def _schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        """``rule``'s deadline from ``start`` with the allowance of the case's SLA class (if it has one)."""
        if working_days is None:
            working_days = self.policy.allowance(self.case.sla_class, rule)
        return await self.scheduler.schedule(start, rule, working_days)

    def decide(self, req: ActionRequest, now: datetime) -> Decision:
        """Whether the table allows ``req`` now, and where the case goes if so."""
        return decide(self.case.status, req.event, req.actor, req.payload, self.context(now))

    # --- file and transitions ----------------------------------------------------------------------------

    async def file(self, now: datetime) -> None:
        """The dates of a new case: the answer promised to the complainant and the screening deadline."""
        case = self.case
        case.sla_class = self.policy.class_for(kind=case.kind, priority=case.priority, category=case.category)
        self.case.expected_by = (await self._schedule(now, DeadlineRule.ANSWER)).due_at
        self.case.deadline = await self._schedule(now, DeadlineRule.SCREENING)
        self.case.out_of_time = self.out_of_time(now)

    def out_of_time(self, now: datetime) -> bool:
        """Whether the event complained of is older than the policy's time limit for complaining."""
        if not self.case.occurred_on:
            return False
        limit: date = date.fromisoformat(self.case.occurred_on) + relativedelta(months=self.policy.complaint_months)
        return limit < now.astimezone(BANGKOK).date()

    async def apply(
        self, transition: Transition, target: State, actor: Actor, payload: dict[str, Any], now: datetime
    ) -> list[str]:
        """Move the case to ``target`` with the event's effects; returns the agencies to tell of it."""
        case = self.case
        # Agencies whose task this transition ends (reassign, proceed, withdraw) still hear of it.
        before = [t.agency for t in self.open_tasks()]
        entering = target is not case.status
        case.status = target
        await self._effects(transition.event, actor, payload, now)
        clocked = case_clock_states(self.policy)
        if target not in clocked:
            case.deadline = None
        elif entering and target is State.RESPONDED:
            case.deadline = await self._schedule(now, DeadlineRule.CLOSURE)
        if target in TERMINAL_STATES | SETTLED_STATES and case.closed_at is None:
            case.closed_at = now
        self.recorded = {k: v for k, v in payload.items() if v not in (None, "", [])}
        return self.involved(before)

    def involved(self, before: list[str]) -> list[str]:
        """Agencies to tell of a transition: those working on the case before or after it, or that answered."""
        now_working = [t.agency for t in self.case.tasks if t.status in ACTIVE_TASK]
        return list(dict.fromkeys([*before, *now_working]))

    async def _effects(self, event: str, actor: Actor, payload: dict[str, Any], now: datetime) -> None:
        """What each event does to the case beyond its state (the table says where it goes)."""
        case, policy = self.case, self.policy
        own = next((t for t in case.tasks if t.agency == actor.agency and t.status in OPEN_TASK), None)
        match event:
            case "screen":
                case.handler = actor.id
                await self._classify(payload, now)
            case "accept":
                case.category, case.stage = str(payload["category"]), 1
                await self._classify({}, now)  # the category may bring its own class
                await self._assign(list(payload["agencies"]), now)
            case "reclassify":
                before, after = await self._classify(payload, now)
                payload["before"] = {k: v for k, v in before.items() if after[k] != v}
                payload["after"] = {k: after[k] for k in payload["before"]}
            case "assign":
                await self._assign(list(payload["agencies"]), now)
            case "reassign":
                await self._end_tasks(OPEN_TASK, TaskStatus.CANCELLED)
                await self._assign(list(payload["agencies"]), now)
            case "need_info":
                case.info_requests += 1
                await self._pause(now)
            case "reply":
                await self._resume(now)
            case "out_of_scope" | "duplicate" | "lapse":
                case.closure_reason = {"lapse": "lapsed"}.get(event, event)
                case.duplicate_of = payload.get("original_case_id")
                case.retain_until = now + timedelta(days=policy.retention_days)
            case "escalate_stage2" | "request_review":
                await self._start_stage2(now)
            case "agency_accept" if own is not None:
                own.status, own.accepted_at = TaskStatus.ACCEPTED, now
                own.deadline = await self._schedule(now, DeadlineRule.STAGE1_RESPONSE)
                own.breached_at, own.escalation_level = None, 0
                await self.clocks.move(own)
            case "agency_reject" if own is not None:
                own.status, own.reason = TaskStatus.REJECTED, payload.get("reason")
                case.rejections += 1
                await self.clocks.finish(own)
            case "proceed":
                waiting = (TaskStatus.ASSIGNED,) if case.status is State.STAGE1 else OPEN_TASK
                await self._end_tasks(waiting, TaskStatus.CANCELLED)
            case "progress" if own is not None:
                own.notes += 1
            case "request_extension" if own is not None:
                own.extension_pending = int(payload["working_days"])
            case "approve_extension" | "refuse_extension":
                task = next(t for t in case.tasks if t.agency == payload["agency"] and t.extension_pending)
                response = policy.allowance(case.sla_class, DeadlineRule.STAGE1_RESPONSE) or policy.stage1_response
                if event == "approve_extension" and task.accepted_at and task.suspended:
                    # Asked before the question stopped the clock: the stopped deadline takes the extra days.
                    task.extended_by += task.extension_pending
                    task.suspended = await self.reschedule(
                        task.suspended, working_days=response + task.extended_by + task.paused_days
                    )
                elif event == "approve_extension" and task.accepted_at and task.deadline:
                    task.extended_by += task.extension_pending
                    task.deadline = await self.reschedule(
                        task.deadline, working_days=response + task.extended_by + task.paused_days
                    )
                    await self.clocks.move(task)
                    if case.expected_by is None or task.deadline.due_at > case.expected_by:
                        case.expected_by = task.deadline.due_at
                task.extension_pending = 0
            case "agency_ask_info" if own is not None:
                await self._stop_task_clock(own, now)
            case "answer_agency" | "agency_info_lapse":
                task = self._questioning(payload.get("agency"))
                await self._restart_task_clock(task, payload, now, lapsed=event == "agency_info_lapse")
            case "respond" if own is not None:
                own.status, own.responded_at, own.outcome = TaskStatus.RESPONDED, now, str(payload["outcome"])
                own.asked_at = own.suspended = None  # answered without waiting for the complainant
                case.outcome = own.outcome
                case.root_cause = payload.get("root_cause") or case.root_cause
                case.action_taken = payload.get("action_taken") or case.action_taken
                await self.clocks.finish(own)
            case "close":
                case.outcome = payload.get("outcome") or case.outcome
                case.stage1_closed_at = now
                case.review_deadline = self.review_deadline(now)
                case.retain_until = case.review_deadline + timedelta(days=policy.retention_days)
            case "rate":
                case.rating, case.rating_comment = int(payload["rating"]), payload.get("comment")
                case.ratings += 1
            case "allow_late_review":
                case.late_review_allowed = True
            case "reopen":
                case.reopens += 1
                case.closed_at = case.closure_reason = case.retain_until = None
                case.deadline = await self._schedule(now, DeadlineRule.SCREENING)
                case.expected_by = (await self._schedule(now, DeadlineRule.ANSWER)).due_at
            case "acknowledge":
                case.deadline = case.stage2_response
                if self.patched(PATCH_AGENCY_STAGE2):
                    await self._investigate(payload, now)
            case "report_findings" if own is not None:
                own.status, own.responded_at = TaskStatus.RESPONDED, now
                case.root_cause = payload.get("root_cause") or case.root_cause
                case.action_taken = payload.get("action_taken") or case.action_taken
                await self.clocks.finish(own)
            case "extend_stage2" if case.deadline is not None:
                case.deadline = await self.reschedule(
                    case.deadline, working_days=case.deadline.working_days + int(payload["working_days"])
                )
                case.stage2_response = case.deadline
                case.expected_by = case.deadline.due_at
            case "respond_stage2":
                # Agencies still investigating past their deadline: a supervisor answered without them.
                await self._end_tasks(OPEN_TASK, TaskStatus.CANCELLED)
                until = now + relativedelta(months=policy.ombudsman_months)
                payload["ombudsman_until"] = until.date().isoformat()
                case.outcome = str(payload["outcome"])
                case.root_cause = payload.get("root_cause") or case.root_cause
                case.action_taken = payload.get("action_taken") or case.action_taken
                case.stage2_closed_at = case.closed_at = now
                case.retain_until = until + timedelta(days=policy.retention_days)
            case "withdraw":
                await self._end_tasks(OPEN_TASK, TaskStatus.CANCELLED)
            case "escalate":
                case.escalation_level += 1
                case.manual_escalations += 1

    # --- deadlines ---------------------------------------------------------------------------------------

    def fire(self, alarm: Alarm, deadline: Deadline, task: AgencyTask | None, now: datetime) -> AlarmTransition | None:
        """A deadline's alarm went off: mark it and say what the system records (None if nothing, now)."""
        alarm.fired = True
        case = self.case
        event = alarm.kind.event
        if task is not None and task.asked_at is not None:
            # The complainant's wait on an agency's question: its reminder and lapse, not the screening's.
            event = _QUESTION_EVENTS.get(alarm.kind, event)
        transition = transition_for(case.status, event)
        if transition is None:
            return None
        if alarm.kind.late:
            # The case keeps its first breach and highest rung whichever clock it was; a task keeps its own.
            for holder in (case, task) if task is not None else (case,):
                holder.breached_at = holder.breached_at or now
                holder.escalation_level = max(holder.escalation_level, alarm.level)
        data: dict[str, Any] = {"rule": deadline.rule.value, "due_at": deadline.due_at.isoformat()}
        if alarm.level:
            data["level"] = alarm.level
        if task is None:
            return AlarmTransition(transition, data, set(alarm.audiences), None)
        data["agency"] = task.agency
        # The agency hears of its own task's alarms in every stage (stage 1's table rows say so already).
        audiences = set(alarm.audiences) | {Audience.AGENCY}
        payload = {"agency": task.agency} if transition.event == "agency_info_lapse" else {}
        return AlarmTransition(transition, data, audiences, [task.agency], payload)

    def task_alarm(self, workflow_id: str, fired: Alarm) -> tuple[AgencyTask, Alarm] | None:
        """The open task and its unfired alarm that a child's signal names (None if the task has ended)."""
        task = next((t for t in self.case.tasks if t.workflow_id == workflow_id), None)
        if task is None or task.status not in OPEN_TASK or task.deadline is None:
            return None
        alarm = next(
            (
                a
                for a in task.deadline.alarms
                if (a.kind, a.level, a.at) == (fired.kind, fired.level, fired.at) and not a.fired
            ),
            None,
        )
        return (task, alarm) if alarm is not None else None

    async def reschedule(self, deadline: Deadline, *, working_days: int | None = None) -> Deadline:
        """The same deadline computed again (new calendar or allowance); alarms already fired stay fired."""
        fresh = await self.scheduler.schedule(deadline.start, deadline.rule, working_days or deadline.working_days)
        fired = {(a.kind, a.level) for a in deadline.alarms if a.fired}
        for alarm in fresh.alarms:
            alarm.fired = (alarm.kind, alarm.level) in fired
        return fresh

    async def recalculate(self, policy: PolicySnapshot) -> bool:
        """The calendar or policy changed: move every running deadline; returns whether any date moved."""
        case = self.case
        if case.status in TERMINAL_STATES | SETTLED_STATES:
            return False
        old, self.policy = self.policy, policy
        before = (case.expected_by, case.due_at())

        def days(deadline: Deadline) -> int | None:
            # The class's allowance changed with the policy: the deadline moves by the difference.
            return self._shifted(deadline, old, case.sla_class, policy, case.sla_class)

        acknowledged = case.deadline is not None and case.deadline is case.stage2_response
        if case.deadline:
            case.deadline = await self.reschedule(case.deadline, working_days=days(case.deadline))
        if acknowledged:
            case.stage2_response = case.deadline
        elif case.stage2_response:
            case.stage2_response = await self.reschedule(case.stage2_response, working_days=days(case.stage2_response))
        for task in self.open_tasks():
            if task.deadline:
                task.deadline = await self.reschedule(task.deadline, working_days=days(task.deadline))
                await self.clocks.move(task)
        await self._repromise()
        return (case.expected_by, case.due_at()) != before

    async def _repromise(self) -> None:
        """The date promised to the complainant, after the deadlines moved."""
        case = self.case
        if case.stage == 2 and case.stage2_response:
            case.expected_by = case.stage2_response.due_at
        elif case.paused is None:
            promise = (await self._schedule(case.received_at, DeadlineRule.ANSWER)).due_at
            case.expected_by = max(promise, self.latest_due() or promise)

    @staticmethod
    def _shifted(
        deadline: Deadline, old: PolicySnapshot, old_class: str | None, new: PolicySnapshot, new_class: str | None
    ) -> int | None:
        """The working days of ``deadline`` once its class's allowance goes from ``old`` to ``new`` (None: the
        same; a deadline that was extended or resumed after a pause keeps its difference from the allowance)."""
        was, now = old.allowance(old_class, deadline.rule), new.allowance(new_class, deadline.rule)
        if was is None or now is None or was == now:
            return None
        return max(1, deadline.working_days + now - was)

    async def _classify(self, payload: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """Kind, priority, centre and SLA class from an action's payload; the running deadlines follow a new
        class. A class named in the payload is the person's choice; otherwise the class follows priority
        (urgent), the category, the kind, unless a person chose one and the priority stayed. Returns the
        classification before and after."""
        case = self.case
        before = self.classification()
        for name in ("kind", "priority", "centre"):
            if payload.get(name):
                setattr(case, name, str(payload[name]))
        if payload.get("sla_class"):
            case.sla_class, case.class_chosen = str(payload["sla_class"]), True
        elif case.priority != before["priority"] or not case.class_chosen:
            chosen = self.policy.class_for(kind=case.kind, priority=case.priority, category=case.category)
            case.sla_class, case.class_chosen = chosen or case.sla_class, False
        after = self.classification()
        if after["sla_class"] != before["sla_class"]:
            await self._shift_class(before["sla_class"])
        return before, after

    async def _shift_class(self, old_class: str | None) -> None:
        """The case's class changed: every running deadline moves by the difference in its allowance."""
        case, policy = self.case, self.policy

        async def shifted(deadline: Deadline) -> Deadline:
            days = self._shifted(deadline, policy, old_class, policy, case.sla_class)
            return deadline if days is None else await self.reschedule(deadline, working_days=days)

        if case.deadline is not None and case.status in case_clock_states(policy):
            acknowledged = case.deadline is case.stage2_response
            case.deadline = await shifted(case.deadline)
            if acknowledged:
                case.stage2_response = case.deadline
        if case.stage2_response is not None and case.deadline is not case.stage2_response:
            case.stage2_response = await shifted(case.stage2_response)
        for task in self.open_tasks():
            if task.deadline is not None and (moved := await shifted(task.deadline)) is not task.deadline:
                task.deadline = moved
                await self.clocks.move(task)
        if case.paused is not None:
            paused = case.paused

            def left(rule: DeadlineRule, days: int) -> int:
                kept = Deadline(rule, case.received_at, days, case.received_at)
                return self._shifted(kept, policy, old_class, policy, case.sla_class) or days

            case.paused = PausedClock(
                paused.rule, left(paused.rule, paused.remaining), left(DeadlineRule.ANSWER, paused.answer_remaining)
            )
        await self._repromise()

    async def _pause(self, now: datetime) -> None:
        """Stop the clocks while the complainant is asked for information; keep what was left of them."""
        case = self.case
        running = case.deadline
        left = await self.scheduler.days_left(now, running.due_at) if running else 0
        answer_left = await self.scheduler.days_left(now, case.expected_by) if case.expected_by else 0
        case.paused = PausedClock(running.rule if running else DeadlineRule.SCREENING, left, answer_left)
        case.deadline = await self._schedule(now, DeadlineRule.AWAITING_INFO_LAPSE)

    async def _resume(self, now: datetime) -> None:
        """Restart the clocks with the working days that were left when they stopped."""
        case = self.case
        paused = case.paused or PausedClock(DeadlineRule.SCREENING, 1, 0)
        case.deadline = await self._schedule(now, paused.rule, max(paused.remaining, 1))
        promise = await self._schedule(now, DeadlineRule.ANSWER, max(paused.answer_remaining, 1))
        case.expected_by = max(promise.due_at, case.deadline.due_at)
        case.paused = None

    def _questioning(self, agency: str | None) -> AgencyTask:
        """The open task (of ``agency``, or the one that asked first) whose question waits for an answer."""
        waiting = [t for t in self.open_tasks() if t.asked_at is not None and agency in (None, t.agency)]
        return min(waiting, key=lambda t: t.asked_at or datetime.max)

    async def _stop_task_clock(self, task: AgencyTask, now: datetime) -> None:
        """An agency asked the complainant: its deadline stands still; the lapse rules of screening run."""
        task.questions += 1
        task.asked_at, task.suspended = now, task.deadline
        task.deadline = await self.scheduler.schedule(now, DeadlineRule.AWAITING_INFO_LAPSE)
        await self.clocks.move(task)

    async def _restart_task_clock(
        self, task: AgencyTask, payload: dict[str, Any], now: datetime, *, lapsed: bool
    ) -> None:
        """The answer came (or the wait lapsed): the task's deadline moves by the working days waited."""
        asked, stopped, waiting = task.asked_at, task.suspended, task.deadline
        task.asked_at, task.suspended = None, None
        if lapsed and waiting is not None:
            waited = waiting.working_days  # the whole allowance (its end is midnight, not the next day)
        else:
            waited = await self.scheduler.days_left(asked, now) if asked else 0
        if stopped is not None:
            task.paused_days += waited
            task.deadline = await self.reschedule(stopped, working_days=stopped.working_days + waited)
            if self.case.expected_by is None or task.deadline.due_at > self.case.expected_by:
                self.case.expected_by = task.deadline.due_at
        await self.clocks.move(task)
        payload["agency"] = task.agency
        payload["waited_working_days"] = waited
        if task.deadline is not None:
            payload["due_at"] = task.deadline.due_at.isoformat()

    async def _start_stage2(self, now: datetime) -> None:
        case = self.case
        case.stage, case.stage2_started_at = 2, now
        case.ratings = 0  # a rating per stage
        case.closed_at = case.retain_until = None
        case.deadline = await self._schedule(now, DeadlineRule.STAGE2_ACKNOWLEDGE)
        case.stage2_response = await self._schedule(now, DeadlineRule.STAGE2_RESPONSE)
        case.expected_by = case.stage2_response.due_at

    def review_deadline(self, replied: datetime) -> datetime:
        """Stage 2 may be asked for within N months of the stage 1 reply or M of the event, whichever is later."""
        case, policy = self.case, self.policy
        by_reply: datetime = replied + relativedelta(months=policy.review_request_months)
        if not case.occurred_on:  # the event's date is unknown: the reply's limit alone applies
            return by_reply
        occurred = date.fromisoformat(case.occurred_on)
        by_event: datetime = datetime.combine(occurred, replied.timetz()) + relativedelta(
            months=policy.complaint_months
        )
        return max(by_reply, by_event)

    def latest_due(self) -> datetime | None:
        dues = [t.deadline.due_at for t in self.open_tasks() if t.deadline]
        return max(dues) if dues else None

    # --- agency tasks ------------------------------------------------------------------------------------

    def open_tasks(self) -> list[AgencyTask]:
        return [t for t in self.case.tasks if t.status in OPEN_TASK]

    async def _assign(self, agencies: list[str], now: datetime) -> None:
        """One task, with its own clock, per agency not already working on the case."""
        case = self.case
        busy = {t.agency for t in self.open_tasks()}
        for agency in agencies:
            if agency in busy:
                continue
            case.task_counter += 1
            deadline = await self._schedule(now, DeadlineRule.AGENCY_ACCEPTANCE)
            task = AgencyTask(
                agency=agency,
                workflow_id=task_workflow_id(self.workflow_id, case.task_counter),
                assigned_at=now,
                deadline=deadline,
            )
            case.tasks.append(task)
            await self.clocks.start(task)

    async def _investigate(self, payload: dict[str, Any], now: datetime) -> None:
        """Agency-led stage 2: a task, with its own findings deadline, for each investigating agency."""
        case = self.case
        named = list(payload.get("agencies") or [])
        answered = [t.agency for t in case.tasks if t.status is TaskStatus.RESPONDED and t.stage == 1]
        agencies = list(dict.fromkeys(named or answered))
        for agency in agencies:
            case.task_counter += 1
            task = AgencyTask(
                agency=agency,
                workflow_id=task_workflow_id(self.workflow_id, case.task_counter),
                assigned_at=now,
                accepted_at=now,
                status=TaskStatus.ACCEPTED,
                stage=2,
                deadline=await self._schedule(now, DeadlineRule.STAGE2_FINDINGS),
            )
            case.tasks.append(task)
            await self.clocks.start(task)
        payload["investigating"] = agencies

    async def _end_tasks(self, statuses: Collection[TaskStatus], to: TaskStatus) -> None:
        for task in self.case.tasks:
            if task.status in statuses:
                task.status = to
                task.asked_at = task.suspended = None  # a question of an ended task waits for nothing
                await self.clocks.finish(task)

    def overdue(self) -> bool:
        """Whether a running deadline of the case (its own or an open task's) has passed."""
        deadlines = [self.case.deadline] + [t.deadline for t in self.open_tasks()]
        return any(a.fired and a.kind.late for d in deadlines if d for a in d.alarms)


# --- recalculation reports -------------------------------------------------------------------------------


def case_dates(case: CaseState) -> dict[str, tuple[str | None, datetime | None]]:
    """The dates of a case a recalculation may move, by what they are (see :class:`DeadlineMove`)."""
    dates: dict[str, tuple[str | None, datetime | None]] = {"expected_by": (None, case.expected_by)}
    if case.deadline is not None:
        dates["case"] = (case.deadline.rule.value, case.deadline.due_at)
    if case.stage2_response is not None and case.stage2_response is not case.deadline:
        dates["stage2_response"] = (case.stage2_response.rule.value, case.stage2_response.due_at)
    for task in case.tasks:
        if task.deadline is not None and task.status in OPEN_TASK:
            dates[f"task:{task.agency}"] = (task.deadline.rule.value, task.deadline.due_at)
    return dates


def date_moves(
    case_id: str,
    before: dict[str, tuple[str | None, datetime | None]],
    after: dict[str, tuple[str | None, datetime | None]],
) -> list[DeadlineMove]:
    """What moved between two :func:`case_dates` of one case."""
    return [
        DeadlineMove(case_id, what, (after.get(what) or was)[0], was[1], (after.get(what) or (None, None))[1])
        for what, was in before.items()
        if after.get(what, (None, None))[1] != was[1]
    ]


class _StillClocks:
    """Task clocks that do nothing: a preview moves no timer."""

    async def start(self, task: AgencyTask) -> None:
        return None

    async def move(self, task: AgencyTask) -> None:
        return None

    async def finish(self, task: AgencyTask) -> None:
        return None


async def preview_recalculation(
    case: CaseState, old: PolicySnapshot, new: PolicySnapshot, scheduler: Scheduler
) -> list[DeadlineMove]:
    """What ``recalculate`` would move in ``case`` with ``scheduler``'s calendar and the ``new`` policy, computed
    on a copy with the workflow's own rules (``rongtuk sla recalculate --dry-run``)."""
    rules = CaseRules(copy.deepcopy(case), old, scheduler, _StillClocks(), workflow_id="preview")
    before = case_dates(rules.case)
    await rules.recalculate(new)
    return date_moves(case.case_id, before, case_dates(rules.case))
