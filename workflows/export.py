"""The process table rendered for people and tools: JSON rows, a Mermaid state diagram and BPMN 2.0 XML.

Everything here is derived from ``workflows.process``; nothing names a state or an event, so a row added to
the table shows up in every export. Pure: no Temporal, no I/O.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sla.policy import SlaPolicy
from workflows.process import (
    FILED_LABEL,
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

PROCESS_ID = "complaint_process"


class ExportFormat(StrEnum):
    """What ``rongtuk process export --format`` accepts."""

    JSON = "json"
    MERMAID = "mermaid"
    BPMN = "bpmn"


def export(fmt: ExportFormat | str, transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """Render ``transitions`` in the named format (what ``rongtuk process export`` prints)."""
    renderers: Mapping[ExportFormat, Callable[[Sequence[Transition]], str]] = {
        ExportFormat.JSON: to_json,
        ExportFormat.MERMAID: to_mermaid,
        ExportFormat.BPMN: to_bpmn,
    }
    return renderers[ExportFormat(fmt)](transitions)


def _label(state: State) -> tuple[str, str]:
    # A state added to the enum before it gets labels still exports, under its code.
    return STATE_LABELS.get(state, (state.value, state.value))


def _walk(transitions: Sequence[Transition]) -> list[State]:
    """The states the table mentions, depth-first from the initial state in table order, then any unreached.

    The table lists each state's main way forward first, so depth-first puts the main line of the process
    first and side paths (waiting for information, withdrawal) after it.
    """
    order: list[State] = []

    def visit(state: State) -> None:
        order.append(state)
        for t in transitions:
            if t.source == state and t.target not in order:
                visit(t.target)

    visit(INITIAL_STATE)
    for t in transitions:
        for state in (t.source, t.target):
            if state not in order:
                order.append(state)
    return order


def to_json(transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """The table as pretty JSON: the ``as_table()`` rows plus every state it mentions."""
    document = {
        "process": PROCESS_ID,
        "initial_state": INITIAL_STATE.value,
        "states": [
            {
                "code": state.value,
                "label_en": _label(state)[0],
                "label_th": _label(state)[1],
                "terminal": state in TERMINAL_STATES,
                "deadline_rule": STATE_DEADLINES.get(state),
            }
            for state in _walk(transitions)
        ],
        "transitions": as_table(transitions),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _mermaid_text(text: str) -> str:
    # A description runs to the end of the line; a stray newline or ';' would start a new statement.
    return " ".join(text.replace(";", ",").split())


def to_mermaid(transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """The table as a Mermaid ``stateDiagram-v2``: one line per pair of states, English state labels.

    Rows that join the same two states share a line, their events joined by ", ".
    """
    states = _walk(transitions)
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE.value}"]
    lines += [f"    {state.value} : {_mermaid_text(_label(state)[0])}" for state in states]
    # Mermaid draws edges between the same two states on top of each other (and keeps one self-loop per
    # state), so each pair gets one edge carrying all its events.
    events: dict[tuple[State, State], list[str]] = {}
    for t in transitions:
        events.setdefault((t.source, t.target), []).append(t.event)
    lines += [
        f"    {source.value} --> {target.value} : {', '.join(names)}" for (source, target), names in events.items()
    ]
    reached = {t.target for t in transitions}
    lines += [f"    {state.value} --> [*]" for state in states if state in TERMINAL_STATES and state in reached]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- BPMN

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

for _prefix, _uri in (("bpmn", BPMN_NS), ("bpmndi", BPMNDI_NS), ("dc", DC_NS), ("di", DI_NS), ("xsi", XSI_NS)):
    ET.register_namespace(_prefix, _uri)


# The xsi:type value is a QName, so it carries the prefix the elements are written with.
_FORMAL = {f"{{{XSI_NS}}}type": "bpmn:tFormalExpression"}


@dataclass(frozen=True)
class _Lane:
    key: str
    name: str
    roles: frozenset[Role]


_LANES = (
    _Lane("citizen", "Citizen", frozenset({Role.CITIZEN})),
    _Lane("psc", "PSC", frozenset({Role.OFFICER, Role.SUPERVISOR, Role.SYSTEM})),
    _Lane("agency", "Agency", frozenset({Role.AGENCY})),
)
_LANE_BY_KEY = {lane.key: lane for lane in _LANES}


def _lane_for(roles: Iterable[Role]) -> str:
    """The lane of whoever does the work: an agency if one acts, else PSC staff, else the citizen."""
    present = frozenset(roles)
    # Withdrawal is open to the citizen and PSC staff almost everywhere, so it must not pull a step into
    # their lane when an agency (or PSC) is the one expected to act.
    for key in ("agency", "psc", "citizen"):
        if present & _LANE_BY_KEY[key].roles:
            return key
    return "psc"


def _ncname(*parts: str) -> str:
    raw = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


@dataclass
class _Node:
    id: str
    tag: str
    name: str
    lane: str
    column: int
    documentation: str = ""
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    # Where the node sits in its column: "main" row, or the escalation chain "timer", "escalate", "notified".
    slot: str = "main"
    deadline: tuple[str, int] | None = None  # SLA rule and working days, on timers
    # Bounds, set by the layout.
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class _Flow:
    id: str
    source: _Node
    target: _Node
    name: str = ""
    condition: str = ""
    documentation: str = ""
    waypoints: list[tuple[float, float]] = field(default_factory=list)
    label: tuple[float, float, float, float] | None = None


_SIZES = {
    "userTask": (100.0, 80.0),
    "exclusiveGateway": (50.0, 50.0),
    "startEvent": (36.0, 36.0),
    "endEvent": (36.0, 36.0),
    "boundaryEvent": (36.0, 36.0),
    "intermediateThrowEvent": (36.0, 36.0),
}
# Horizontal room each kind of column takes; a task column also holds its gateway.
_COLUMN_WIDTH = {"startEvent": 110.0, "userTask": 260.0, "endEvent": 130.0}
_GATEWAY_OFFSET = 150.0  # task left edge to gateway left edge
_TRACK_GAP = 18.0  # between horizontal tracks of flows that skip columns
_LOOP_GAP = 16.0  # between nested self-loops of one task
_LANE_HEADER = 30.0


class _Model:
    """The flow nodes and sequence flows of the BPMN process, before and after layout."""

    def __init__(self, transitions: Sequence[Transition], policy: SlaPolicy) -> None:
        self.nodes: list[_Node] = []
        self.flows: list[_Flow] = []
        states = _walk(transitions)
        reached = {t.target for t in transitions}
        tasks = [s for s in states if s not in TERMINAL_STATES]
        ends = [s for s in states if s in TERMINAL_STATES and s in reached]
        outgoing = {s: [t for t in transitions if t.source == s] for s in tasks}

        self.task: dict[State, _Node] = {}
        self.exit: dict[State, _Node] = {}
        self.end: dict[State, _Node] = {}
        column = 0
        # The start event shares the first task's lane so the process opens with a straight line.
        start_lane = _lane_for(r for t in outgoing.get(INITIAL_STATE, []) for r in t.roles)
        start = self._node(
            "start_complaint",
            "startEvent",
            FILED_LABEL[0],
            start_lane,
            column,
            f"{FILED_LABEL[1]}\nThe complaint is filed.",
        )
        for state in tasks:
            column += 1
            roles = {r for t in outgoing[state] for r in t.roles}
            lane = _lane_for(roles)
            en, th = _label(state)
            doc = th
            if roles:
                doc += "\nActs here: " + ", ".join(sorted(r.value for r in roles))
            if state in STATE_DEADLINES:
                doc += f"\nSLA rule: {STATE_DEADLINES[state]}"
            task = self._node(_ncname("task", state.value), "userTask", en, lane, column, doc)
            self.task[state] = self.exit[state] = task
            if len(outgoing[state]) > 1:
                gateway = self._node(
                    _ncname("gateway", state.value),
                    "exclusiveGateway",
                    "",
                    lane,
                    column,
                    f"Which action was taken while the case is {state.value}",
                )
                self.exit[state] = gateway
                self._flow(_ncname("flow", state.value, "choice"), task, gateway)
        # The end reached from the latest steps comes first, so the main line ends next to its last task and
        # escape routes (reached from many steps) run past it.
        source_columns = {
            s: [self.task[t.source].column for t in transitions if t.target == s and t.source in self.task]
            for s in ends
        }
        ends.sort(key=lambda s: (max(source_columns[s], default=0), -min(source_columns[s], default=0)))
        for state in ends:
            column += 1
            roles = {r for t in transitions if t.target == state for r in t.roles}
            en, th = _label(state)
            self.end[state] = self._node(_ncname("end", state.value), "endEvent", en, _lane_for(roles), column, th)
        if INITIAL_STATE in self.task:
            self._flow(_ncname("flow_start", INITIAL_STATE.value), start, self.task[INITIAL_STATE])

        for t in transitions:
            if t.source not in self.task:
                continue  # a row leaving a terminal state cannot happen; nothing to draw
            target = self.task.get(t.target) or self.end[t.target]
            source = self.exit[t.source]
            gateway_exit = source is not self.task[t.source]
            doc = f"{t.label[0]} / {t.label[1]}\nRoles: {', '.join(sorted(r.value for r in t.roles))}"
            if t.per_agency:
                doc += "\nFired by an assigned agency on its own task"
                if t.target != t.source:
                    doc += "; the case moves on once every agency's task has caught up and waits here until then"
                doc += "."
            self._flow(
                _ncname("flow", t.source.value, t.event, t.target.value),
                source,
                target,
                name=t.event,
                condition=f"event == {json.dumps(t.event)}" if gateway_exit else "",
                documentation=doc,
            )

        for state, rule in STATE_DEADLINES.items():
            if state not in self.task:
                continue
            task = self.task[state]
            days = policy.working_days(rule)
            timer = self._node(
                _ncname("timer", state.value),
                "boundaryEvent",
                f"{rule} deadline",
                task.lane,
                task.column,
                f"SLA rule '{rule}': {days} Thai working day(s) by default (config/sla.yaml). P{days}D here counts "
                "Thai working days (Monday-Friday minus public and government holidays), not calendar days. "
                "Non-interrupting: the case stays in this step while the deadline is escalated.",
                attrs={"attachedToRef": task.id, "cancelActivity": "false"},
            )
            timer.slot, timer.deadline = "timer", (rule, days)
            escalate = self._node(
                _ncname("escalate", state.value),
                "intermediateThrowEvent",
                f"Escalate: {rule}",
                task.lane,
                task.column,
                f"Raised when the '{rule}' deadline passes; the case stays in its step.",
            )
            escalate.slot = "escalate"
            notified = self._node(
                _ncname("end_escalation", state.value), "endEvent", "Escalation notified", task.lane, task.column
            )
            notified.slot = "notified"
            self._flow(_ncname("flow", state.value, "deadline"), timer, escalate)
            self._flow(_ncname("flow", state.value, "escalated"), escalate, notified)

    def _node(
        self,
        node_id: str,
        tag: str,
        name: str,
        lane: str,
        column: int,
        documentation: str = "",
        attrs: dict[str, str] | None = None,
    ) -> _Node:
        node = _Node(node_id, tag, name, lane, column, documentation, attrs=attrs or {})
        node.w, node.h = _SIZES[tag]
        self.nodes.append(node)
        return node

    def _flow(
        self, flow_id: str, source: _Node, target: _Node, name: str = "", condition: str = "", documentation: str = ""
    ) -> None:
        self.flows.append(_Flow(flow_id, source, target, name, condition, documentation))
        source.outgoing.append(flow_id)
        target.incoming.append(flow_id)


def _text_width(text: str) -> float:
    return max(30.0, 6.5 * len(text))


class _Layout:
    """Left-to-right placement: one column per main node, one band per lane.

    Every task, terminal end event and the start event owns a column (breadth-first order from the initial
    state), so vertical flow segments never pass through another lane's nodes. Each lane is, top to bottom, a
    band of horizontal tracks for flows that skip columns, the main row (tasks, gateways, events) and, when a
    step has a deadline, a row for its escalation. Flows to the next column bend once; longer ones climb or
    drop into a track of the target's lane and enter the target from above.
    """

    def __init__(self, model: _Model) -> None:
        self.model = model
        self.main = [n for n in model.nodes if n.slot == "main" and n.tag in _COLUMN_WIDTH]
        self.tracks: dict[str, dict[str, int]] = {lane.key: {} for lane in _LANES}
        # Flows with the same ends share a route; their rank spreads their labels (and nests self-loops).
        self.rank: dict[str, int] = {}
        seen: dict[tuple[str, str], int] = {}
        for flow in model.flows:
            key = (flow.source.id, flow.target.id)
            self.rank[flow.id] = seen[key] = seen.get(key, -1) + 1
        self.loops = {lane.key: 0 for lane in _LANES}
        for flow in model.flows:
            if self._kind(flow) == "loop":
                self.loops[flow.target.lane] = max(self.loops[flow.target.lane], self.rank[flow.id] + 1)
        for flow in model.flows:
            if self._kind(flow) == "track":
                lane_tracks = self.tracks[flow.target.lane]
                lane_tracks.setdefault(flow.target.id, len(lane_tracks))
        self.lane_bounds: dict[str, tuple[float, float, float, float]] = {}
        self.pool: tuple[float, float, float, float] = (0, 0, 0, 0)
        self._place()
        for flow in model.flows:
            self._route(flow)

    def _kind(self, flow: _Flow) -> str:
        source, target = flow.source, flow.target
        if source.slot != "main":
            return "escalation"
        if target.tag == "exclusiveGateway" or source.tag == "startEvent":
            return "straight"
        if target is source or (target.tag == "userTask" and target.column == source.column):
            return "loop"
        if target.column == source.column + 1:
            return "straight" if target.lane == source.lane else "bend"
        return "track"

    def _place(self) -> None:
        lanes_x = 100.0 + _LANE_HEADER
        x = lanes_x + 60
        column_x: dict[int, float] = {}
        for node in sorted(self.main, key=lambda n: n.column):
            column_x[node.column] = x
            x += _COLUMN_WIDTH[node.tag]
        width = x - lanes_x + 20
        y = 80.0
        for lane in _LANES:
            nodes = [n for n in self.model.nodes if n.lane == lane.key]
            n_tracks = len(self.tracks[lane.key])
            task_top = y + 20 + _TRACK_GAP * n_tracks + 15 + _LOOP_GAP * self.loops[lane.key] + 20
            cy = task_top + 40
            bottom = task_top + 80
            if any(n.slot == "timer" for n in nodes):
                escalation_cy = bottom + 70
                bottom = escalation_cy + 60
            else:
                escalation_cy = cy
                bottom += 50
            if not nodes:
                bottom = y + 100
            for node in nodes:
                left = column_x[node.column]
                # The escalation chain hangs below the task's left half, clear of the vertical line that
                # leaves the gateway.
                if node.tag == "exclusiveGateway":
                    node.x, node.y = left + _GATEWAY_OFFSET, cy - node.h / 2
                elif node.slot == "timer":
                    node.x, node.y = left + 25 - node.w / 2, cy + 40 - node.h / 2
                elif node.slot == "escalate":
                    node.x, node.y = left + 25 - node.w / 2, escalation_cy - node.h / 2
                elif node.slot == "notified":
                    node.x, node.y = left + 115 - node.w / 2, escalation_cy - node.h / 2
                else:
                    node.x, node.y = left, cy - node.h / 2
            self.lane_bounds[lane.key] = (lanes_x, y, width, bottom - y)
            y = bottom
        self.pool = (100.0, 80.0, width + _LANE_HEADER, y - 80.0)

    def _parallel(self, flow: _Flow) -> list[_Flow]:
        return [f for f in self.model.flows if f.source is flow.source and f.target is flow.target]

    def _track_y(self, flow: _Flow) -> float:
        lane_top = self.lane_bounds[flow.target.lane][1]
        return lane_top + 20 + _TRACK_GAP * self.tracks[flow.target.lane][flow.target.id]

    def _route(self, flow: _Flow) -> None:
        source, target = flow.source, flow.target
        kind = self._kind(flow)
        width = _text_width(flow.name)
        if kind == "escalation":
            if source.slot == "timer":
                flow.waypoints = [(source.cx, source.y + source.h), (target.cx, target.y)]
            else:
                flow.waypoints = [(source.x + source.w, source.cy), (target.x, target.cy)]
            return
        rank = self.rank[flow.id]
        if kind == "straight":
            flow.waypoints = [(source.x + source.w, source.cy), (target.x, target.cy)]
            mid = (source.x + source.w + target.x) / 2
            if flow.name:
                flow.label = (mid - width / 2, source.cy - 20 - 14 * rank, width, 14)
            return
        # Flows leave a gateway from its top or bottom; a task without a gateway first steps right to where
        # its gateway would be, so the exit column stays clear of escalation nodes.
        exit_x = source.cx if source.tag == "exclusiveGateway" else source.x + _GATEWAY_OFFSET + 25
        points: list[tuple[float, float]] = []
        if source.tag != "exclusiveGateway":
            points.append((source.x + source.w, source.cy))
            points.append((exit_x, source.cy))

        def leave(towards_y: float) -> None:
            if source.tag == "exclusiveGateway":
                points.append((exit_x, source.y if towards_y < source.cy else source.y + source.h))

        if kind == "loop":
            loop_y = target.y - 20 - _LOOP_GAP * rank
            leave(loop_y)
            entry_x = target.x + 80
            points += [(exit_x, loop_y), (entry_x, loop_y), (entry_x, target.y)]
            flow.label = (exit_x + 4, loop_y - 14, width, 14)
        elif kind == "bend":
            leave(target.cy)
            points += [(exit_x, target.cy), (target.x, target.cy)]
            flow.label = (exit_x + 6, target.cy - 18 - 14 * rank, width, 14)
        else:
            track_y = self._track_y(flow)
            leave(track_y)
            points += [(exit_x, track_y), (target.cx, track_y), (target.cx, target.y)]
            # Parallel flows run on one track, so their names line up along it.
            offset = sum(_text_width(f.name) + 8 for f in self._parallel(flow)[:rank])
            flow.label = (exit_x + 4 + offset, track_y - 15, width, 14)
        flow.waypoints = points


def _sub(parent: ET.Element, ns: str, tag: str, attrs: Mapping[str, str] | None = None, text: str = "") -> ET.Element:
    element = ET.SubElement(parent, f"{{{ns}}}{tag}", dict(attrs or {}))
    if text:
        element.text = text
    return element


def _fmt(value: float) -> str:
    return f"{value:g}"


def _bounds(parent: ET.Element, x: float, y: float, w: float, h: float) -> None:
    _sub(parent, DC_NS, "Bounds", {"x": _fmt(x), "y": _fmt(y), "width": _fmt(w), "height": _fmt(h)})


def to_bpmn(transitions: Sequence[Transition] = TRANSITIONS, policy: SlaPolicy | None = None) -> str:
    """The table as BPMN 2.0 XML with lanes, SLA timers and a diagram that opens laid out in bpmn.io.

    Documentation, not an executable model (``isExecutable="false"``): ``ComplaintWorkflow`` runs the table.
    Timer durations use ``policy`` (default: the built-in ``SlaPolicy()`` allowances) and count Thai working
    days, which ISO 8601 cannot say; the boundary events' documentation spells that out.
    """
    model = _Model(transitions, policy or SlaPolicy())
    layout = _Layout(model)

    root = ET.Element(
        f"{{{BPMN_NS}}}definitions",
        {
            "id": "definitions_rongtuk",
            "targetNamespace": "urn:rongtuk:complaint-process",
            "exporter": "rongtuk process export",
            "exporterVersion": "1",
        },
    )
    collaboration = _sub(root, BPMN_NS, "collaboration", {"id": "collaboration_complaints"})
    _sub(
        collaboration,
        BPMN_NS,
        "participant",
        {"id": "participant_complaint_centre", "name": "Complaint centre", "processRef": PROCESS_ID},
    )
    process = _sub(root, BPMN_NS, "process", {"id": PROCESS_ID, "name": "Complaint handling", "isExecutable": "false"})
    _sub(
        process,
        BPMN_NS,
        "documentation",
        text="Generated from workflows/process.py by `rongtuk process export --format bpmn`; do not edit by hand.",
    )
    lane_set = _sub(process, BPMN_NS, "laneSet", {"id": "laneset_complaints"})
    for lane in _LANES:
        lane_el = _sub(lane_set, BPMN_NS, "lane", {"id": _ncname("lane", lane.key), "name": lane.name})
        _sub(lane_el, BPMN_NS, "documentation", text="Roles: " + ", ".join(sorted(r.value for r in lane.roles)))
        for node in model.nodes:
            if node.lane == lane.key:
                _sub(lane_el, BPMN_NS, "flowNodeRef", text=node.id)

    for node in model.nodes:
        attrs = {"id": node.id, **({"name": node.name} if node.name else {}), **node.attrs}
        element = _sub(process, BPMN_NS, node.tag, attrs)
        if node.documentation:
            _sub(element, BPMN_NS, "documentation", text=node.documentation)
        for flow_id in node.incoming:
            _sub(element, BPMN_NS, "incoming", text=flow_id)
        for flow_id in node.outgoing:
            _sub(element, BPMN_NS, "outgoing", text=flow_id)
        if node.deadline is not None:
            rule, days = node.deadline
            timer = _sub(element, BPMN_NS, "timerEventDefinition", {"id": _ncname(node.id, "definition")})
            timer.append(ET.Comment(f" SLA rule {rule}: {days} Thai working days, not calendar days "))
            _sub(timer, BPMN_NS, "timeDuration", _FORMAL, f"P{days}D")

    for flow in model.flows:
        attrs = {"id": flow.id, "sourceRef": flow.source.id, "targetRef": flow.target.id}
        if flow.name:
            attrs["name"] = flow.name
        element = _sub(process, BPMN_NS, "sequenceFlow", attrs)
        if flow.documentation:
            _sub(element, BPMN_NS, "documentation", text=flow.documentation)
        if flow.condition:
            _sub(element, BPMN_NS, "conditionExpression", _FORMAL, flow.condition)

    diagram = _sub(root, BPMNDI_NS, "BPMNDiagram", {"id": "diagram_complaints"})
    plane = _sub(diagram, BPMNDI_NS, "BPMNPlane", {"id": "plane_complaints", "bpmnElement": "collaboration_complaints"})
    pool = _sub(
        plane,
        BPMNDI_NS,
        "BPMNShape",
        {
            "id": "shape_participant_complaint_centre",
            "bpmnElement": "participant_complaint_centre",
            "isHorizontal": "true",
        },
    )
    _bounds(pool, *layout.pool)
    for lane in _LANES:
        lane_id = _ncname("lane", lane.key)
        shape = _sub(
            plane, BPMNDI_NS, "BPMNShape", {"id": f"shape_{lane_id}", "bpmnElement": lane_id, "isHorizontal": "true"}
        )
        _bounds(shape, *layout.lane_bounds[lane.key])
    for node in model.nodes:
        attrs = {"id": f"shape_{node.id}", "bpmnElement": node.id}
        if node.tag == "exclusiveGateway":
            attrs["isMarkerVisible"] = "true"
        shape = _sub(plane, BPMNDI_NS, "BPMNShape", attrs)
        _bounds(shape, node.x, node.y, node.w, node.h)
        if node.tag.endswith("Event") and node.name:
            label = _sub(shape, BPMNDI_NS, "BPMNLabel")
            if node.slot == "timer":
                # Below the timer sits the flow to its escalation; the name goes beside it instead.
                _bounds(label, node.x + node.w + 4, node.y + node.h - 12, 90, 27)
            else:
                _bounds(label, node.cx - 40, node.y + node.h + 4, 80, 27)
    for flow in model.flows:
        edge = _sub(plane, BPMNDI_NS, "BPMNEdge", {"id": f"edge_{flow.id}", "bpmnElement": flow.id})
        for px, py in flow.waypoints:
            _sub(edge, DI_NS, "waypoint", {"x": _fmt(px), "y": _fmt(py)})
        if flow.label is not None:
            _bounds(_sub(edge, BPMNDI_NS, "BPMNLabel"), *flow.label)

    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


DOCS_MARKER = "## State diagram"


def to_markdown(transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """The generated part of ``docs/process.md``: the Mermaid diagram and the tables of states and edges."""
    states = _walk(transitions)
    lines = [
        DOCS_MARKER,
        "",
        "Mermaid draws edges between the same two states on top of each other, so rows joining the same pair of",
        "states share one edge listing all their events.",
        "",
        "```mermaid",
        to_mermaid(transitions).rstrip("\n"),
        "```",
        "",
        "## States",
        "",
        "| state | label | ไทย | ends the process | deadline (SLA rule) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for state in states:
        en, th = _label(state)
        ends = "yes" if state in TERMINAL_STATES else ""
        lines.append(f"| `{state.value}` | {en} | {th} | {ends} | {STATE_DEADLINES.get(state, '')} |")
    lines += [
        "",
        "## Transitions",
        "",
        "| event | from | to | roles | per agency | guard |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t in transitions:
        roles = ", ".join(sorted(r.value for r in t.roles))
        lines.append(
            f"| `{t.event}` | {t.source.value} | {t.target.value} | {roles} | "
            f"{'yes' if t.per_agency else ''} | {t.guard or ''} |"
        )
    return "\n".join(lines) + "\n"


def render_docs(current: str, transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """``docs/process.md`` with everything from the state diagram on regenerated from the table."""
    head = current.split(DOCS_MARKER, 1)[0]
    return head + to_markdown(transitions)
