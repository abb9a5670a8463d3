"""The process table as BPMN 2.0 XML with a computed diagram layout (lanes, gateways, SLA timers).

The diagram draws every row as a sequence flow named by its event, except bookkeeping rows
(``is_bookkeeping``): rows only the system fires that leave the case in its step -- SLA reminders, breaches and
escalations, recalculated deadlines, reminders to the complainant. There are up to five of them on almost every
step, and drawn as self-loops they buried each step's real choices under a stack of look-alike arrows whose
names could not be told apart. They change nothing a reader of the process follows, so each is listed with its
labels in its step's task documentation (next to the SLA rule whose timer drives most of them) instead. JSON,
Mermaid and the docs tables keep every row.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from processdoc.states import PROCESS_ID, state_label, walk_states
from sla.policy import SlaPolicy
from workflows.process import (
    FILED_LABEL,
    INITIAL_STATE,
    STATE_DEADLINES,
    TERMINAL_STATES,
    TRANSITIONS,
    Role,
    State,
    Transition,
)

# ---------------------------------------------------------------------------------------------------- BPMN
#
# What the diagram leaves out, and why:
#
# * Bookkeeping rows -- a row only the system fires that leaves the case where it is (SLA reminders, breaches,
#   escalations, recalculated deadlines, reminders to the complainant) -- are not drawn as sequence flows.
#   There are several of them on almost every step; drawn as self-loops they buried the real choices of each
#   step under a stack of identical arrows. Each is listed, with its labels, in the documentation of its
#   step's task, which also names the SLA rule whose timer drives most of them. Every other row is one
#   sequence flow named by its event.
# * A lane is only drawn if a node belongs to it.

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


def is_bookkeeping(t: Transition) -> bool:
    """A row only the system fires that leaves the case in its step: documented on the task, not drawn."""
    return t.source == t.target and t.roles == frozenset({Role.SYSTEM})


def _ubiquitous(transitions: Sequence[Transition]) -> set[str]:
    """Events fired from more than half of the open steps (withdrawal, escalation by a supervisor).

    They are open to nearly everyone nearly everywhere, so they say nothing about who works a given step.
    """
    open_states = {t.source for t in transitions} - TERMINAL_STATES
    sources: dict[str, set[State]] = {}
    for t in transitions:
        sources.setdefault(t.event, set()).add(t.source)
    return {event for event, states in sources.items() if 2 * len(states) > len(open_states)}


def _lane_for(rows: Sequence[Transition], ubiquitous: set[str]) -> str:
    """The lane of whoever does the work at a step (its outgoing rows) or at an end (its incoming rows).

    The citizen's lane when the citizen may fire every row that counts -- rows that are neither the system's
    own nor ubiquitous (see ``_ubiquitous``): staff firing them only act on the complainant's behalf, as when
    an officer records a reply that came by phone. Otherwise an agency's lane if an agency acts, else PSC's.
    Withdrawal is open to the citizen and PSC staff almost everywhere, so it must not pull a step into their
    lanes when an agency (or PSC) is the one expected to act.
    """
    counted = [t for t in rows if t.event not in ubiquitous and t.roles != frozenset({Role.SYSTEM})]
    if counted and all(Role.CITIZEN in t.roles for t in counted):
        return "citizen"
    present = frozenset(r for t in rows for r in t.roles)
    for key in ("agency", "psc", "citizen"):
        if present & _LANE_BY_KEY[key].roles:
            return key
    return "psc"


def _ncname(*parts: str) -> str:
    raw = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


# Advance widths of Arial (bpmn-js's font; Liberation Sans has the same metrics) in em, for sizing labels.
_ARIAL_EM = {
    **dict.fromkeys("ijl'|", 0.222),
    **dict.fromkeys(" ftI.,:;!/[]\\", 0.278),
    **dict.fromkeys("r()-", 0.333),
    **dict.fromkeys("ckvxyzsJ", 0.5),
    **dict.fromkeys("mM", 0.833),
    **dict.fromkeys("wCDHNRU", 0.722),
    **dict.fromkeys("GOQ", 0.778),
    "W": 0.944,
}
_EXTERNAL_FONT = 11.0  # bpmn-js external labels (events, flows)
_TASK_FONT = 12.0  # bpmn-js task names
_LINE_HEIGHT = 1.2


def _text_width(text: str, size: float = _EXTERNAL_FONT) -> float:
    em = sum(_ARIAL_EM.get(ch, 0.667 if ch.isupper() else 0.556) for ch in text)
    return round(em * size * 1.04 + 2, 1)


def _wrap(text: str, width: float, size: float = _EXTERNAL_FONT) -> list[str]:
    """Greedy word wrap the way bpmn-js lays out text, breaking at spaces only."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def _label_box(text: str, preferred: float) -> tuple[float, float]:
    """Width and height of a label box: ``preferred`` wide unless a word needs more, never broken mid-word.

    bpmn-js breaks lines at spaces and hyphens only and cuts a word that does not fit, so the box is made wide
    enough for the longest word (``stage2_acknowledge``) and as tall as the lines the text wraps into.
    """
    width = max([preferred, *(_text_width(word) for word in text.split())])
    lines = _wrap(text, width)
    width = max(_text_width(line) for line in lines)
    return width, len(lines) * _EXTERNAL_FONT * _LINE_HEIGHT + 2


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
    escalation: str = ""  # id of the escalation an "Escalate" event throws
    # Bounds, set by the layout (tasks are sized to their name by the model).
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0
    label: tuple[float, float, float, float] | None = None

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
    "userTask": (110.0, 80.0),
    "exclusiveGateway": (50.0, 50.0),
    "startEvent": (36.0, 36.0),
    "endEvent": (36.0, 36.0),
    "boundaryEvent": (36.0, 36.0),
    "intermediateThrowEvent": (36.0, 36.0),
}


def _task_height(name: str) -> float:
    # bpmn-js centres a task's name with 5px padding; the timer on the bottom edge covers its lowest 18px, so
    # the box grows until the wrapped name clears it.
    lines = len(_wrap(name, _SIZES["userTask"][0] - 12, _TASK_FONT))
    return max(_SIZES["userTask"][1], 2 * 22 + lines * _TASK_FONT * _LINE_HEIGHT + 4)


class _Model:
    """The flow nodes and sequence flows of the BPMN process, before and after layout."""

    def __init__(self, transitions: Sequence[Transition], policy: SlaPolicy) -> None:
        self.nodes: list[_Node] = []
        self.flows: list[_Flow] = []
        self.escalations: dict[str, str] = {}  # SLA rule -> escalation id
        states = walk_states(transitions)
        reached = {t.target for t in transitions}
        tasks = [s for s in states if s not in TERMINAL_STATES]
        ends = [s for s in states if s in TERMINAL_STATES and s in reached]
        drawn = [t for t in transitions if not is_bookkeeping(t)]
        outgoing = {s: [t for t in drawn if t.source == s] for s in tasks}
        ubiquitous = _ubiquitous(transitions)

        self.task: dict[State, _Node] = {}
        self.exit: dict[State, _Node] = {}
        self.end: dict[State, _Node] = {}
        column = 0
        # The start event shares the first task's lane so the process opens with a straight line.
        start_lane = _lane_for(outgoing.get(INITIAL_STATE, []), ubiquitous)
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
            en, th = state_label(state)
            doc = th
            if roles:
                doc += "\nActs here: " + ", ".join(sorted(r.value for r in roles))
            if state in STATE_DEADLINES:
                doc += f"\nSLA rule: {STATE_DEADLINES[state]}"
            kept = [t for t in transitions if t.source == state and is_bookkeeping(t)]
            if kept:
                doc += "\nRecorded by the system without leaving this step (not drawn):"
                doc += "".join(f"\n- {t.event}: {t.label[0]} / {t.label[1]}" for t in kept)
            task = self._node(
                _ncname("task", state.value), "userTask", en, _lane_for(outgoing[state], ubiquitous), column, doc
            )
            task.h = _task_height(en)
            self.task[state] = self.exit[state] = task
            if len(outgoing[state]) > 1:
                gateway = self._node(
                    _ncname("gateway", state.value),
                    "exclusiveGateway",
                    f"{en}: which action?",
                    task.lane,
                    column,
                    f"Which action was taken while the case is {state.value}",
                )
                self.exit[state] = gateway
                self._flow(_ncname("flow", state.value, "choice"), task, gateway)
        # The end reached from the latest steps comes first, so the main line ends next to its last task and
        # escape routes (reached from many steps) run past it.
        source_columns = {
            s: [self.task[t.source].column for t in drawn if t.target == s and t.source in self.task] for s in ends
        }
        ends.sort(key=lambda s: (max(source_columns[s], default=0), -min(source_columns[s], default=0)))
        for state in ends:
            column += 1
            lane = _lane_for([t for t in drawn if t.target == state], ubiquitous)
            en, th = state_label(state)
            self.end[state] = self._node(_ncname("end", state.value), "endEvent", en, lane, column, th)
        if INITIAL_STATE in self.task:
            self._flow(_ncname("flow_start", INITIAL_STATE.value), start, self.task[INITIAL_STATE])

        for t in drawn:
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

        self._merge_joins()

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
            escalate.escalation = self.escalations.setdefault(rule, _ncname("escalation", rule))
            notified = self._node(
                _ncname("end_escalation", state.value), "endEvent", "Escalation notified", task.lane, task.column
            )
            notified.slot = "notified"
            self._flow(_ncname("flow", state.value, "deadline"), timer, escalate)
            self._flow(_ncname("flow", state.value, "escalated"), escalate, notified)

    def _merge_joins(self) -> None:
        """Flows that meet at a task or an end meet at a named merging gateway just before it (no implicit
        joins: every task and event has at most one incoming flow)."""
        for target in [n for n in self.nodes if n.slot == "main" and n.tag in ("userTask", "endEvent")]:
            if len(target.incoming) < 2:
                continue
            key = target.id.split("_", 1)[1]
            merge = self._node(
                _ncname("merge", key),
                "exclusiveGateway",
                f"Into: {target.name}",
                target.lane,
                target.column,
                f"The ways into '{target.name}' merge here (exclusive: one of them at a time).",
            )
            merge.slot = "merge"
            for flow in self.flows:
                if flow.target is target:
                    flow.target = merge
                    merge.incoming.append(flow.id)
            target.incoming.clear()
            self._flow(_ncname("flow", key, "merged"), merge, target)

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


_TASK_TO_GATEWAY = 50.0  # gap between a task and its gateway
_MERGE_W = 50.0 + 40.0  # a merging gateway and the gap to its task, at the start of the column
_LABEL_WIDTH = {"exclusiveGateway": 96.0}  # gateways' names, below them
_MIN_GAP = 70.0  # gap between a gateway (or end event) and the next column
_TRACK_GAP = 20.0  # between horizontal tracks of flows that skip columns
_LOOP_GAP = 18.0  # between nested self-loops of one task
_LANE_HEADER = 30.0
_LABEL_H = _EXTERNAL_FONT * _LINE_HEIGHT + 2  # one line of flow label


class _Layout:
    """Left-to-right placement: one column per main node, one band per lane.

    Every task, terminal end event and the start event owns a column (depth-first order from the initial
    state), so vertical flow segments never pass through another lane's nodes. Each lane is, top to bottom, a
    band of horizontal tracks for flows that skip columns, a band of self-loops, the main row (tasks,
    gateways, events) and, when a step has a deadline, a row for its escalation.

    Every flow gets a route of its own, so flows between the same two nodes stay apart:

    * to the next column: straight along the row, or up/down to the target's row and in from the left;
      several such flows fork and enter the target at different heights;
    * further: up or down into a track of the target's lane and into the target from above. Tracks are
      packed longest first, so a longer flow runs above (around) the shorter ones it spans and they do not
      cross; each flow leaves its gateway and enters its target at its own point;
    * a self-loop leaves its gateway's upper-left edge, climbs to its own height and drops onto the task;
      loops nest, and each name sits right of the gateway level with its loop's top line.

    Names sit beside their own line segment, never on a node: above the first horizontal segment of a flow.
    """

    def __init__(self, model: _Model) -> None:
        self.model = model
        self.lanes = [lane for lane in _LANES if any(n.lane == lane.key for n in model.nodes)]
        self.main = [n for n in model.nodes if n.slot == "main"]
        self.kind = {flow.id: self._kind(flow) for flow in model.flows}
        self.loops: dict[str, list[_Flow]] = {}
        for flow in model.flows:
            if self.kind[flow.id] == "loop":
                self.loops.setdefault(flow.source.id, []).append(flow)
        self.lane_loops = {
            lane.key: max((len(v) for v in self.loops.values() if v[0].source.lane == lane.key), default=0)
            for lane in self.lanes
        }
        self.column_x: dict[int, float] = {}
        self._place_columns()
        self.track: dict[str, int] = {}
        self.lane_tracks: dict[str, int] = {lane.key: 0 for lane in self.lanes}
        self._assign_tracks()
        self.lane_bounds: dict[str, tuple[float, float, float, float]] = {}
        self.row_cy: dict[str, float] = {}
        self.pool: tuple[float, float, float, float] = (0, 0, 0, 0)
        self._place_rows()
        self._route()

    def _kind(self, flow: _Flow) -> str:
        source, target = flow.source, flow.target
        if source.slot == "merge":
            return "straight"  # from the merging gateway into its task, along the row
        if source.slot != "main":
            return "escalation"
        if (target.tag == "exclusiveGateway" and target.slot == "main") or source.tag == "startEvent":
            return "straight"
        if target.column == source.column:
            return "loop"
        if target.column == source.column + 1:
            return "straight" if target.lane == source.lane else "bend"
        return "track"

    # ------------------------------------------------------------------------------------------ columns

    def _gap_after(self, node: _Node) -> float:
        """Room right of a column's gateway (or event) for the names of the flows that leave it there."""
        gap = _MIN_GAP
        for flow in self.model.flows:
            if flow.source.column != node.column or not flow.name or flow.source.slot != "main":
                continue
            width = _text_width(flow.name)
            kind = self.kind[flow.id]
            if kind == "loop":
                gap = max(gap, width + 20)  # the name right of the gateway, clear of the next task's entries
            elif kind in ("straight", "bend"):
                gap = max(gap, width + 44)  # after the fork or the climb
            else:
                gap = max(gap, width - 10)  # along the track, past the next column's first entries
        return gap

    def _place_columns(self) -> None:
        x = 100.0 + _LANE_HEADER + 50
        # A column whose task (or end) has a merging gateway starts with it.
        shift = {n.column: _MERGE_W for n in self.model.nodes if n.slot == "merge"}
        for node in sorted(self.main, key=lambda n: (n.column, n.tag != "userTask")):
            if node.column in self.column_x:
                continue
            self.column_x[node.column] = x
            x += shift.get(node.column, 0)
            if node.tag == "userTask":
                right = (
                    x + node.w + (_TASK_TO_GATEWAY + _SIZES["exclusiveGateway"][0] if self._has_gateway(node) else 0)
                )
                x = right + self._gap_after(node)
            else:
                label_w = _label_box(node.name, 100)[0] if node.name else 0
                x += max(node.w, label_w) + self._gap_after(node) - 20
        for node in self.model.nodes:
            left = self.column_x[node.column]
            if node.slot == "merge":
                node.x = left
                continue
            left += shift.get(node.column, 0)
            task = next((n for n in self.main if n.column == node.column), node)
            if node.tag == "exclusiveGateway":
                node.x = left + task.w + _TASK_TO_GATEWAY
            elif node.slot == "timer" or node.slot == "escalate":
                node.x = left + 25 - node.w / 2
            elif node.slot == "notified":
                node.x = left + 130 - node.w / 2
            elif node.tag in ("startEvent", "endEvent"):
                label_w = _label_box(node.name, 100)[0] if node.name else 0
                node.x = left + max(0.0, (label_w - node.w) / 2)
            else:
                node.x = left
        self.width = x - 100 - _LANE_HEADER

    def _has_gateway(self, task: _Node) -> bool:
        return any(n.tag == "exclusiveGateway" and n.slot == "main" and n.column == task.column for n in self.main)

    # ------------------------------------------------------------------------------------------- tracks

    def _assign_tracks(self) -> None:
        """Pack the flows that skip columns onto tracks of their target's lane, longest flow on top."""
        spans: list[tuple[float, float, _Flow]] = []
        for flow in self.model.flows:
            if self.kind[flow.id] == "track":
                a, b = self.column_x[flow.source.column] + 150, self.column_x[flow.target.column] + 30
                spans.append((min(a, b) - 30, max(a, b) + 30, flow))
        spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
        used: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for lo, hi, flow in spans:
            lane = flow.target.lane
            index = 0
            while any(lo < b and a < hi for a, b in used.get((lane, index), [])):
                index += 1
            used.setdefault((lane, index), []).append((lo, hi))
            self.track[flow.id] = index
            self.lane_tracks[lane] = max(self.lane_tracks[lane], index + 1)

    # --------------------------------------------------------------------------------------------- rows

    def _place_rows(self) -> None:
        lanes_x = 100.0 + _LANE_HEADER
        width = self.width + 40
        y = 80.0
        for lane in self.lanes:
            nodes = [n for n in self.model.nodes if n.lane == lane.key]
            main = [n for n in nodes if n.slot == "main"]
            tall = max((n.h for n in main), default=80.0)
            tracks = self.lane_tracks[lane.key]
            loops = self.lane_loops[lane.key]
            row_top = y + 24 + _TRACK_GAP * tracks + (_LOOP_GAP * loops + 14 if loops else 10)
            cy = row_top + tall / 2
            bottom = cy + tall / 2
            escalation_cy = bottom + 62
            labels = [
                n
                for n in nodes
                if (n.tag.endswith("Event") or n.tag == "exclusiveGateway") and n.name and n.slot != "timer"
            ]
            for node in nodes:
                if node.slot == "timer":
                    task = next(n for n in main if n.column == node.column and n.tag == "userTask")
                    node.y = cy + task.h / 2 - node.h / 2
                elif node.slot in ("escalate", "notified"):
                    node.y = escalation_cy - node.h / 2
                else:
                    node.y = cy - node.h / 2
            for node in labels:
                w, h = _label_box(node.name, _LABEL_WIDTH.get(node.tag, 100) if node.slot in ("main", "merge") else 56)
                # A gateway's name starts under it (a merging one) or under its right half (a choice), clear of
                # the timer's name on its left and of the next column's merging gateway's name on its right.
                x = {"merge": node.x, "main": node.x + 8}.get(node.slot, 0) if node.tag == "exclusiveGateway" else 0
                node.label = (x or node.cx - w / 2, node.y + node.h + 4, w, h)
            for node in nodes:
                if node.slot == "timer":
                    task = next(n for n in main if n.column == node.column and n.tag == "userTask")
                    gateway_x = next(
                        (n.x for n in main if n.column == node.column and n.tag == "exclusiveGateway"),
                        task.x + task.w + 50,
                    )
                    w, h = _label_box(node.name, gateway_x - 6 - (node.x + node.w + 4))
                    node.label = (node.x + node.w + 4, task.y + task.h + 2, w, h)
            lowest = max([bottom + 40, *(n.label[1] + n.label[3] for n in nodes if n.label)])
            self.lane_bounds[lane.key] = (lanes_x, y, width, lowest + 10 - y)
            self.row_cy[lane.key] = cy
            y = lowest + 10
        self.pool = (100.0, 80.0, width + _LANE_HEADER, y - 80.0)

    def _track_y(self, flow: _Flow) -> float:
        return self.lane_bounds[flow.target.lane][1] + 24 + _TRACK_GAP * self.track[flow.id]

    # ------------------------------------------------------------------------------------------- routes

    def _route(self) -> None:
        flows = self.model.flows
        # Where each flow turns off its first vertical segment, and which way it then goes.
        turn: dict[str, float] = {}
        heading: dict[str, int] = {}
        for flow in flows:
            kind = self.kind[flow.id]
            if kind == "track":
                turn[flow.id] = self._track_y(flow)
                heading[flow.id] = 1 if flow.target.column > flow.source.column else -1
        for group in self._groups(lambda f: self.kind[f.id] in ("straight", "bend") and f.source.slot == "main"):
            for k, flow in enumerate(group):
                turn[flow.id] = flow.target.cy + (k - (len(group) - 1) / 2) * 22
                heading[flow.id] = 1
        for flow in flows:
            kind = self.kind[flow.id]
            source, target = flow.source, flow.target
            if kind == "escalation":
                if source.slot == "timer":
                    flow.waypoints = [(source.cx, source.y + source.h), (target.cx, target.y)]
                else:
                    flow.waypoints = [(source.x + source.w, source.cy), (target.x, target.cy)]
        exits = self._exits(turn, heading)
        entries = self._entries(turn, heading)
        for flow in flows:
            kind = self.kind[flow.id]
            if kind == "escalation":
                continue
            source, target = flow.source, flow.target
            width = _text_width(flow.name)
            if kind == "loop":
                continue
            if kind in ("straight", "bend") and flow.id not in exits:
                # Along the row: one flow goes straight; parallel ones fork just after the source.
                start = (source.x + source.w, source.cy)
                y = turn.get(flow.id, target.cy)
                if y == source.cy:
                    flow.waypoints = [start, (self._left_entry(target, y), y)]
                    label_x = (start[0] + target.x) / 2 - width / 2
                else:
                    fork = start[0] + 10
                    flow.waypoints = [start, (fork, source.cy), (fork, y), (self._left_entry(target, y), y)]
                    label_x = fork + 6
                if flow.name:
                    flow.label = (label_x, y - _LABEL_H - 1, width, _LABEL_H)
                continue
            points = self._leave(flow, exits[flow.id])
            x0 = points[-1][0]
            y = turn[flow.id]
            if kind == "bend":
                points += [(x0, y), (self._left_entry(target, y), y)]
                label_x = x0 + 6
            else:
                entry = entries[flow.id]
                points += [(x0, y), (entry[0], y), entry]
                if target.tag not in ("userTask", "exclusiveGateway") and entry[0] != target.cx:
                    points[-1:] = [(entry[0], target.y - 14), (target.cx, target.y - 14), (target.cx, target.y)]
                label_x = x0 + 6 if heading[flow.id] > 0 else x0 - 6 - width
            flow.waypoints = points
            if flow.name:
                flow.label = (label_x, y - _LABEL_H - 1, width, _LABEL_H)
        for loops in self.loops.values():
            self._loops(loops)

    @staticmethod
    def _left_entry(target: _Node, y: float) -> float:
        """Where a flow arriving from the left at height ``y`` meets ``target``: a gateway's left edges."""
        if target.tag != "exclusiveGateway":
            return target.x
        return target.x + min(abs(y - target.cy), target.h / 2 - 2)

    def _groups(self, keep: Callable[[_Flow], bool]) -> list[list[_Flow]]:
        groups: dict[tuple[str, str], list[_Flow]] = {}
        for flow in self.model.flows:
            if keep(flow):
                groups.setdefault((flow.source.id, flow.target.id), []).append(flow)
        return list(groups.values())

    def _leave(self, flow: _Flow, point: tuple[float, float]) -> list[tuple[float, float]]:
        source = flow.source
        if source.tag == "exclusiveGateway":
            return [point]
        # A task without a gateway steps right to where its gateway would be, clear of its escalation chain.
        return [(source.x + source.w, source.cy), (point[0], source.cy)]

    def _exits(self, turn: Mapping[str, float], heading: Mapping[str, int]) -> dict[str, tuple[float, float]]:
        """Where each flow that climbs or drops leaves its source: its own point on the right-hand edges.

        Flows that then turn left use the points nearest the top (bottom) corner, those that turn right the
        points further out; among the latter, the one turning furthest away takes the innermost point, so the
        routes nest instead of crossing.
        """
        result: dict[str, tuple[float, float]] = {}
        by_source: dict[str, list[_Flow]] = {}
        for flow in self.model.flows:
            if flow.id not in turn or self.kind[flow.id] == "loop":
                continue
            source = flow.source
            if self.kind[flow.id] == "straight" or turn[flow.id] == source.cy:
                continue
            by_source.setdefault(source.id, []).append(flow)
        for flows in by_source.values():
            source = flows[0].source
            for up in (True, False):
                side = [f for f in flows if (turn[f.id] < source.cy) == up]
                side.sort(key=lambda f: (heading[f.id], -abs(turn[f.id] - source.cy) * heading[f.id]))
                step = min(8.0, 24.0 / max(1, len(side) - 1))
                for i, flow in enumerate(side):
                    t = i * step
                    if source.tag == "exclusiveGateway":
                        y = source.y + t if up else source.y + source.h - t
                        result[flow.id] = (source.cx + t, y)
                    else:
                        result[flow.id] = (source.x + source.w + _TASK_TO_GATEWAY + 25 + t, source.cy)
        return result

    def _entries(self, turn: Mapping[str, float], heading: Mapping[str, int]) -> dict[str, tuple[float, float]]:
        """Where each track flow enters its target from above: its own point, nested like the exits."""
        result: dict[str, tuple[float, float]] = {}
        by_target: dict[str, list[_Flow]] = {}
        for flow in self.model.flows:
            if self.kind[flow.id] == "track":
                by_target.setdefault(flow.target.id, []).append(flow)
        for flows in by_target.values():
            target = flows[0].target
            # From the left: the lowest track enters leftmost; from the right: the highest enters leftmost.
            flows.sort(key=lambda f: (heading[f.id] < 0, -turn[f.id] * heading[f.id]))
            if target.tag == "exclusiveGateway":
                # A merging gateway: each flow drops onto its own point of the upper-left edge.
                step = min(6.0, 18.0 / max(1, len(flows) - 1))
                for i, flow in enumerate(flows):
                    u = 3 + i * step
                    result[flow.id] = (target.cx - u, target.y + u)
                continue
            if target.tag == "userTask":
                lo, hi = target.x + 10, target.x + target.w * 0.42
            else:
                # An event is too small for many arrows: each flow comes down on its own line, 8px apart,
                # and they join just above the event.
                lo = target.cx - 4 * (len(flows) - 1)
                hi = target.cx + 4 * (len(flows) - 1)
            step = min(10.0 if target.tag == "userTask" else 8.0, (hi - lo) / max(1, len(flows) - 1))
            for i, flow in enumerate(flows):
                result[flow.id] = (lo + i * step, target.y)
        return result

    def _loops(self, loops: list[_Flow]) -> None:
        """Nested self-loops from the gateway's upper-left edge onto the task's top, names level with them."""
        gateway, task = loops[0].source, loops[0].target
        lane_row_top = self.row_cy[gateway.lane] - max(n.h for n in self.main if n.lane == gateway.lane) / 2
        step_edge = min(7.0, 20.0 / max(1, len(loops) - 1))
        step_entry = min(12.0, (task.w * 0.5) / max(1, len(loops) - 1))
        for k, flow in enumerate(loops):
            t = 3 + k * step_edge
            start = (gateway.x + t, gateway.cy - t)
            y = lane_row_top - 14 - _LOOP_GAP * k
            if task.tag == "exclusiveGateway":
                # Back into the task's merging gateway: onto its own point of the upper-right edge.
                u = 3 + k * min(6.0, 18.0 / max(1, len(loops) - 1))
                flow.waypoints = [start, (start[0], y), (task.cx + u, y), (task.cx + u, task.y + u)]
            else:
                entry = task.x + task.w - 8 - k * step_entry
                flow.waypoints = [start, (start[0], y), (entry, y), (entry, task.y)]
            if flow.name:
                width = _text_width(flow.name)
                flow.label = (gateway.x + gateway.w + 6, y - _LABEL_H / 2, width, _LABEL_H)


def _sub(parent: ET.Element, ns: str, tag: str, attrs: Mapping[str, str] | None = None, text: str = "") -> ET.Element:
    element = ET.SubElement(parent, f"{{{ns}}}{tag}", dict(attrs or {}))
    if text:
        element.text = text
    return element


def _fmt(value: float) -> str:
    return f"{round(value, 1):g}"


def _bounds(parent: ET.Element, x: float, y: float, w: float, h: float) -> None:
    _sub(parent, DC_NS, "Bounds", {"x": _fmt(x), "y": _fmt(y), "width": _fmt(w), "height": _fmt(h)})


def to_bpmn(transitions: Sequence[Transition] = TRANSITIONS, policy: SlaPolicy | None = None) -> str:
    """The table as BPMN 2.0 XML with lanes, SLA timers and a diagram that opens laid out in bpmn.io.

    Documentation, not an executable model (``isExecutable="false"``): ``ComplaintWorkflow`` runs the table.
    Timer durations use ``policy`` (default: the built-in ``SlaPolicy()`` allowances) and count Thai working
    days, which ISO 8601 cannot say; the boundary events' documentation spells that out. Bookkeeping rows
    (``is_bookkeeping``) are listed on their step's task instead of drawn.
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
    for rule, escalation_id in model.escalations.items():
        _sub(
            root,
            BPMN_NS,
            "escalation",
            {"id": escalation_id, "name": f"{rule} deadline passed", "escalationCode": rule},
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
        text="Generated from workflows/process.py by `rongtuk process export --format bpmn`; do not edit by hand. "
        "Rows only the system fires that leave the case in its step (reminders, SLA bookkeeping) are listed on "
        "their step's task, not drawn.",
    )
    lane_set = _sub(process, BPMN_NS, "laneSet", {"id": "laneset_complaints"})
    for lane in layout.lanes:
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
        if node.escalation:
            _sub(
                element,
                BPMN_NS,
                "escalationEventDefinition",
                {"id": _ncname(node.id, "definition"), "escalationRef": node.escalation},
            )

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
    for lane in layout.lanes:
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
        if node.label is not None:
            _bounds(_sub(shape, BPMNDI_NS, "BPMNLabel"), *node.label)
    for flow in model.flows:
        edge = _sub(plane, BPMNDI_NS, "BPMNEdge", {"id": f"edge_{flow.id}", "bpmnElement": flow.id})
        for px, py in flow.waypoints:
            _sub(edge, DI_NS, "waypoint", {"x": _fmt(px), "y": _fmt(py)})
        if flow.label is not None:
            _bounds(_sub(edge, BPMNDI_NS, "BPMNLabel"), *flow.label)

    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
