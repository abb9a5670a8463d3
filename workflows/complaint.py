"""``ComplaintWorkflow``: one durable workflow per case, executing the process table.

Human actions arrive as the ``act`` update. Its validator asks the table (``process.decide``) whether the
action is allowed now, so a refused action never reaches the history. Every transition is projected into the
read model (local activity) and fires the notification activity before the update returns.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.models import (
    ActionRequest,
    AgencyTask,
    CaseEvent,
    CaseInput,
    CaseState,
    CaseSummary,
    DueRequest,
    NotificationRequest,
    ProjectionRequest,
)
from workflows.process import (
    FILED_LABEL,
    INITIAL_STATE,
    TERMINAL_STATES,
    Actor,
    Audience,
    Decision,
    State,
    TaskStatus,
    TaskView,
    Transition,
    decide,
)

ACTION_NOT_ALLOWED = "ActionNotAllowed"
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


def workflow_id_for(case_id: str) -> str:
    """The workflow id of a case: derived from the case number, so any process can address it."""
    return f"complaint-{case_id}"


@workflow.defn
class ComplaintWorkflow:
    def __init__(self) -> None:
        self._case: CaseState | None = None
        self._filed = False
        # Serialises the read-model writes of concurrent updates so they land in sequence order.
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSummary:
        now = workflow.now()
        channel = str(inp.complaint.get("channel", "web"))
        self._case = CaseState(
            case_id=inp.case_id,
            tracking_code=inp.tracking_code,
            status=INITIAL_STATE,
            received_at=now,
            channel=channel,
            category=inp.complaint.get("category"),
        )
        self._case.expected_by = await self._due(now, "answer")
        async with self._lock:
            await self._record(
                event="filed",
                from_state=None,
                actor=inp.filed_by,
                data={"channel": channel, "label": list(FILED_LABEL)},
                audiences=[Audience.COMPLAINANT],
                complaint=inp.complaint,
            )
        self._filed = True
        await workflow.wait_condition(lambda: self.case.status in TERMINAL_STATES and workflow.all_handlers_finished())
        return self._summary()

    @property
    def case(self) -> CaseState:
        if self._case is None:  # only before the first workflow task has run
            raise ApplicationError("the case is still being filed", type=ACTION_NOT_ALLOWED, non_retryable=True)
        return self._case

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
            await self._perform(req, decision.transition, decision.target)
        return self._summary()

    @act.validator
    def _validate_act(self, req: ActionRequest) -> None:
        if not self._filed:
            raise ApplicationError("the case is still being filed", "not_filed", type=ACTION_NOT_ALLOWED)
        decision = self._decide(req)
        if not decision.allowed:
            raise ApplicationError(decision.reason, decision.code, type=ACTION_NOT_ALLOWED)

    @workflow.query
    def summary(self) -> CaseSummary:
        """The case as it stands (status, next expected date, agencies)."""
        return self._summary()

    @workflow.query
    def state(self) -> CaseState:
        """The whole workflow state, for auditors and debugging."""
        return self.case

    def _decide(self, req: ActionRequest) -> Decision:
        tasks = [TaskView(t.agency, t.status) for t in self.case.tasks]
        return decide(self.case.status, req.event, req.actor, req.payload, tasks)

    async def _perform(self, req: ActionRequest, transition: Transition, target: State) -> None:
        case, now = self.case, workflow.now()
        from_state = case.status
        data: dict[str, Any] = {k: v for k, v in req.payload.items() if v not in (None, "", [])}
        if transition.event == "screen":
            case.handler = req.actor.id
        elif transition.event == "accept":
            case.category = str(req.payload["category"])
            case.tasks = [AgencyTask(agency=code, assigned_at=now) for code in req.payload["agencies"]]
        elif transition.per_agency:
            task = next(t for t in case.tasks if t.agency == req.actor.agency)
            if transition.task_status is TaskStatus.ACCEPTED:
                task.status, task.accepted_at = TaskStatus.ACCEPTED, now
            elif transition.task_status is TaskStatus.RESPONDED:
                task.status, task.responded_at = TaskStatus.RESPONDED, now
                task.outcome = str(req.payload["outcome"])
                case.outcome = task.outcome
        case.status = target
        if target in TERMINAL_STATES:
            case.closed_at = now
        await self._record(
            event=transition.event,
            from_state=from_state,
            actor=req.actor,
            data=data,
            audiences=sorted(transition.notify),
            public=transition.public,
        )

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
    ) -> None:
        """Give the transition its sequence number, project it and notify its audiences."""
        case = self.case
        case.seq += 1
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
        await workflow.execute_activity(
            "notify",
            NotificationRequest(
                case_id=case.case_id,
                seq=case.seq,
                event=event,
                state=case.status,
                audiences=audiences,
                agencies=[t.agency for t in case.tasks],
                expected_by=case.expected_by,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=NOTIFY_RETRY,
            result_type=int,
        )

    async def _due(self, start: datetime, rule: str) -> datetime:
        due: datetime = await workflow.execute_local_activity(
            "due_at",
            DueRequest(start=start, rule=rule),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_RETRY,
            result_type=datetime,
        )
        return due

    def _summary(self) -> CaseSummary:
        case = self.case
        return CaseSummary(
            case_id=case.case_id,
            tracking_code=case.tracking_code,
            status=case.status,
            seq=case.seq,
            expected_by=case.expected_by,
            agencies=[t.agency for t in case.tasks],
        )
