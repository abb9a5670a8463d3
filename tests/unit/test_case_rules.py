"""The case's rules without Temporal or a database: every edge of the process table, applied to a case.

Deadlines come from the real calendar and policy (``SlaActivities.schedule_for``, pure); the agency tasks'
clocks are a list of calls. Each human edge is reached by the shortest path and applied; each system edge is
fired as the alarm that makes it. Every edge of ``TRANSITIONS`` is covered (the last test checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.sla import SlaActivities
from sla.calendar import BANGKOK, WorkingCalendar
from sla.policy import SlaPolicy
from sla.rules import AlarmKind, DeadlineRule
from workflows.case_rules import SYSTEM, CaseRules, case_clock_states
from workflows.models import (
    ActionRequest,
    AgencyTask,
    Alarm,
    CaseState,
    Deadline,
    PolicySnapshot,
    ScheduleRequest,
)
from workflows.process import (
    STATE_DEADLINES,
    SYSTEM_EVENTS,
    TERMINAL_STATES,
    TRANSITIONS,
    Actor,
    Role,
    State,
    TaskStatus,
    Transition,
)

T0 = datetime(2026, 4, 6, 3, 0, tzinfo=UTC)  # Monday 10:00 in Bangkok
OFFICER = Actor("officer-1", Role.OFFICER)
SUPERVISOR = Actor("sup-1", Role.SUPERVISOR)
CITIZEN = Actor("citizen", Role.CITIZEN)
DOPA = Actor("dopa-1", Role.AGENCY, "DOPA")
BMA = Actor("bma-1", Role.AGENCY, "BMA")
POLICY = SlaPolicy(screening=3)
RESPONSE = {"outcome": "resolved", "response": "ซ่อมแล้ว", "root_cause": "ท่อรั่ว", "action_taken": "ซ่อมท่อ"}


class CalendarScheduler:
    """The scheduler port with the calendar itself (what the local activities compute in production)."""

    def __init__(self) -> None:
        self.sla = SlaActivities(WorkingCalendar(), POLICY)

    async def schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        return self.sla.schedule_for(ScheduleRequest(start, rule, working_days))

    async def days_left(self, now: datetime, due_at: datetime) -> int:
        return self.sla.calendar.working_days_between(now, due_at)


@dataclass
class RecordedClocks:
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def start(self, task: AgencyTask) -> None:
        self.calls.append(("start", task.agency))

    async def move(self, task: AgencyTask) -> None:
        self.calls.append(("move", task.agency))

    async def finish(self, task: AgencyTask) -> None:
        self.calls.append(("finish", task.agency))


@dataclass
class Case:
    rules: CaseRules
    clocks: RecordedClocks
    now: datetime

    @property
    def state(self) -> CaseState:
        return self.rules.case

    async def act(self, event: str, actor: Actor, **payload: Any) -> State:
        self.now += timedelta(hours=1)
        decision = self.rules.decide(ActionRequest(event, actor, payload), self.now)
        assert decision.allowed, f"{event} refused in {self.state.status}: {decision.reason}"
        assert decision.transition is not None and decision.target is not None
        await self.rules.apply(decision.transition, decision.target, actor, payload, self.now)
        return self.state.status


async def new_case(**policy: Any) -> Case:
    clocks = RecordedClocks()
    snapshot = PolicySnapshot(**{"max_rejections": POLICY.max_rejections, "responded_clock": True, **policy})
    state = CaseState(case_id="RT-1", tracking_code="ABC", status=State.RECEIVED, received_at=T0, channel="web")
    rules = CaseRules(state, snapshot, CalendarScheduler(), clocks, "complaint-RT-1")
    await rules.file(T0)
    return Case(rules, clocks, T0)


PATHS: dict[State, list[tuple[str, Actor, dict[str, Any]]]] = {
    State.RECEIVED: [],
    State.SCREENING: [("screen", OFFICER, {})],
}
PATHS[State.AWAITING_INFO] = [*PATHS[State.SCREENING], ("need_info", OFFICER, {"question": "ซอยอะไร"})]
PATHS[State.ASSIGNMENT] = [*PATHS[State.SCREENING], ("accept", OFFICER, {"category": "roads", "agencies": ["DOPA"]})]
PATHS[State.STAGE1] = [*PATHS[State.ASSIGNMENT], ("agency_accept", DOPA, {})]
PATHS[State.RESPONDED] = [*PATHS[State.STAGE1], ("respond", DOPA, RESPONSE)]
PATHS[State.CLOSED] = [*PATHS[State.RESPONDED], ("close", OFFICER, {})]
PATHS[State.STAGE2] = [*PATHS[State.CLOSED], ("request_review", CITIZEN, {"reason": "ยังไม่ซ่อม"})]
PATHS[State.STAGE2_INVESTIGATION] = [
    *PATHS[State.STAGE2],
    ("acknowledge", OFFICER, {"points": "งานซ่อม", "outcome_wanted": "ซ่อมใหม่"}),
]
FINDINGS = {"findings": "งานซ่อมไม่ได้มาตรฐาน", "root_cause": "ผู้รับเหมา", "action_taken": "ซ่อมใหม่"}
PATHS[State.CLOSED_STAGE2] = [
    *PATHS[State.STAGE2_INVESTIGATION],
    ("report_findings", DOPA, FINDINGS),
    ("respond_stage2", SUPERVISOR, RESPONSE),
]
TWO_AGENCIES = [*PATHS[State.SCREENING], ("accept", OFFICER, {"category": "roads", "agencies": ["DOPA", "BMA"]})]

# Edges that need more than the shortest path to their source state.
SETUP: dict[tuple[State, str], list[tuple[str, Actor, dict[str, Any]]]] = {
    (State.ASSIGNMENT, "proceed"): [*TWO_AGENCIES, ("agency_accept", DOPA, {})],
    (State.STAGE1, "proceed"): [
        *TWO_AGENCIES,
        ("agency_accept", DOPA, {}),
        ("agency_accept", BMA, {}),
        ("respond", DOPA, RESPONSE),
    ],
    (State.STAGE1, "approve_extension"): [
        *PATHS[State.STAGE1],
        ("request_extension", DOPA, {"reason": "x", "working_days": 2}),
    ],
    (State.STAGE1, "answer_agency"): [*PATHS[State.STAGE1], ("agency_ask_info", DOPA, {"question": "บ้านเลขที่"})],
    (State.STAGE1, "agency_info_reminder"): [
        *PATHS[State.STAGE1],
        ("agency_ask_info", DOPA, {"question": "บ้านเลขที่"}),
    ],
    (State.STAGE1, "agency_info_lapse"): [*PATHS[State.STAGE1], ("agency_ask_info", DOPA, {"question": "บ้านเลขที่"})],
    (State.STAGE2_INVESTIGATION, "respond_stage2"): [
        *PATHS[State.STAGE2_INVESTIGATION],
        ("report_findings", DOPA, FINDINGS),
    ],
    (State.STAGE1, "refuse_extension"): [
        *PATHS[State.STAGE1],
        ("request_extension", DOPA, {"reason": "x", "working_days": 2}),
    ],
}
SAMPLE: dict[str, Any] = {
    "category": "roads",
    "agencies": ["BMA"],
    "question": "ซอยอะไร",
    "advice": "ติดต่อ สคบ.",
    "original_case_id": "RT-0",
    "reason": "เหตุผล",
    "answer": "ซอย 5",
    "note": "บันทึก",
    "working_days": 2,
    "agency": "DOPA",
    "rating": 4,
    "comment": "ขอบคุณ",
    "points": "ประเด็น",
    "outcome_wanted": "ซ่อม",
    "ombudsman_reference": "OMB-1",
    "summary": "สรุปเรื่องสำหรับหน่วยงาน",
    "kind": "request",
    "priority": "urgent",
    "centre": "DAMRONG-50",
    "sla_class": "complex",
    "findings": "ผลการตรวจสอบ",
    **RESPONSE,
}
HUMAN = [t for t in TRANSITIONS if t.event not in SYSTEM_EVENTS]
ALARMS = {
    "sla_reminder": AlarmKind.REMINDER,
    "sla_breach": AlarmKind.BREACH,
    "sla_escalation": AlarmKind.ESCALATION,
    "info_reminder": AlarmKind.INFO_REMINDER,
    "lapse": AlarmKind.LAPSE,
    "agency_info_reminder": AlarmKind.INFO_REMINDER,
    "agency_info_lapse": AlarmKind.LAPSE,
}


def _actor(t: Transition) -> Actor:
    if t.guard == "investigators_named_by_supervisor":
        return SUPERVISOR  # the sample names the investigating agencies, which is a supervisor's choice
    for role, actor in ((Role.AGENCY, DOPA), (Role.OFFICER, OFFICER), (Role.SUPERVISOR, SUPERVISOR)):
        if role in t.roles:
            return actor
    return CITIZEN


async def _reach(source: State, event: str) -> Case:
    case = await new_case()
    for step_event, actor, payload in SETUP.get((source, event), PATHS[source]):
        await case.act(step_event, actor, **payload)
    assert case.state.status is source
    return case


def _assert_clock_follows_state(case: CaseState, policy: PolicySnapshot) -> None:
    if case.status in case_clock_states(policy):
        assert case.deadline is not None, f"{case.status} has no running deadline"
        assert case.deadline.rule is STATE_DEADLINES[case.status]
    else:
        assert case.deadline is None, f"{case.status} kept the case's own deadline"


@pytest.mark.parametrize("transition", HUMAN, ids=lambda t: f"{t.source}-{t.event}")
async def test_every_human_edge_applies_and_leaves_the_case_consistent(transition: Transition) -> None:
    case = await _reach(transition.source, transition.event)
    seq_before = case.state.seq
    payload = {f.name: SAMPLE[f.name] for f in transition.fields}
    await case.act(transition.event, _actor(transition), **payload)
    state = case.state
    assert state.seq == seq_before, "sequence numbers are the workflow's, not the rules'"
    if transition.task_to is None:
        assert state.status is transition.target
    _assert_clock_follows_state(state, case.rules.policy)
    if state.status in TERMINAL_STATES or state.status in {State.CLOSED, State.CLOSED_STAGE2}:
        assert state.closed_at is not None
        assert not [t for t in state.tasks if t.status in {TaskStatus.ASSIGNED, TaskStatus.ACCEPTED}]


@pytest.mark.parametrize(
    "transition", [t for t in TRANSITIONS if t.event in ALARMS], ids=lambda t: f"{t.source}-{t.event}"
)
async def test_every_alarm_edge_records_the_systems_transition(transition: Transition) -> None:
    case = await _reach(transition.source, transition.event)
    kind = ALARMS[transition.event]
    alarm = Alarm(kind, case.now, level=1 if kind.late else 0)
    deadline = case.state.current_deadline()
    assert deadline is not None
    task = next((t for t in case.rules.open_tasks()), None) if case.state.deadline is None else None
    fired = case.rules.fire(alarm, deadline, task, case.now)
    assert fired is not None and fired.transition is transition
    assert alarm.fired
    assert fired.data["rule"] == deadline.rule.value
    if kind.late:
        assert case.state.breached_at == case.now and case.state.escalation_level == 1
    await case.rules.apply(fired.transition, fired.transition.target, SYSTEM, {}, case.now)
    assert case.state.status is transition.target


async def test_recalculation_moves_every_running_deadline_and_says_so() -> None:
    case = await _reach(State.STAGE1, "progress")
    task = case.state.tasks[0]
    before = task.deadline
    assert before is not None
    # The Cabinet adds the task's due day as a holiday: the deadline moves one working day on.
    due_day = (before.due_at.astimezone(BANGKOK) - timedelta(seconds=1)).date()
    case.rules.scheduler.sla.calendar = WorkingCalendar(extra_holidays={due_day: "วันหยุดพิเศษ"})  # type: ignore[attr-defined]
    assert await case.rules.recalculate(case.rules.policy)
    assert task.deadline is not None and task.deadline.due_at > before.due_at
    assert ("move", "DOPA") in case.clocks.calls
    assert not await case.rules.recalculate(case.rules.policy), "nothing moves twice"


async def test_assignment_starts_one_clock_per_new_agency_and_ends_them_on_withdrawal() -> None:
    case = await new_case()
    for event, actor, payload in TWO_AGENCIES:
        await case.act(event, actor, **payload)
    assert case.clocks.calls == [("start", "DOPA"), ("start", "BMA")]
    assert [t.workflow_id for t in case.state.tasks] == ["complaint-RT-1-task-1", "complaint-RT-1-task-2"]
    await case.act("withdraw", CITIZEN)
    assert case.clocks.calls[-2:] == [("finish", "DOPA"), ("finish", "BMA")]
    assert {t.status for t in case.state.tasks} == {TaskStatus.CANCELLED}


async def test_need_info_pauses_the_clock_and_reply_resumes_with_the_days_left() -> None:
    case = await _reach(State.SCREENING, "need_info")
    screening = case.state.deadline
    assert screening is not None and screening.rule is DeadlineRule.SCREENING
    await case.act("need_info", OFFICER, question="ซอยอะไร")
    paused = case.state.paused
    assert paused is not None and paused.rule is DeadlineRule.SCREENING and 0 < paused.remaining <= 4
    assert case.state.deadline is not None and case.state.deadline.rule is DeadlineRule.AWAITING_INFO_LAPSE
    case.now += timedelta(days=14)
    await case.act("reply", CITIZEN, answer="ซอย 5")
    resumed = case.state.deadline
    assert resumed is not None and resumed.rule is DeadlineRule.SCREENING and case.state.paused is None
    assert resumed.working_days == paused.remaining, "the clock resumes with the days that were left"
    assert resumed.start == case.now


async def test_extension_approval_moves_the_task_deadline_and_the_promise() -> None:
    case = await _reach(State.STAGE1, "approve_extension")
    task = case.state.tasks[0]
    assert task.deadline is not None
    before, promised = task.deadline.due_at, case.state.expected_by
    await case.act("approve_extension", SUPERVISOR, agency="DOPA")
    assert task.deadline.working_days == POLICY.stage1_response + 2
    assert task.deadline.due_at > before
    assert case.state.expected_by is not None and promised is not None and case.state.expected_by >= promised
    assert task.extension_pending == 0 and task.extended_by == 2


async def test_an_agency_question_stops_its_task_clock_and_the_answer_moves_it_by_the_days_waited() -> None:
    case = await _reach(State.STAGE1, "agency_ask_info")
    task = case.state.tasks[0]
    before = task.deadline
    assert before is not None and before.rule is DeadlineRule.STAGE1_RESPONSE
    await case.act("agency_ask_info", DOPA, question="บ้านเลขที่เท่าไร")
    asked = case.now
    assert task.asked_at == asked and task.suspended is before and task.questions == 1
    assert task.deadline is not None and task.deadline.rule is DeadlineRule.AWAITING_INFO_LAPSE
    assert [k.kind for k in task.deadline.alarms] == [AlarmKind.INFO_REMINDER, AlarmKind.LAPSE]
    assert case.state.status is State.STAGE1 and case.clocks.calls[-1] == ("move", "DOPA")
    # While it waits: no second question, no extension request.
    for event, payload in (
        ("agency_ask_info", {"question": "อีก"}),
        ("request_extension", {"reason": "x", "working_days": 1}),
    ):
        refused = case.rules.decide(ActionRequest(event, DOPA, payload), case.now)
        assert not refused.allowed and refused.code == "question_pending"
    case.now += timedelta(days=9)  # Mon 6 Apr -> Wed 15 Apr 2026, over a weekend and Songkran (13-15 Apr)
    payload: dict[str, Any] = {"answer": "บ้านเลขที่ 12"}
    decision = case.rules.decide(ActionRequest("answer_agency", CITIZEN, payload), case.now)
    assert decision.allowed and decision.transition is not None and decision.target is State.STAGE1
    await case.rules.apply(decision.transition, State.STAGE1, CITIZEN, payload, case.now)
    calendar = WorkingCalendar()
    waited = calendar.working_days_between(asked, case.now)
    assert waited == 4  # Tue 7 to Fri 10 April: the weekend and Songkran do not count
    moved = task.deadline
    assert moved is not None and moved.rule is DeadlineRule.STAGE1_RESPONSE and moved.start == before.start
    assert moved.working_days == before.working_days + waited
    second = timedelta(seconds=1)  # a due moment is the midnight that ends its day: compare the days
    assert calendar.working_days_between(before.due_at - second, moved.due_at - second) == waited
    assert task.asked_at is None and task.suspended is None and task.paused_days == waited
    assert payload["agency"] == "DOPA" and payload["waited_working_days"] == waited
    assert case.state.expected_by is not None and case.state.expected_by >= moved.due_at
    refused = case.rules.decide(ActionRequest("answer_agency", CITIZEN, {"answer": "อีก"}), case.now)
    assert not refused.allowed and refused.code == "no_question_pending"


async def test_a_lapsed_agency_question_restarts_the_clock_and_the_questions_are_limited() -> None:
    case = await new_case(max_agency_questions=2)
    for event, actor, payload in PATHS[State.STAGE1]:
        await case.act(event, actor, **payload)
    task = case.state.tasks[0]
    await case.act("agency_ask_info", DOPA, question="ข้อ 1")
    lapse_deadline = task.deadline
    assert lapse_deadline is not None
    case.now = lapse_deadline.due_at
    fired = case.rules.fire(lapse_deadline.alarms[-1], lapse_deadline, task, case.now)
    assert fired is not None and fired.transition.event == "agency_info_lapse" and fired.payload == {"agency": "DOPA"}
    await case.rules.apply(fired.transition, State.STAGE1, SYSTEM, dict(fired.payload), case.now)
    assert task.asked_at is None and task.deadline is not None
    assert task.deadline.rule is DeadlineRule.STAGE1_RESPONSE and task.paused_days == POLICY.awaiting_info_lapse
    await case.act("agency_ask_info", DOPA, question="ข้อ 2")
    await case.act("answer_agency", CITIZEN, answer="ตอบ", agency="DOPA")
    refused = case.rules.decide(ActionRequest("agency_ask_info", DOPA, {"question": "ข้อ 3"}), case.now)
    assert not refused.allowed and refused.code == "limit_reached"


async def test_an_extension_approved_while_a_question_waits_goes_to_the_stopped_deadline() -> None:
    case = await _reach(State.STAGE1, "approve_extension")
    task = case.state.tasks[0]
    await case.act("agency_ask_info", DOPA, question="ข้อมูล")
    await case.act("approve_extension", SUPERVISOR, agency="DOPA")
    assert task.suspended is not None and task.suspended.working_days == POLICY.stage1_response + 2
    assert task.deadline is not None and task.deadline.rule is DeadlineRule.AWAITING_INFO_LAPSE
    await case.act("answer_agency", OFFICER, answer="ทางโทรศัพท์")
    assert task.deadline.rule is DeadlineRule.STAGE1_RESPONSE
    assert task.deadline.working_days == POLICY.stage1_response + 2 + task.paused_days


async def test_ratings_are_limited_per_stage_and_reset_for_stage_2() -> None:
    case = await _reach(State.CLOSED, "rate")
    for _ in range(POLICY.max_rating_changes + 1):
        await case.act("rate", CITIZEN, rating=3)
    refused = case.rules.decide(ActionRequest("rate", CITIZEN, {"rating": 5}), case.now)
    assert not refused.allowed and refused.code == "limit_reached"
    await case.act("request_review", CITIZEN, reason="ยังไม่ซ่อม")
    assert case.state.ratings == 0


@pytest.mark.parametrize(
    ("source", "event", "payload", "limit"),
    [
        (State.STAGE1, "progress", {"note": "คืบหน้า"}, "max_progress_notes"),
        (State.STAGE1, "escalate", {"reason": "ช้า"}, "max_manual_escalations"),
    ],
)
async def test_repeatable_actions_stop_at_their_limit(
    source: State, event: str, payload: dict[str, Any], limit: str
) -> None:
    case = await _reach(source, event)
    actor = DOPA if event == "progress" else SUPERVISOR
    for _ in range(getattr(case.rules.policy, limit)):
        await case.act(event, actor, **payload)
    refused = case.rules.decide(ActionRequest(event, actor, payload), case.now)
    assert not refused.allowed and refused.code == "limit_reached"


async def test_requests_for_information_and_reopenings_are_limited() -> None:
    case = await new_case(max_info_requests=2, max_reopens=1)
    await case.act("screen", OFFICER)
    for _ in range(2):
        await case.act("need_info", OFFICER, question="อะไร")
        await case.act("reply", CITIZEN, answer="นี่")
    assert case.rules.decide(ActionRequest("need_info", OFFICER, {"question": "อีก"}), case.now).code == "limit_reached"


def test_the_tests_above_walk_every_edge_of_the_table() -> None:
    walked = {(t.source, t.event) for t in HUMAN} | {(t.source, t.event) for t in TRANSITIONS if t.event in ALARMS}
    # deadlines_moved is the recalculation's edge, tested above through recalculate().
    rest = {(t.source, t.event) for t in TRANSITIONS} - walked
    assert {event for _, event in rest} <= {"deadlines_moved"}


async def test_a_complaint_about_an_old_event_is_taken_on_only_with_a_reason() -> None:
    # Filed Mon 6 Apr 2026 about an event of 1 Sep 2025: more than 6 months before, so out of time.
    case = await new_case()
    case.state.occurred_on = "2025-09-01"
    await case.rules.file(T0)
    assert case.state.out_of_time
    await case.act("screen", OFFICER)
    body = {"category": "roads", "agencies": ["DOPA"]}
    refused = case.rules.decide(ActionRequest("accept", OFFICER, body), case.now)
    assert not refused.allowed and refused.code == "out_of_time" and "out_of_scope" in refused.reason
    assert await case.act("accept", OFFICER, **body, reason="ผู้ร้องป่วยหนักจึงร้องเรียนล่าช้า") is State.ASSIGNMENT


async def test_a_complaint_within_the_time_limit_needs_no_reason() -> None:
    case = await new_case()
    case.state.occurred_on = "2025-10-07"  # 6 months before 6 Apr 2026 is 6 Oct 2025: still in time
    await case.rules.file(T0)
    assert not case.state.out_of_time
    await case.act("screen", OFFICER)
    assert await case.act("accept", OFFICER, category="roads", agencies=["DOPA"]) is State.ASSIGNMENT


# --- agency-led stage 2 ------------------------------------------------------------------------------------------


async def test_acknowledging_a_review_gives_each_agency_that_answered_stage1_an_investigation_task() -> None:
    case = await _reach(State.STAGE2, "acknowledge")
    started = len(case.clocks.calls)
    await case.act("acknowledge", OFFICER, points="งานซ่อม", outcome_wanted="ซ่อมใหม่")
    acknowledged = case.now
    first, second = case.state.tasks
    assert (first.stage, first.status) == (1, TaskStatus.RESPONDED)
    assert (second.agency, second.stage, second.status) == ("DOPA", 2, TaskStatus.ACCEPTED)
    assert second.workflow_id == "complaint-RT-1-task-2" and case.clocks.calls[started:] == [("start", "DOPA")]
    findings = second.deadline
    assert findings is not None and findings.rule is DeadlineRule.STAGE2_FINDINGS
    assert findings.working_days == POLICY.stage2_findings == 15 and findings.start == acknowledged
    response = case.state.stage2_response
    assert response is not None and findings.due_at <= response.due_at, "the agencies' deadline is inside PSC's"
    assert [a.kind for a in findings.alarms] == [AlarmKind.REMINDER, AlarmKind.BREACH, AlarmKind.ESCALATION]
    assert case.rules.recorded["investigating"] == ["DOPA"]


async def test_psc_answers_after_the_findings_or_a_supervisor_after_the_agencys_breach() -> None:
    case = await _reach(State.STAGE2_INVESTIGATION, "report_findings")
    task = case.state.tasks[-1]
    for actor in (OFFICER, SUPERVISOR):
        refused = case.rules.decide(ActionRequest("respond_stage2", actor, RESPONSE), case.now)
        assert not refused.allowed and refused.code == "findings_pending"
    assert task.deadline is not None
    breach = next(a for a in task.deadline.alarms if a.kind is AlarmKind.BREACH)
    fired = case.rules.fire(breach, task.deadline, task, breach.at)
    assert (
        fired is not None
        and fired.transition.event == "sla_breach"
        and fired.transition.source is State.STAGE2_INVESTIGATION
    )
    assert "agency" in fired.audiences and fired.agencies == ["DOPA"] and task.breached_at == breach.at
    escalation = next(a for a in task.deadline.alarms if a.kind is AlarmKind.ESCALATION)
    escalated = case.rules.fire(escalation, task.deadline, task, escalation.at)
    assert escalated is not None and {"agency", "agency_head", "supervisor"} <= {a.value for a in escalated.audiences}
    assert case.rules.decide(ActionRequest("respond_stage2", OFFICER, RESPONSE), case.now).code == "findings_pending"
    await case.act("respond_stage2", SUPERVISOR, **RESPONSE)
    assert case.state.status is State.CLOSED_STAGE2 and task.status is TaskStatus.CANCELLED
    assert case.clocks.calls[-1] == ("finish", "DOPA")


async def test_the_agencys_findings_end_its_task_and_open_psc_s_final_answer() -> None:
    case = await _reach(State.STAGE2_INVESTIGATION, "report_findings")
    assert await case.act("report_findings", DOPA, **FINDINGS) is State.STAGE2_INVESTIGATION
    task = case.state.tasks[-1]
    assert task.status is TaskStatus.RESPONDED and task.responded_at == case.now
    assert case.state.root_cause == FINDINGS["root_cause"] and case.clocks.calls[-1] == ("finish", "DOPA")
    again = case.rules.decide(ActionRequest("report_findings", DOPA, FINDINGS), case.now)
    assert not again.allowed and again.code == "task_done"
    assert case.rules.decide(ActionRequest("respond_stage2", OFFICER, RESPONSE), case.now).allowed


async def test_a_supervisor_names_the_investigating_agencies_an_officer_cannot() -> None:
    case = await _reach(State.STAGE2, "acknowledge")
    payload = {"points": "x", "outcome_wanted": "y", "agencies": ["BMA", "RTP"]}
    refused = case.rules.decide(ActionRequest("acknowledge", OFFICER, payload), case.now)
    assert not refused.allowed and refused.code == "needs_supervisor"
    await case.act("acknowledge", SUPERVISOR, **payload)
    assert [(t.agency, t.stage) for t in case.state.tasks if t.status is TaskStatus.ACCEPTED] == [
        ("BMA", 2),
        ("RTP", 2),
    ]


async def test_a_case_acknowledged_before_agency_led_stage2_keeps_psc_investigating_alone() -> None:
    case = await _reach(State.STAGE2, "acknowledge")
    case.rules.patched = lambda _patch: False  # what workflow.patched says when an old history replays
    await case.act("acknowledge", OFFICER, points="x", outcome_wanted="y")
    assert [t.stage for t in case.state.tasks] == [1] and "investigating" not in case.rules.recorded
    await case.act("respond_stage2", OFFICER, **RESPONSE)
    assert case.state.status is State.CLOSED_STAGE2


async def test_no_investigation_task_when_stage2_comes_straight_from_screening() -> None:
    case = await _reach(State.SCREENING, "escalate_stage2")
    await case.act("escalate_stage2", OFFICER, reason="ร้ายแรง")
    await case.act("acknowledge", OFFICER, points="x", outcome_wanted="y")
    assert case.state.tasks == [] and case.state.status is State.STAGE2_INVESTIGATION


async def test_a_task_that_ends_while_its_question_waits_waits_no_more() -> None:
    case = await _reach(State.STAGE1, "respond")
    await case.act("agency_ask_info", DOPA, question="มีรูปไหม")
    await case.act("respond", DOPA, **RESPONSE)
    task = case.state.tasks[0]
    assert task.status is TaskStatus.RESPONDED and task.asked_at is None and task.suspended is None
    refused = case.rules.decide(ActionRequest("answer_agency", CITIZEN, {"answer": "มี"}), case.now)
    assert not refused.allowed and refused.code == "not_allowed_in_state"  # the case has moved on to responded
