"""Tests for the process exports (BPMN, Mermaid, JSON) and `rongtuk process export`.

Expectations are derived from ``workflows.process.TRANSITIONS`` so rows added to the table keep these tests
meaningful; a few facts of today's table are pinned by hand as well.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.parser import BpmnParser, BpmnValidator
from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, EndEvent, UserTask
from typer.testing import CliRunner

from cli.main import app
from processdoc import PROCESS_ID, is_bookkeeping, to_bpmn, to_json, to_mermaid
from sla.policy import SlaPolicy
from workflows.process import (
    INITIAL_STATE,
    STATE_DEADLINES,
    STATE_LABELS,
    TERMINAL_STATES,
    TRANSITIONS,
    Role,
    State,
    Transition,
    as_table,
)

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
FLOW_NODES = ("startEvent", "userTask", "exclusiveGateway", "endEvent", "boundaryEvent", "intermediateThrowEvent")
NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

# A bigger table than today's, in the shape the process is expected to grow: a step that loops on itself, a
# step sent back to an earlier one, a second way to a terminal state and a jump over several columns.
GROWN = (
    *TRANSITIONS,
    Transition("extend", State.STAGE1, State.STAGE1, frozenset({Role.OFFICER}), ("Extended", "ขยายเวลา")),
    Transition("reopen", State.RESPONDED, State.STAGE1, frozenset({Role.CITIZEN}), ("Reopened", "เปิดเรื่องใหม่")),
    Transition("reject", State.SCREENING, State.CLOSED, frozenset({Role.OFFICER}), ("Not accepted", "ไม่รับเรื่อง")),
    Transition("fast_track", State.RECEIVED, State.RESPONDED, frozenset({Role.SYSTEM}), ("Fast", "เร่งด่วน")),
)
TABLES = pytest.mark.parametrize("table", [TRANSITIONS, GROWN], ids=["today", "grown"])


def _states(table: tuple[Transition, ...]) -> set[State]:
    return {INITIAL_STATE} | {t.source for t in table} | {t.target for t in table}


def _open_states(table: tuple[Transition, ...]) -> set[State]:
    return _states(table) - TERMINAL_STATES


def _deadline_states(table: tuple[Transition, ...]) -> set[State]:
    return set(STATE_DEADLINES) & _open_states(table)


def _terminals_reached(table: tuple[Transition, ...]) -> set[State]:
    return {t.target for t in table} & TERMINAL_STATES


def _process(xml: str) -> ET.Element:
    process = ET.fromstring(xml).find("bpmn:process", NS)
    assert process is not None
    return process


def _by_id(xml: str) -> dict[str, ET.Element]:
    return {el.get("id", ""): el for el in _process(xml).iter() if el.get("id")}


def _flows(xml: str) -> list[ET.Element]:
    return _process(xml).findall("bpmn:sequenceFlow", NS)


def _bounds(element: ET.Element) -> tuple[float, float, float, float]:
    b = element.find("dc:Bounds", NS)
    assert b is not None
    x, y, w, h = (float(b.get(k, "nan")) for k in ("x", "y", "width", "height"))
    return x, y, w, h


def _shapes(xml: str) -> dict[str, tuple[float, float, float, float]]:
    root = ET.fromstring(xml)
    return {s.get("bpmnElement", ""): _bounds(s) for s in root.iter(f"{{{NS['bpmndi']}}}BPMNShape")}


def _spiff_spec(xml: str) -> Any:
    # The export is documentation (isExecutable="false") and SpiffWorkflow refuses to build a spec for a
    # non-executable process, so only for this check the flag is flipped; the XML is also schema-validated.
    assert xml.count('isExecutable="false"') == 1
    parser = BpmnParser(validator=BpmnValidator())
    parser.add_bpmn_str(xml.replace('isExecutable="false"', 'isExecutable="true"').encode())
    return parser.get_spec(PROCESS_ID)


# ----------------------------------------------------------------------------------------------------- BPMN


@TABLES
def test_bpmn_parses_with_spiffworkflow(table: tuple[Transition, ...]) -> None:
    spec = _spiff_spec(to_bpmn(table))
    user_tasks = {name: s for name, s in spec.task_specs.items() if isinstance(s, UserTask)}
    assert set(user_tasks) == {f"task_{s.value}" for s in _open_states(table)}
    for state in _open_states(table):
        assert user_tasks[f"task_{state.value}"].bpmn_name == STATE_LABELS[state][0]
        assert STATE_LABELS[state][1] in user_tasks[f"task_{state.value}"].documentation
    end_events = [s for s in spec.task_specs.values() if isinstance(s, EndEvent)]
    assert len(end_events) == len(_terminals_reached(table)) + len(_deadline_states(table))
    timers = [s for s in spec.task_specs.values() if isinstance(s, BoundaryEvent)]
    assert len(timers) == len(_deadline_states(table))
    assert all(not t.cancel_activity for t in timers)


def test_bpmn_is_a_documented_collaboration_with_three_lanes() -> None:
    root = ET.fromstring(to_bpmn())
    participants = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert [p.get("processRef") for p in participants] == [PROCESS_ID]
    process = _process(to_bpmn())
    assert process.get("id") == PROCESS_ID
    assert process.get("isExecutable") == "false"
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    assert [lane.get("name") for lane in lanes] == ["Citizen", "PSC", "Agency"]
    in_lanes = [ref.text for lane in lanes for ref in lane.findall("bpmn:flowNodeRef", NS)]
    nodes = [el.get("id") for tag in FLOW_NODES for el in process.findall(f"bpmn:{tag}", NS)]
    assert sorted(in_lanes) == sorted(nodes)  # every node in exactly one lane


@TABLES
def test_bpmn_graph_is_connected_and_drawn(table: tuple[Transition, ...]) -> None:
    xml = to_bpmn(table)
    by_id = _by_id(xml)
    process = _process(xml)
    nodes = {el.get("id", "") for tag in FLOW_NODES for el in process.findall(f"bpmn:{tag}", NS)}
    for flow in _flows(xml):
        assert flow.get("sourceRef") in nodes, flow.get("id")
        assert flow.get("targetRef") in nodes, flow.get("id")
    sources = {f.get("sourceRef") for f in _flows(xml)}
    targets = {f.get("targetRef") for f in _flows(xml)}
    for node in nodes:
        tag = by_id[node].tag.split("}")[1]
        if tag not in {"startEvent", "boundaryEvent"}:
            assert node in targets, f"{node} has no incoming flow"
        if tag != "endEvent":
            assert node in sources, f"{node} has no outgoing flow"
    assert all(NCNAME.match(i) for i in by_id), [i for i in by_id if not NCNAME.match(i)]

    shapes = _shapes(xml)
    assert nodes <= set(shapes)
    assert {lane.get("id") for lane in process.findall("bpmn:laneSet/bpmn:lane", NS)} <= set(shapes)
    edges = {
        e.get("bpmnElement"): e.findall("di:waypoint", NS)
        for e in ET.fromstring(xml).iter(f"{{{NS['bpmndi']}}}BPMNEdge")
    }
    for flow in _flows(xml):
        assert len(edges[flow.get("id")]) >= 2, flow.get("id")


@TABLES
def test_bpmn_layout_has_no_overlapping_nodes(table: tuple[Transition, ...]) -> None:
    xml = to_bpmn(table)
    process = _process(xml)
    shapes = _shapes(xml)
    attached = {b.get("id"): b.get("attachedToRef") for b in process.findall("bpmn:boundaryEvent", NS)}
    nodes = [el.get("id", "") for tag in FLOW_NODES for el in process.findall(f"bpmn:{tag}", NS)]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if attached.get(a) == b or attached.get(b) == a:
                continue  # a boundary event sits on its task's border by definition
            ax, ay, aw, ah = shapes[a]
            bx, by, bw, bh = shapes[b]
            overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
            assert not overlap, f"{a} overlaps {b}"
    for lane in process.findall("bpmn:laneSet/bpmn:lane", NS):
        lx, ly, lw, lh = shapes[lane.get("id", "")]
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            x, y, w, h = shapes[ref.text or ""]
            assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, f"{ref.text} outside its lane"


def test_bookkeeping_rows_are_the_systems_own_self_loops() -> None:
    kept = [t for t in TRANSITIONS if is_bookkeeping(t)]
    assert kept, "today's table has SLA bookkeeping rows"
    assert all(t.source == t.target and t.roles == frozenset({Role.SYSTEM}) for t in kept)
    # A system row that moves the case (a lapse to closed) is a real step and stays a flow.
    assert any(t.roles == frozenset({Role.SYSTEM}) and t.source != t.target for t in TRANSITIONS)
    assert not any(is_bookkeeping(t) for t in TRANSITIONS if t.roles != frozenset({Role.SYSTEM}))


@TABLES
def test_every_transition_is_a_flow_or_documented_on_its_task(table: tuple[Transition, ...]) -> None:
    """Every row but the system's bookkeeping self-loops is a flow named by its event; those are on the task."""
    xml = to_bpmn(table)
    by_id = _by_id(xml)
    flows = {(f.get("sourceRef"), f.get("name"), f.get("targetRef")): f for f in _flows(xml)}
    drawn = [t for t in table if not is_bookkeeping(t)]
    for t in table:
        if is_bookkeeping(t):
            doc = by_id[f"task_{t.source.value}"].find("bpmn:documentation", NS)
            assert doc is not None and f"- {t.event}: {t.label[0]}" in (doc.text or ""), t.event
            assert (f"gateway_{t.source.value}", t.event, f"task_{t.source.value}") not in flows
            continue
        gateway, task = f"gateway_{t.source.value}", f"task_{t.source.value}"
        target = f"end_{t.target.value}" if t.target in TERMINAL_STATES else f"task_{t.target.value}"
        merge = f"merge_{t.target.value}"  # where flows into a step with several ways in meet
        flow = next(
            (flows.get((s, t.event, g)) for s in (gateway, task) for g in (target, merge) if (s, t.event, g) in flows),
            None,
        )
        assert flow is not None, f"no flow {t.source.value} --{t.event}--> {t.target.value}"
        if flow.get("sourceRef") == gateway:
            condition = flow.find("bpmn:conditionExpression", NS)
            assert condition is not None
            assert condition.text == f'event == "{t.event}"'
    named = [f for f in _flows(xml) if f.get("name")]
    assert len(named) == len(drawn)


@TABLES
def test_every_deadline_state_has_a_non_interrupting_timer(table: tuple[Transition, ...]) -> None:
    xml = to_bpmn(table)
    by_id = _by_id(xml)
    timers = {b.get("attachedToRef"): b for b in _process(xml).findall("bpmn:boundaryEvent", NS)}
    outgoing = {f.get("sourceRef"): f.get("targetRef") for f in _flows(xml)}
    for state in _deadline_states(table):
        rule = STATE_DEADLINES[state]
        timer = timers[f"task_{state.value}"]
        assert timer.get("cancelActivity") == "false"
        duration = timer.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
        assert duration is not None
        assert duration.text == f"P{SlaPolicy().working_days(rule)}D"
        doc = timer.find("bpmn:documentation", NS)
        assert doc is not None and rule in (doc.text or "") and "working day" in (doc.text or "")
        escalate = by_id[outgoing[timer.get("id")] or ""]
        assert escalate.tag == f"{{{NS['bpmn']}}}intermediateThrowEvent"
        assert escalate.get("name") == f"Escalate: {rule}"
        notified = by_id[outgoing[escalate.get("id")] or ""]
        assert notified.tag == f"{{{NS['bpmn']}}}endEvent"
        assert notified.get("name") == "Escalation notified"


def test_bpmn_facts_of_todays_table() -> None:
    xml = to_bpmn()
    by_id = _by_id(xml)
    flows = {f.get("id"): f for f in _flows(xml)}
    accept = flows["flow_screening_accept_assignment"]
    assert (accept.get("sourceRef"), accept.get("name"), accept.get("targetRef")) == (
        "gateway_screening",
        "accept",
        "merge_assignment",
    )
    merged = flows["flow_assignment_merged"]
    assert (merged.get("sourceRef"), merged.get("targetRef")) == ("merge_assignment", "task_assignment")
    assert by_id["merge_assignment"].get("name") == "Into: Sent to the responsible agency"
    assert by_id["gateway_screening"].get("name") == "Being screened: which action?"
    start = by_id["start_complaint"]
    assert start.get("name") == "Complaint received"
    # The start and the supervisor's escalation (a self-loop) both lead into the first step: they merge first.
    assert [f.get("targetRef") for f in flows.values() if f.get("sourceRef") == "start_complaint"] == ["merge_received"]
    assert [f.get("sourceRef") for f in flows.values() if f.get("targetRef") == "gateway_screening"] == [
        "task_screening"
    ]
    withdrawals = [f for f in flows.values() if f.get("targetRef") == "merge_withdrawn"]
    assert {f.get("sourceRef") for f in withdrawals} >= {"gateway_received", "gateway_screening", "gateway_stage1"}
    assert {f.get("name") for f in withdrawals} == {"withdraw"}
    assert by_id["end_withdrawn"].get("name") == "Withdrawn by the complainant"
    lanes = {
        ref.text: lane.get("name")
        for lane in _process(xml).findall("bpmn:laneSet/bpmn:lane", NS)
        for ref in lane.findall("bpmn:flowNodeRef", NS)
    }
    assert lanes["task_screening"] == "PSC"
    assert lanes["task_assignment"] == lanes["task_stage1"] == "Agency"
    assert lanes["task_responded"] == lanes["end_withdrawn"] == "PSC"
    # The complainant is the one who acts while information is awaited, and after the review's outcome.
    assert lanes["task_awaiting_info"] == lanes["task_closed_stage2"] == lanes["end_referred"] == "Citizen"
    assert lanes["task_closed"] == "PSC"  # staff may allow a late review or reopen: not the citizen's alone
    duration = by_id["timer_screening"].find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
    assert duration is not None and duration.text == "P1D"
    assert by_id["timer_stage1"].get("attachedToRef") == "task_stage1"
    # Every step that can be withdrawn has another way out too, hence a gateway.
    assert {f"gateway_{t.source.value}" for t in TRANSITIONS if t.event == "withdraw"} <= set(by_id)
    # SLA bookkeeping is listed on the task instead of looping back to it.
    stage1_doc = by_id["task_stage1"].find("bpmn:documentation", NS)
    assert stage1_doc is not None and "- sla_reminder: " in (stage1_doc.text or "")
    assert not [f for f in flows.values() if f.get("name") in {"sla_reminder", "sla_breach", "deadlines_moved"}]


def _label_bounds(xml: str) -> dict[str, tuple[float, float, float, float]]:
    root = ET.fromstring(xml)
    labels = {}
    for tag in ("BPMNShape", "BPMNEdge"):
        for di in root.iter(f"{{{NS['bpmndi']}}}{tag}"):
            label = di.find("bpmndi:BPMNLabel", NS)
            if label is not None:
                labels[di.get("bpmnElement", "")] = _bounds(label)
    return labels


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@TABLES
def test_bpmn_names_sit_clear_of_nodes_and_of_each_other(table: tuple[Transition, ...]) -> None:
    xml = to_bpmn(table)
    process = _process(xml)
    shapes = _shapes(xml)
    labels = _label_bounds(xml)
    # Events and flows carry their names outside the shape; every one is placed, none left to bpmn-js.
    named = {el.get("id", "") for el in process.iter() if el.get("name") and el.tag.endswith(("Event", "sequenceFlow"))}
    assert named and named <= set(labels), sorted(named - set(labels))
    nodes = [el.get("id", "") for tag in FLOW_NODES for el in process.findall(f"bpmn:{tag}", NS)]
    for owner, box in labels.items():
        for node in nodes:
            assert not _overlap(box, shapes[node]), f"name of {owner} on {node}"
    items = sorted(labels.items())
    for i, (a, box_a) in enumerate(items):
        for b, box_b in items[i + 1 :]:
            assert not _overlap(box_a, box_b), f"names of {a} and {b} overlap"
    for lane in process.findall("bpmn:laneSet/bpmn:lane", NS):
        _, ly, _, lh = shapes[lane.get("id", "")]
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            if ref.text in labels:
                _, y, _, h = labels[ref.text or ""]
                assert ly <= y and y + h <= ly + lh, f"name of {ref.text} leaves its lane"


@TABLES
def test_bpmn_flows_between_the_same_nodes_are_drawn_apart(table: tuple[Transition, ...]) -> None:
    xml = to_bpmn(table)
    root = ET.fromstring(xml)
    points = {
        e.get("bpmnElement"): [(w.get("x"), w.get("y")) for w in e.findall("di:waypoint", NS)]
        for e in root.iter(f"{{{NS['bpmndi']}}}BPMNEdge")
    }
    pairs: dict[tuple[str | None, str | None], list[str]] = {}
    for flow in _flows(xml):
        pairs.setdefault((flow.get("sourceRef"), flow.get("targetRef")), []).append(flow.get("id", ""))
    assert any(len(ids) > 1 for ids in pairs.values())  # the check has something to check
    for ids in pairs.values():
        # Parallel flows may leave together but arrive apart: their last segments do not lie on each other.
        tails = {(tuple(points[i][-2]), tuple(points[i][-1])) for i in ids}
        assert len(tails) == len(ids), ids


@TABLES
def test_escalate_events_throw_an_escalation_per_rule(table: tuple[Transition, ...]) -> None:
    xml = to_bpmn(table)
    root = ET.fromstring(xml)
    escalations = {e.get("id"): e for e in root.findall("bpmn:escalation", NS)}
    assert {e.get("escalationCode") for e in escalations.values()} == {
        STATE_DEADLINES[s] for s in _deadline_states(table)
    }
    throws = _process(xml).findall("bpmn:intermediateThrowEvent", NS)
    assert len(throws) == len(_deadline_states(table))
    for event in throws:
        definition = event.find("bpmn:escalationEventDefinition", NS)
        assert definition is not None, event.get("id")
        escalation = escalations[definition.get("escalationRef")]
        assert event.get("name") == f"Escalate: {escalation.get('escalationCode')}"


def test_bpmn_self_loop_returns_from_the_gateway_to_its_task() -> None:
    xml = to_bpmn(GROWN)
    loop = next(f for f in _flows(xml) if f.get("name") == "extend")
    assert (loop.get("sourceRef"), loop.get("targetRef")) == ("gateway_stage1", "merge_stage1")


# -------------------------------------------------------------------------------------------------- Mermaid


def _mermaid_edges(text: str) -> dict[tuple[str, ...], list[str]]:
    lines = [line.strip() for line in text.splitlines() if "-->" in line and "[*]" not in line]
    return {tuple(line.split(" : ", 1)[0].split(" --> ")): line.split(" : ", 1)[1].split(", ") for line in lines}


@TABLES
def test_mermaid_has_a_line_per_pair_of_states_naming_every_event(table: tuple[Transition, ...]) -> None:
    text = to_mermaid(table)
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "stateDiagram-v2"
    assert f"[*] --> {INITIAL_STATE.value}" in lines
    expected: dict[tuple[str, ...], list[str]] = {}
    for t in table:
        expected.setdefault((t.source.value, t.target.value), []).append(t.event)
    # Every (source, event, target) of the table, in table order; rows joining the same states share a line.
    assert _mermaid_edges(text) == expected
    for state in _terminals_reached(table):
        assert f"{state.value} --> [*]" in lines
    for state in _states(table):
        assert f"{state.value} : {STATE_LABELS[state][0]}" in lines


def test_mermaid_facts_of_todays_table() -> None:
    text = to_mermaid()
    lines = [line.strip() for line in text.splitlines()]
    assert "screening --> assignment : accept" in lines
    assert "stage1 : Agency is handling it" in lines
    assert "withdrawn --> [*]" in lines
    assert _mermaid_edges(to_mermaid(GROWN))[("stage1", "stage1")][-1] == "extend"


# ----------------------------------------------------------------------------------------------------- JSON


@TABLES
def test_json_round_trips_with_a_row_per_transition(table: tuple[Transition, ...]) -> None:
    document = json.loads(to_json(table))
    assert document["transitions"] == as_table(table)
    assert len(document["transitions"]) == len(table)
    assert document["initial_state"] == INITIAL_STATE.value
    states = {s["code"]: s for s in document["states"]}
    assert set(states) == {s.value for s in _states(table)}
    for state in _states(table):
        row = states[state.value]
        assert (row["label_en"], row["label_th"]) == STATE_LABELS[state]
        assert row["terminal"] is (state in TERMINAL_STATES)
        assert row["deadline_rule"] == STATE_DEADLINES.get(state)


def test_json_facts_of_todays_table() -> None:
    document = json.loads(to_json())
    accept = next(r for r in document["transitions"] if r["event"] == "accept")
    assert (accept["source"], accept["target"], accept["roles"]) == (
        "screening",
        "assignment",
        ["officer", "supervisor", "system"],  # the system when auto-screening is on
    )
    assert next(s for s in document["states"] if s["code"] == "stage1")["deadline_rule"] == "stage1_response"
    assert "ส่งเรื่องให้หน่วยงานที่รับผิดชอบ" in to_json()  # Thai kept readable, not \u-escaped


# ------------------------------------------------------------------------------------------------------ CLI

runner = CliRunner()


def test_cli_exports_bpmn() -> None:
    result = runner.invoke(app, ["process", "export", "--format", "bpmn"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<?xml")
    assert _process(result.stdout).get("id") == PROCESS_ID
    assert result.stdout == to_bpmn()


def test_cli_defaults_to_json_and_exports_mermaid() -> None:
    result = runner.invoke(app, ["process", "export"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["transitions"]) == len(TRANSITIONS)
    result = runner.invoke(app, ["process", "export", "--format", "mermaid"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stateDiagram-v2")


def test_cli_writes_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "process.bpmn"
    result = runner.invoke(app, ["process", "export", "--format", "bpmn", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8") == to_bpmn()


def test_cli_rejects_an_unknown_format() -> None:
    result = runner.invoke(app, ["process", "export", "--format", "nope"])
    assert result.exit_code == 2


def test_committed_docs_match_the_table() -> None:
    result = CliRunner().invoke(app, ["process", "docs", "--check"])
    assert result.exit_code == 0, result.output


def test_docs_list_the_clock_of_every_state() -> None:
    from processdoc.docs import to_markdown
    from workflows.process import SETTLED_STATES, TASK_DEADLINES

    text = to_markdown()
    clocks = text.split("## Clocks", 1)[1].split("## Transitions", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in clocks.splitlines() if line.startswith("| `")}
    assert set(rows) == {s.value for s in State}
    for state in State:
        row = rows[state.value]
        if state in TERMINAL_STATES or state in SETTLED_STATES:
            assert "none:" in row, state
            continue
        rule = TASK_DEADLINES.get(state) or STATE_DEADLINES[state]
        assert f"`{rule}`" in row and str(SlaPolicy().working_days(rule)) in row, state
    assert "`stage2_findings`" in rows["stage2_investigation"] and "agency" in rows["stage2_investigation"]
    assert "moves by the working days waited" in rows["stage1"]
