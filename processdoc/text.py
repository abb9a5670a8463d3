"""The process table as pretty JSON (for tools) and as a Mermaid state diagram (for people)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from processdoc.states import PROCESS_ID, state_label, walk_states
from workflows.process import INITIAL_STATE, STATE_DEADLINES, TERMINAL_STATES, TRANSITIONS, State, Transition, as_table


def to_json(transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """The table as pretty JSON: the ``as_table()`` rows plus every state it mentions."""
    document = {
        "process": PROCESS_ID,
        "initial_state": INITIAL_STATE.value,
        "states": [
            {
                "code": state.value,
                "label_en": state_label(state)[0],
                "label_th": state_label(state)[1],
                "terminal": state in TERMINAL_STATES,
                "deadline_rule": STATE_DEADLINES.get(state),
            }
            for state in walk_states(transitions)
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
    states = walk_states(transitions)
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE.value}"]
    lines += [f"    {state.value} : {_mermaid_text(state_label(state)[0])}" for state in states]
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
