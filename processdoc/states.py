"""What every rendering of the process table shares: the process id, state labels and the order of states."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.process import INITIAL_STATE, STATE_LABELS, State, Transition

PROCESS_ID = "complaint_process"


def state_label(state: State) -> tuple[str, str]:
    # A state added to the enum before it gets labels still exports, under its code.
    return STATE_LABELS.get(state, (state.value, state.value))


def walk_states(transitions: Sequence[Transition]) -> list[State]:
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
