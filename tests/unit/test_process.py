"""The process table, transition by transition, without any server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from workflows.process import (
    ACTION_LABELS,
    EVENTS,
    INITIAL_STATE,
    NEXT_STEPS,
    OPEN_STATES,
    SETTLED_STATES,
    STATE_LABELS,
    TERMINAL_STATES,
    TRANSITIONS,
    Actor,
    Audience,
    Context,
    Role,
    State,
    TaskStatus,
    TaskView,
    allowed_events,
    decide,
    transition_for,
)

OFFICER = Actor("o", Role.OFFICER)
SUPERVISOR = Actor("s", Role.SUPERVISOR)
CITIZEN = Actor("c", Role.CITIZEN)
DOPA = Actor("a", Role.AGENCY, "DOPA")
BMA = Actor("b", Role.AGENCY, "BMA")
THAI = re.compile("[\u0e00-\u0e7f]")

MAIN_PATH = [
    (State.RECEIVED, "screen", OFFICER, {}, State.SCREENING),
    (State.SCREENING, "accept", OFFICER, {"category": "roads", "agencies": ["DOPA"]}, State.ASSIGNMENT),
    (State.ASSIGNMENT, "agency_accept", DOPA, {}, State.STAGE1),
    (State.STAGE1, "respond", DOPA, {"outcome": "resolved", "response": "done"}, State.RESPONDED),
    (State.RESPONDED, "close", SUPERVISOR, {}, State.CLOSED),
]


def test_every_state_has_labels_in_both_languages() -> None:
    for state in State:
        en, th = STATE_LABELS[state]
        assert en and th and en != th
        # Staff read the same names on the board and the case page: a state names people by role, never
        # "you" (the Thai said "from the complainant" where the English said "from you").
        assert not re.search(r"\byou(r)?\b", en, re.I) and "ท่าน" not in th, (state, en, th)


def test_every_open_state_can_be_left_and_terminal_states_cannot() -> None:
    sources = {t.source for t in TRANSITIONS}
    assert sources == set(OPEN_STATES) | set(SETTLED_STATES)
    assert not sources & TERMINAL_STATES
    targets = {t.target for t in TRANSITIONS}
    assert targets | {INITIAL_STATE} == set(State), "every state is reachable"
    assert INITIAL_STATE is State.RECEIVED


def test_edges_are_unique_and_labelled() -> None:
    edges = [(t.source, t.event) for t in TRANSITIONS]
    assert len(edges) == len(set(edges))
    assert all(t.label[0] and t.label[1] and t.roles and t.notify for t in TRANSITIONS)


def test_every_action_a_person_takes_has_a_button_label_and_only_those() -> None:
    """A button says the action ("Rate the service"), the timeline what happened ("Complainant rated ...")."""
    by_people = {t.event for t in TRANSITIONS if t.roles - {Role.SYSTEM}}
    assert set(ACTION_LABELS) == by_people
    assert all(en and th for en, th in ACTION_LABELS.values())
    labels = {t.event: t.label for t in TRANSITIONS}
    assert ACTION_LABELS["rate"] == ("Rate the service", "ประเมินความพึงพอใจ") != labels["rate"]


def test_every_state_tells_the_complainant_what_happens_next() -> None:
    assert set(NEXT_STEPS) == set(State)
    assert all(en.endswith(".") and th and en != th for en, th in NEXT_STEPS.values())
    assert len({en for en, _ in NEXT_STEPS.values()}) == len(State), "each state says its own next step"


@pytest.mark.parametrize(("state", "event", "actor", "payload", "target"), MAIN_PATH)
def test_main_path(state: State, event: str, actor: Actor, payload: dict[str, object], target: State) -> None:
    tasks = [TaskView("DOPA", TaskStatus.ASSIGNED if state is State.ASSIGNMENT else TaskStatus.ACCEPTED)]
    decision = decide(state, event, actor, payload, Context(tasks=tuple(tasks)))
    assert decision.allowed, decision.reason
    assert decision.target is target


def test_respond_moves_on_when_the_only_task_is_answered() -> None:
    decision = decide(
        State.STAGE1,
        "respond",
        DOPA,
        {"outcome": "resolved", "response": "ok"},
        Context(tasks=(TaskView("DOPA", TaskStatus.ACCEPTED),)),
    )
    assert decision.allowed and decision.target is State.RESPONDED


def test_per_agency_event_waits_for_the_other_agencies() -> None:
    tasks = [TaskView("DOPA", TaskStatus.ASSIGNED), TaskView("BMA", TaskStatus.ASSIGNED)]
    first = decide(State.ASSIGNMENT, "agency_accept", DOPA, {}, Context(tasks=tuple(tasks)))
    assert first.allowed and first.target is State.ASSIGNMENT
    tasks = [TaskView("DOPA", TaskStatus.ACCEPTED), TaskView("BMA", TaskStatus.ASSIGNED)]
    last = decide(State.ASSIGNMENT, "agency_accept", BMA, {}, Context(tasks=tuple(tasks)))
    assert last.allowed and last.target is State.STAGE1
    again = decide(State.ASSIGNMENT, "agency_accept", DOPA, {}, Context(tasks=tuple(tasks)))
    assert not again.allowed and again.code == "task_done"


@pytest.mark.parametrize(
    ("state", "event", "actor", "payload", "code"),
    [
        (State.RECEIVED, "fly", OFFICER, {}, "unknown_event"),
        (State.RECEIVED, "close", OFFICER, {}, "not_allowed_in_state"),
        (State.CLOSED, "withdraw", CITIZEN, {}, "not_allowed_in_state"),
        (State.RECEIVED, "screen", CITIZEN, {}, "role_not_allowed"),
        (State.RECEIVED, "screen", DOPA, {}, "role_not_allowed"),
        (State.SCREENING, "accept", OFFICER, {"category": "roads"}, "missing_fields"),
        (State.SCREENING, "accept", OFFICER, {"category": "", "agencies": ["X"]}, "missing_fields"),
        (State.ASSIGNMENT, "agency_accept", Actor("x", Role.AGENCY, "RTP"), {}, "no_task"),
        (State.STAGE1, "respond", DOPA, {"outcome": "resolved"}, "missing_fields"),
    ],
)
def test_refusals_say_why(state: State, event: str, actor: Actor, payload: dict[str, object], code: str) -> None:
    decision = decide(state, event, actor, payload, Context(tasks=(TaskView("DOPA", TaskStatus.ASSIGNED),)))
    assert not decision.allowed
    assert decision.code == code
    assert decision.reason
    assert THAI.search(decision.reason_th), decision  # the people who read it mostly read Thai


def test_withdraw_is_possible_from_every_open_state_and_only_there() -> None:
    for state in State:
        edge = transition_for(state, "withdraw")
        assert (edge is not None) == (state in OPEN_STATES)
        if edge:
            assert edge.target is State.WITHDRAWN and Role.CITIZEN in edge.roles


def test_allowed_events_offers_only_what_the_actor_may_do() -> None:
    assert [t.event for t in allowed_events(State.RECEIVED, OFFICER)] == ["screen", "withdraw", "reclassify"]
    assert [t.event for t in allowed_events(State.RECEIVED, DOPA)] == []
    ctx = Context(tasks=(TaskView("DOPA", TaskStatus.ASSIGNED),))
    assert [t.event for t in allowed_events(State.ASSIGNMENT, DOPA, ctx)] == ["agency_accept", "agency_reject"]
    assert [t.event for t in allowed_events(State.ASSIGNMENT, BMA, ctx)] == []
    assert "agency_accept" in EVENTS


# --- agency questions to the complainant (stage 1) -------------------------------------------------------------

ACCEPTED = TaskView("DOPA", TaskStatus.ACCEPTED)
ASKING = TaskView("DOPA", TaskStatus.ACCEPTED, question_pending=True, questions=1)


def test_an_agency_asks_on_its_own_task_and_the_case_stays_in_stage1() -> None:
    decision = decide(State.STAGE1, "agency_ask_info", DOPA, {"question": "เลขที่บ้าน"}, Context(tasks=(ACCEPTED,)))
    assert decision.allowed and decision.target is State.STAGE1
    edge = decision.transition
    assert edge is not None and edge.per_agency and edge.public and Audience.COMPLAINANT in edge.notify


@pytest.mark.parametrize(
    ("actor", "payload", "tasks", "code"),
    [
        (DOPA, {"question": "x"}, (ASKING,), "question_pending"),
        (DOPA, {"question": "x"}, (TaskView("DOPA", TaskStatus.ACCEPTED, questions=3),), "limit_reached"),
        (BMA, {"question": "x"}, (ACCEPTED,), "no_task"),
        (DOPA, {"question": "x"}, (TaskView("DOPA", TaskStatus.RESPONDED),), "task_done"),
        (DOPA, {}, (ACCEPTED,), "missing_fields"),
    ],
)
def test_agency_questions_are_refused_when_they_cannot_be_asked(
    actor: Actor, payload: dict[str, object], tasks: tuple[TaskView, ...], code: str
) -> None:
    decision = decide(State.STAGE1, "agency_ask_info", actor, payload, Context(tasks=tasks))
    assert not decision.allowed and decision.code == code, decision.reason
    assert THAI.search(decision.reason_th), decision


def test_a_late_review_request_is_refused_in_thai_with_the_date_it_was_due() -> None:
    due = datetime(2026, 12, 18, 17, tzinfo=UTC)
    ctx = Context(review_deadline=due, now=due + timedelta(days=1))
    decision = decide(State.CLOSED, "request_review", CITIZEN, {"reason": "ยังไม่ได้รับการแก้ไข"}, ctx)
    assert not decision.allowed and decision.code == "review_time_limit"
    assert "2026-12-18" in decision.reason_th and "พ้นกำหนดเวลาขอให้ทบทวน" in decision.reason_th


def test_the_complainant_answers_a_waiting_question_and_only_then() -> None:
    ok = decide(State.STAGE1, "answer_agency", CITIZEN, {"answer": "12/3"}, Context(tasks=(ASKING,)))
    assert ok.allowed and ok.target is State.STAGE1
    named = decide(
        State.STAGE1, "answer_agency", CITIZEN, {"answer": "12/3", "agency": "BMA"}, Context(tasks=(ASKING,))
    )
    assert not named.allowed and named.code == "no_question_pending"
    none = decide(State.STAGE1, "answer_agency", CITIZEN, {"answer": "12/3"}, Context(tasks=(ACCEPTED,)))
    assert not none.allowed and none.code == "no_question_pending"
    assert decide(State.STAGE1, "answer_agency", DOPA, {"answer": "x"}, Context(tasks=(ASKING,))).code == (
        "role_not_allowed"
    )
    assert [t.event for t in allowed_events(State.STAGE1, CITIZEN, Context(tasks=(ASKING,)))] == [
        "answer_agency",
        "withdraw",
    ]


def test_no_extension_request_while_the_clock_is_stopped_for_a_question() -> None:
    payload = {"reason": "x", "working_days": 1}
    decision = decide(State.STAGE1, "request_extension", DOPA, payload, Context(tasks=(ASKING,)))
    assert not decision.allowed and decision.code == "question_pending"


# --- agency-led stage 2 ------------------------------------------------------------------------------------------

STAGE1_DONE = TaskView("DOPA", TaskStatus.RESPONDED)
INVESTIGATING = TaskView("DOPA", TaskStatus.ACCEPTED, stage=2)


def test_findings_end_the_agencys_task_but_the_case_stays_under_investigation() -> None:
    ctx = Context(tasks=(STAGE1_DONE, INVESTIGATING))
    decision = decide(State.STAGE2_INVESTIGATION, "report_findings", DOPA, {"findings": "พบว่า"}, ctx)
    assert decision.allowed and decision.target is State.STAGE2_INVESTIGATION
    assert decide(State.STAGE2_INVESTIGATION, "report_findings", BMA, {"findings": "x"}, ctx).code == "no_task"


@pytest.mark.parametrize(
    ("actor", "tasks", "allowed"),
    [
        (OFFICER, (STAGE1_DONE,), True),  # no investigating agency: PSC investigates alone
        (OFFICER, (STAGE1_DONE, INVESTIGATING), False),
        (SUPERVISOR, (STAGE1_DONE, INVESTIGATING), False),
        (OFFICER, (STAGE1_DONE, TaskView("DOPA", TaskStatus.ACCEPTED, stage=2, breached=True)), False),
        (SUPERVISOR, (STAGE1_DONE, TaskView("DOPA", TaskStatus.ACCEPTED, stage=2, breached=True)), True),
        (OFFICER, (STAGE1_DONE, TaskView("DOPA", TaskStatus.RESPONDED, stage=2)), True),
    ],
)
def test_psc_answers_stage2_after_the_findings_or_by_a_supervisor_once_the_agencies_are_late(
    actor: Actor, tasks: tuple[TaskView, ...], allowed: bool
) -> None:
    payload = {"outcome": "upheld", "response": "ผลการตรวจสอบ"}
    decision = decide(State.STAGE2_INVESTIGATION, "respond_stage2", actor, payload, Context(tasks=tasks))
    assert decision.allowed is allowed and (allowed or decision.code == "findings_pending")


def test_only_a_supervisor_names_the_investigating_agencies() -> None:
    body = {"points": "x", "outcome_wanted": "y"}
    assert decide(State.STAGE2, "acknowledge", OFFICER, body).allowed
    named = body | {"agencies": ["BMA"]}
    assert decide(State.STAGE2, "acknowledge", OFFICER, named).code == "needs_supervisor"
    assert decide(State.STAGE2, "acknowledge", SUPERVISOR, named).allowed
    assert "acknowledge" in [t.event for t in allowed_events(State.STAGE2, OFFICER)]
