"""The generated part of ``docs/process.md``: the Mermaid diagram and the tables of states and transitions."""

from __future__ import annotations

from collections.abc import Sequence

from processdoc.states import state_label, walk_states
from processdoc.text import to_mermaid
from sla.policy import SlaPolicy
from sla.rules import DeadlineRule
from workflows.case_rules import CASE_CLOCK_STATES
from workflows.process import (
    SETTLED_STATES,
    STATE_DEADLINES,
    TASK_DEADLINES,
    TERMINAL_STATES,
    TRANSITIONS,
    State,
    Transition,
    transition_for,
)

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
    lines += _clocks(states)
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


def _audiences(state: State, event: str) -> str:
    edge = transition_for(state, event)
    return ", ".join(sorted(a.value for a in edge.notify)) if edge else ""


def _clock_row(state: State, policy: SlaPolicy) -> str:
    """Whose clock runs in ``state``, how long by default, who is reminded and who hears of a breach."""
    if state in TERMINAL_STATES:
        return "none: the process has ended | | | |"
    if state in SETTLED_STATES:
        return "none: only the complainant may act (rate, ask for a review or go to the Ombudsman) | | | |"
    if state is State.AWAITING_INFO:
        lapse, warn = policy.awaiting_info_lapse, policy.awaiting_info_warning
        return (
            f"the complainant's: `{DeadlineRule.AWAITING_INFO_LAPSE}` (the case's own clock is stopped) | {lapse} | "
            f"complainant, {warn} working days before | none: the case lapses (closed) |"
        )
    clocks, days = [], []
    if state in CASE_CLOCK_STATES and state in STATE_DEADLINES:
        clocks.append(f"the case's (PSC): `{STATE_DEADLINES[state]}`")
        days.append(str(policy.working_days(STATE_DEADLINES[state])))
    if state in TASK_DEADLINES:
        clocks.append(f"each agency task's: `{TASK_DEADLINES[state]}`")
        days.append(str(policy.working_days(TASK_DEADLINES[state])))
    clock = " + ".join(clocks)
    if state is State.STAGE1:
        clock += (
            f"; an agency's question to the complainant stops its task's clock (`{DeadlineRule.AWAITING_INFO_LAPSE}`"
            " rules while it waits) and its due date then moves by the working days waited"
        )
    reminded = {a for a in _audiences(state, "sla_reminder").split(", ") if a}
    if state in TASK_DEADLINES:
        reminded.add("agency")
    ladder = "; ".join(
        f"{'at the deadline' if step.after_working_days == 0 else f'{step.after_working_days} days late'}: "
        + ", ".join(step.to)
        for step in policy.escalation
    )
    return f"{clock} | {' + '.join(days)} | {', '.join(sorted(reminded))} | {ladder} |"


def _clocks(states: Sequence[State]) -> list[str]:
    """The clock of every state: the deadlines somebody other than the complainant must meet there."""
    policy = SlaPolicy()
    lines = [
        "",
        "## Clocks",
        "",
        "Every state in which somebody other than the complainant must act runs a deadline in Thai working days",
        "(default allowances of `config/sla.yaml`), with a reminder before it and escalations after it; the",
        "case's own clock runs in the workflow, each agency task's in its own child workflow.",
        "",
        "| state | clock (SLA rule) | working days | reminded | escalated to |",
        "| --- | --- | --- | --- | --- |",
    ]
    for state in states:
        lines.append(f"| `{state.value}` | {_clock_row(state, policy)}")
    return lines


def render_docs(current: str, transitions: Sequence[Transition] = TRANSITIONS) -> str:
    """``docs/process.md`` with everything from the state diagram on regenerated from the table."""
    head = current.split(DOCS_MARKER, 1)[0]
    return head + to_markdown(transitions)
