"""The process as a small SVG state diagram, with the path one case took and the state it waits in.

Drawn on the server from the process table (no JavaScript, nothing from the internet). The full BPMN export
(processdoc/bpmn.py) is the document for modellers; this is the picture a supervisor reads on a case page.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from html import escape
from itertools import pairwise

from workflows.process import STATE_LABELS, TRANSITIONS, State

_W, _H, _GAP_X, _GAP_Y, _PAD = 176, 58, 40, 64, 20
# Where each state sits (column, row), following the process: the main line, then review and waiting.
_GRID: dict[State, tuple[int, int]] = {
    State.RECEIVED: (0, 0),
    State.SCREENING: (1, 0),
    State.ASSIGNMENT: (2, 0),
    State.STAGE1: (3, 0),
    State.RESPONDED: (4, 0),
    State.CLOSED: (5, 0),
    State.WITHDRAWN: (0, 1),
    State.AWAITING_INFO: (1, 1),
    State.STAGE2: (3, 1),
    State.STAGE2_INVESTIGATION: (4, 1),
    State.CLOSED_STAGE2: (5, 1),
    State.REFERRED: (5, 2),
}


def _position(state: State) -> tuple[float, float]:
    if state in _GRID:
        col, row = _GRID[state]
    else:  # a state added to the process before the picture: still shown, in a row of its own
        col, row = list(State).index(state) % 6, 3
    return _PAD + col * (_W + _GAP_X), _PAD + row * (_H + _GAP_Y)


@cache
def _edges() -> tuple[tuple[State, State], ...]:
    # "withdraw" leaves every open state: drawn only when the case took it, or it would cover the picture.
    pairs = {(t.source, t.target) for t in TRANSITIONS if t.source != t.target and t.event != "withdraw"}
    return tuple(sorted(pairs))


def _anchor(a: State, b: State) -> tuple[float, float, float, float]:
    ax, ay = _position(a)
    bx, by = _position(b)
    if ay == by:  # same row: leave from the side facing the target
        if bx > ax:
            return ax + _W, ay + _H / 2, bx, by + _H / 2
        return ax, ay + _H / 2, bx + _W, by + _H / 2
    if by > ay:
        return ax + _W / 2, ay + _H, bx + _W / 2, by
    return ax + _W / 2, ay, bx + _W / 2, by + _H


def _path(a: State, b: State) -> str:
    x1, y1, x2, y2 = _anchor(a, b)
    ax, ay = _position(a)
    bx, by = _position(b)
    if ay == by and abs(bx - ax) > _W + _GAP_X:  # skips boxes in between: arc above (or below) the row
        lift = -0.6 * _GAP_Y if bx > ax else 0.6 * _GAP_Y + _H
        y1 = y2 = ay + (0 if bx > ax else _H)
        x1, x2 = ax + _W / 2, bx + _W / 2
        return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{ay + lift:.0f} {x2:.0f},{ay + lift:.0f} {x2:.0f},{y2:.0f}"
    return f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"


def _label(state: State, lang: str) -> list[str]:
    en, th = STATE_LABELS[state]
    text = th if lang == "th" else en
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + len(word) > 20:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return lines[:3]


def process_svg(*, visited: Sequence[str], current: str, lang: str = "th") -> str:
    """The diagram as inline SVG: states the case passed through filled, the moves it made drawn strong,
    and the state it waits in now outlined."""
    path = [State(s) for s in visited if s in State._value2member_map_]
    taken = set(pairwise(path))
    seen = set(path)
    edges = set(_edges()) | {e for e in taken if e[0] != e[1]}
    rows = max(_position(s)[1] for s in State) + _H + _PAD
    width = _PAD * 2 + 6 * _W + 5 * _GAP_X
    title = "แผนภาพขั้นตอนของเรื่องนี้" if lang == "th" else "This case's path through the process"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {rows:.0f}" role="img" '
        'aria-labelledby="pd-title">',
        f'<title id="pd-title">{escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
    ]
    for a, b in sorted(edges):
        strong = (a, b) in taken
        colour, size = ("#0b5fa5", 3) if strong else ("#b8c2cc", 1.3)
        cls = "taken" if strong else "edge"
        out.append(
            f'<path class="{cls}" d="{_path(a, b)}" fill="none" stroke="{colour}" stroke-width="{size}" '
            'marker-end="url(#arrow)"/>'
        )
    for state in State:
        x, y = _position(state)
        now = state.value == current
        fill = "#0b5fa5" if state in seen else "#ffffff"
        ink = "#ffffff" if state in seen else "#1d2a38"
        stroke, width_ = ("#d48a00", 5) if now else ("#5b6b7b", 1.2)
        marker = ' data-current="true"' if now else ""
        out.append(
            f'<g class="state" data-state="{state.value}"{marker}>'
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="10" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{width_}"/>'
        )
        lines = _label(state, lang)
        top = y + _H / 2 - (len(lines) - 1) * 9
        for i, line in enumerate(lines):
            # Thai runs have no spaces to wrap at: a long line is squeezed into the box instead.
            fit = f' textLength="{_W - 14}" lengthAdjust="spacingAndGlyphs"' if len(line) > 20 else ""
            out.append(
                f'<text x="{x + _W / 2}" y="{top + i * 18 + 5:.0f}" text-anchor="middle" font-size="14" '
                f'fill="{ink}"{fit}>{escape(line)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
