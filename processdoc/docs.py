"""The generated part of ``docs/process.md``: the Mermaid diagram and the tables of states and transitions."""

from __future__ import annotations

from collections.abc import Sequence

from processdoc.states import state_label, walk_states
from processdoc.text import to_mermaid
from workflows.process import STATE_DEADLINES, TERMINAL_STATES, TRANSITIONS, Transition

DOCS_MARKER = "## State diagram"


def to_markdown(transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """The generated part of ``docs/process.md``: the Mermaid diagram and the tables of states and edges."""
    states = walk_states(transitions)
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
        en, th = state_label(state)
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
