"""SLA classes, kinds, priorities, centres and regions without Temporal or a database.

The policy file and its checks, the choice of a case's class, the case rules applying a class (an urgent
case's shorter deadlines, a class chosen at screening moving the dates, reclassify's before/after, a policy
change moving running cases), and the reference data behind centres and regions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.sla import SlaActivities, snapshot_of
from config.centres import check_centres, load_centres
from config.reference import region_of
from sla.calendar import WorkingCalendar
from sla.policy import CLASS_RULES, SlaPolicy, load_policy
from sla.rules import DeadlineRule
from tests.unit.test_case_rules import DOPA, OFFICER, SUPERVISOR, Case, RecordedClocks
from workflows.case_rules import CaseRules
from workflows.models import ActionRequest, CaseState, Deadline, PolicySnapshot, ScheduleRequest
from workflows.process import Role, State

T0 = datetime(2026, 4, 6, 3, 0, tzinfo=UTC)  # Monday 10:00 in Bangkok
POLICY = load_policy()
CATEGORIES = {"flood.flooding": "urgent", "land.dispute": "complex", "roads.potholes": "standard"}


# --- the policy file ---------------------------------------------------------------------------------------


def test_the_shipped_policy_has_the_three_classes_and_urgent_is_shorter_everywhere() -> None:
    classes = POLICY.class_allowances()
    assert {"standard", "urgent", "complex"} <= set(classes)
    standard, urgent, complex_ = classes["standard"], classes["urgent"], classes["complex"]
    assert standard["stage1_response"] == POLICY.stage1_response == 5
    for rule in CLASS_RULES:
        assert urgent[rule.value] <= standard[rule.value] <= complex_[rule.value], rule
    assert urgent["stage1_response"] < standard["stage1_response"] < complex_["stage1_response"]
    assert urgent["stage2_response"] < standard["stage2_response"] < complex_["stage2_response"]


def test_a_class_inherits_what_it_does_not_set() -> None:
    policy = SlaPolicy(screening=3)
    assert policy.class_allowances()["complex"]["screening"] == 3
    assert policy.class_allowances()["urgent"]["screening"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": {"standard": {"name_en": "S", "name_th": "ป"}}}, "missing: urgent, complex"),
        ({"urgent_class": "fast"}, "unknown SLA class"),
        ({"class_by_kind": {"complaint": "fast"}}, "unknown SLA class"),
        ({"class_by_kind": {"gossip": "standard"}}, "unknown kinds"),
        (
            {
                "classes": {
                    **{n: {"name_en": n, "name_th": n} for n in ("standard", "complex")},
                    "urgent": {"name_en": "U", "name_th": "ด", "stage1_response": 12},
                }
            },
            "stage1_extension_max must be at least",
        ),
        ({"classes": {"urgent": {"name_en": "U", "name_th": "ด", "stage1_respons": 2}}}, "Extra inputs"),
    ],
)
def test_a_broken_policy_file_is_refused_with_a_clear_message(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    import yaml

    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(change, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_policy(path)


# --- choosing a class --------------------------------------------------------------------------------------


def test_class_choice_urgent_priority_then_category_then_kind() -> None:
    policy = POLICY.model_copy(update={"class_by_kind": {"tipoff": "complex"}})
    snap = snapshot_of(policy, CATEGORIES)
    assert snap.class_for(kind="complaint", priority="normal", category=None) == "standard"
    assert snap.class_for(kind="tipoff", priority="normal", category=None) == "complex"
    assert snap.class_for(kind="tipoff", priority="normal", category="roads.potholes") == "standard"
    assert snap.class_for(kind="complaint", priority="normal", category="land.dispute") == "complex"
    assert snap.class_for(kind="complaint", priority="urgent", category="land.dispute") == "urgent"
    assert snap.class_for(kind="complaint", priority="normal", category="flood.flooding") == "urgent"


def test_a_snapshot_recorded_before_classes_chooses_none_and_keeps_the_rules_own_allowances() -> None:
    old = PolicySnapshot()
    assert not old.classes_apply
    assert old.class_for(kind="complaint", priority="urgent", category=None) is None
    assert old.allowance(None, DeadlineRule.STAGE1_RESPONSE) is None
    new = snapshot_of(POLICY, {})
    assert new.allowance("urgent", DeadlineRule.ANSWER) == 1 + 1 + 2
    assert new.allowance("standard", DeadlineRule.AWAITING_INFO_LAPSE) is None  # not a class's to set


def test_the_workers_snapshot_carries_the_categories_classes_it_knows() -> None:
    snap = SlaActivities(WorkingCalendar(), POLICY, {"a.b": "urgent", "c.d": "unheard-of"})
    recorded = snapshot_of(snap.policy, snap.category_classes)
    assert recorded.class_by_category == {"a.b": "urgent"}
    assert recorded.urgent_class == "urgent" and recorded.default_class == "standard"


# --- the case rules with classes ---------------------------------------------------------------------------


class Scheduler:
    def __init__(self, policy: SlaPolicy) -> None:
        self.sla = SlaActivities(WorkingCalendar(), policy)
        self.requests: list[ScheduleRequest] = []

    async def schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        self.requests.append(ScheduleRequest(start, rule, working_days))
        return self.sla.schedule_for(ScheduleRequest(start, rule, working_days))

    async def days_left(self, now: datetime, due_at: datetime) -> int:
        return self.sla.calendar.working_days_between(now, due_at)


async def filed(
    *,
    priority: str = "normal",
    kind: str = "complaint",
    category: str | None = None,
    policy: SlaPolicy = POLICY,
    snapshot: PolicySnapshot | None = None,
) -> Case:
    state = CaseState(
        case_id="RT-9",
        tracking_code="XYZ",
        status=State.RECEIVED,
        received_at=T0,
        channel="web",
        kind=kind,
        priority=priority,
        category=category,
    )
    clocks = RecordedClocks()
    rules = CaseRules(state, snapshot or snapshot_of(policy, CATEGORIES), Scheduler(policy), clocks, "complaint-RT-9")
    await rules.file(T0)
    return Case(rules, clocks, T0)


async def to_stage1(case: Case, category: str = "roads.potholes") -> None:
    await case.act("screen", OFFICER)
    await case.act("accept", OFFICER, category=category, agencies=["DOPA"])
    await case.act("agency_accept", DOPA)


async def test_an_urgent_case_has_shorter_deadlines_at_every_step() -> None:
    normal, urgent = await filed(), await filed(priority="urgent")
    assert (normal.state.sla_class, urgent.state.sla_class) == ("standard", "urgent")
    assert urgent.state.expected_by is not None and normal.state.expected_by is not None
    assert urgent.state.expected_by < normal.state.expected_by
    for case in (normal, urgent):
        await to_stage1(case)
    n_task, u_task = normal.state.tasks[0].deadline, urgent.state.tasks[0].deadline
    assert n_task is not None and u_task is not None
    assert (n_task.working_days, u_task.working_days) == (5, 2)
    assert u_task.due_at < n_task.due_at


async def test_the_category_set_at_acceptance_brings_its_class_and_the_promise_follows() -> None:
    case = await filed()
    promised = case.state.expected_by
    await case.act("screen", OFFICER)
    await case.act("accept", OFFICER, category="flood.flooding", agencies=["DOPA"])
    assert case.state.sla_class == "urgent" and not case.state.class_chosen
    task = case.state.tasks[0].deadline
    assert task is not None and task.working_days == 1  # urgent agency acceptance
    assert case.state.expected_by is not None and promised is not None and case.state.expected_by < promised


async def test_a_class_chosen_at_screening_needs_a_reason_and_moves_the_dates() -> None:
    case = await filed(policy=SlaPolicy(screening=3))
    refused = case.rules.decide(ActionRequest("screen", OFFICER, {"sla_class": "complex"}), case.now)
    assert not refused.allowed and refused.code == "reason_needed"
    unknown = case.rules.decide(ActionRequest("screen", OFFICER, {"sla_class": "slow", "reason": "x"}), case.now)
    assert not unknown.allowed and unknown.code == "unknown_sla_class"
    promised = case.state.expected_by
    await case.act("screen", OFFICER, sla_class="complex", reason="ต้องตรวจพื้นที่")
    assert (case.state.sla_class, case.state.class_chosen) == ("complex", True)
    assert case.state.expected_by is not None and promised is not None
    assert case.state.expected_by > promised, "complex: a later date for the citizen"
    # A chosen class stays through a category whose default differs ...
    await case.act("accept", OFFICER, category="roads.potholes", agencies=["DOPA"])
    await case.act("agency_accept", DOPA)
    task = case.state.tasks[0].deadline
    assert case.state.sla_class == "complex" and task is not None and task.working_days == 10


async def test_reclassify_records_before_and_after_and_moves_the_running_deadlines() -> None:
    case = await filed()
    await to_stage1(case)
    task = case.state.tasks[0]
    assert task.deadline is not None
    before_due = task.deadline.due_at
    decision = case.rules.decide(
        ActionRequest("reclassify", SUPERVISOR, {"priority": "urgent", "reason": "น้ำท่วม"}), case.now
    )
    assert decision.allowed and decision.transition is not None
    payload: dict[str, Any] = {"priority": "urgent", "reason": "มีผู้ป่วยติดเตียง"}
    await case.rules.apply(decision.transition, State.STAGE1, SUPERVISOR, payload, case.now)
    recorded = case.rules.recorded
    assert recorded["reason"] == "มีผู้ป่วยติดเตียง"
    assert recorded["before"] == {"priority": "normal", "sla_class": "standard"}
    assert recorded["after"] == {"priority": "urgent", "sla_class": "urgent"}
    assert task.deadline.working_days == 2 and task.deadline.due_at < before_due
    assert ("move", "DOPA") in case.clocks.calls
    # Nothing to change, or the same values again: refused (the API answers 409).
    same = case.rules.decide(ActionRequest("reclassify", SUPERVISOR, {"priority": "urgent", "reason": "x"}), case.now)
    assert not same.allowed and same.code == "nothing_changes"
    empty = case.rules.decide(ActionRequest("reclassify", SUPERVISOR, {"reason": "x"}), case.now)
    assert not empty.allowed and empty.code == "nothing_to_change"


async def test_an_extended_task_keeps_its_extension_when_the_class_changes() -> None:
    case = await filed()
    await to_stage1(case)
    await case.act("request_extension", DOPA, reason="รองบประมาณ", working_days=3)
    await case.act("approve_extension", SUPERVISOR, agency="DOPA")
    task = case.state.tasks[0]
    assert task.deadline is not None and task.deadline.working_days == 8
    await case.act("reclassify", OFFICER, sla_class="complex", reason="ต้องตรวจพื้นที่")
    assert task.deadline.working_days == 13  # complex 10 + the 3 granted


async def test_a_paused_case_keeps_the_difference_for_when_the_complainant_replies() -> None:
    case = await filed(policy=SlaPolicy(screening=3))
    await case.act("screen", OFFICER)
    await case.act("need_info", OFFICER, question="ซอยอะไร")
    paused = case.state.paused
    assert paused is not None
    left = paused.remaining
    await case.act("reclassify", OFFICER, priority="urgent", reason="อันตราย")
    assert case.state.paused is not None and case.state.paused.remaining == max(1, left - 2)


async def test_a_policy_change_moves_running_cases_by_their_class() -> None:
    case = await filed()
    await to_stage1(case)
    task = case.state.tasks[0]
    assert task.deadline is not None and task.deadline.working_days == 5
    longer = POLICY.model_copy(update={"stage1_response": 7, "stage1_extension_max": 12})
    assert await case.rules.recalculate(snapshot_of(longer, CATEGORIES))
    assert task.deadline.working_days == 7
    assert not await case.rules.recalculate(snapshot_of(longer, CATEGORIES)), "nothing moves twice"


async def test_a_case_filed_before_classes_schedules_exactly_as_before() -> None:
    case = await filed(priority="urgent", snapshot=PolicySnapshot(responded_clock=True))
    await to_stage1(case)
    await case.act("reclassify", OFFICER, kind="request", reason="ขอความช่วยเหลือ")
    assert case.state.sla_class is None
    scheduler = case.rules.scheduler
    assert isinstance(scheduler, Scheduler)
    assert all(r.working_days is None for r in scheduler.requests), "the policy's own allowances, as recorded"


# --- centres and regions -----------------------------------------------------------------------------------


def test_centres_include_psc_and_a_damrongdham_centre_per_province() -> None:
    centres = load_centres()
    assert centres.default == "PSC-1111" and "PSC-1111" in centres
    assert centres.by_code["DAMRONG-50"].name_th == "ศูนย์ดำรงธรรมจังหวัดเชียงใหม่"
    assert centres.by_code["DAMRONG-10"].name_th == "ศูนย์ดำรงธรรมกรุงเทพมหานคร"
    assert sum(1 for c in centres.by_code.values() if c.province_code) == 77


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("default: NOPE\ncentres: [{code: PSC-1111, kind: psc, name_th: ก, name_en: A}]", "default centre NOPE"),
        (
            "centres: [{code: A-1, kind: psc, name_th: ก, name_en: A}, {code: A-1, kind: psc, name_th: ก, name_en: A}]",
            "listed twice",
        ),
        ("centres: [{code: A-1, kind: psc, name_th: ก, name_en: A, province_code: '99'}]", "not a province code"),
        ("centres: [{code: a b, kind: psc, name_th: ก, name_en: A}]", "pattern"),
    ],
)
def test_a_broken_centres_file_names_its_problems(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "centres.yaml"
    path.write_text(text, encoding="utf-8")
    _, problems = check_centres(path)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("province", "region"),
    [("50", "north"), ("10", "central"), ("90", "south"), ("40", "northeast"), ("20", "east"), ("71", "west")],
)
def test_region_is_derived_from_the_province(province: str, region: str) -> None:
    assert region_of(province) == region


def test_no_province_no_region() -> None:
    assert region_of(None) is None and region_of("99") is None


def test_the_role_of_reclassify_is_staff() -> None:
    case_actor = {Role.OFFICER, Role.SUPERVISOR}
    from workflows.process import transition_for

    edge = transition_for(State.STAGE1, "reclassify")
    assert edge is not None and set(edge.roles) == case_actor and edge.target is State.STAGE1
    assert "reason" in {f.name for f in edge.fields if f.required}


# --- the recalculation report ------------------------------------------------------------------------------


async def test_a_preview_reports_every_date_a_policy_change_would_move_and_changes_nothing() -> None:
    from cli.recalculate import RecalculationReport, report_lines
    from workflows.case_rules import preview_recalculation

    case = await filed()
    await to_stage1(case)
    task = case.state.tasks[0]
    assert task.deadline is not None
    before_due, before_promise = task.deadline.due_at, case.state.expected_by
    longer = snapshot_of(POLICY.model_copy(update={"stage1_response": 7, "stage1_extension_max": 12}), CATEGORIES)
    moves = await preview_recalculation(case.state, case.rules.policy, longer, Scheduler(POLICY))
    by_what = {m.what: m for m in moves}
    assert set(by_what) == {"task:DOPA", "expected_by"}
    assert by_what["task:DOPA"].rule == "stage1_response" and by_what["task:DOPA"].before == before_due
    moved = by_what["task:DOPA"].after
    assert moved is not None and moved > before_due
    assert task.deadline.due_at == before_due and case.state.expected_by == before_promise, "the case is untouched"
    lines = report_lines(RecalculationReport(checked=2, moves=moves), dry_run=True)
    assert any(line.startswith("RT-9  task:DOPA (stage1_response): 2026-") and " -> " in line for line in lines)
    assert lines[-1] == "checked 2 running case(s): 1 would move (2 date(s)), 1 unchanged"
