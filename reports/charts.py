"""Bar and line charts as inline SVG, drawn on the server with presentation attributes only.

The pages' Content-Security-Policy allows no inline ``<style>`` and no ``style=""`` (chart libraries' SVG
uses both), and no script is needed to read a chart: each one is an ``<svg role="img">`` with a title and a
description, and the page shows the same figures in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "line_chart", "nice_max"]

# Colour-blind safe (Okabe-Ito), dark enough on white for the 3:1 contrast of graphics.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_FONT = "Sarabun, 'Noto Sans Thai', Loma, sans-serif"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def whole_max(value: float) -> float:
    """An axis maximum for counts: four equal steps of a whole, round size (1, 1.5, 2, 2.5, 3, 4, 5 or 7.5 times
    a power of ten), so that every gridline is a count people can read (0-4 for a single case, not 0-1)."""
    need = max(value, 1) / 4
    power = 10 ** math.floor(math.log10(need))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10):
        size = step * power
        if need <= size and size == int(size):
            return float(4 * size)
    return float(40 * power)


def _tick(value: float) -> str:
    """A gridline's value as written: exact to two places (1.25, not 1), grouped by thousands."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _frame(title: str, desc: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart" font-family="{_FONT}" font-size="12"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>{''.join(body)}</svg>"
    )


def _axes(labels: Sequence[str], top: float, *, width: int, height: int, left: int, bottom: int) -> list[str]:
    out = []
    plot_h = height - bottom - 20
    for i in range(5):
        value = top * i / 4
        y = 20 + plot_h - plot_h * i / 4
        text = _tick(value)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d6dde5"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#3e4c59">{text}</text>')
    step = (width - left - 10) / max(len(labels), 1)
    every = max(1, math.ceil(len(labels) / 16))
    # Labels that would overlap are slanted rather than dropped.
    slant = max((len(label) for label in labels), default=0) * 7.5 > step * every
    for i, full in enumerate(labels):
        if i % every == 0:
            label = full if len(full) <= 18 else full[:17] + "…"  # the bar's own title has it whole
            x = left + step * (i + 0.5)
            y = height - bottom + 16
            if slant:
                out.append(
                    f'<text x="{x:.1f}" y="{y}" text-anchor="end" fill="#3e4c59" '
                    f'transform="rotate(-30 {x:.1f} {y})">{escape(label)}</text>'
                )
            else:
                out.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle" fill="#3e4c59">{escape(label)}</text>')
    return out


def _legend(series: Sequence[Series], *, width: int, height: int) -> list[str]:
    out, x = [], 10.0
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.0f}" y="{height - 16}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 16:.0f}" y="{height - 6}" fill="#1d2a38">{escape(s.name)}</text>')
        x += 28 + 7.5 * len(s.name)
    return out


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, width: int = 760, height: int = 340
) -> str:
    """Grouped bars of counts, one group per label."""
    left, bottom = 56, 100
    top = whole_max(max((v or 0 for s in series for v in s.values), default=0))
    body = _axes(labels, top, width=width, height=height, left=left, bottom=bottom)
    plot_h = height - bottom - 20
    group = (width - left - 10) / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        for i, value in enumerate(s.values):
            h = plot_h * (value or 0) / top
            x = left + group * i + group * 0.1 + bar * si
            body.append(
                f'<rect x="{x:.1f}" y="{20 + plot_h - h:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(labels[i])}, {escape(s.name)}: {value or 0:,}</title></rect>'
            )
    body += _legend(series, width=width, height=height)
    desc = "; ".join(
        f"{s.name}: " + ", ".join(f"{lb} {v or 0:,}" for lb, v in zip(labels, s.values, strict=True)) for s in series
    )
    return _frame(title, desc, width, height, body)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    top: float | None = None,
    width: int = 760,
    height: int = 300,
) -> str:
    """Lines with a dot per point; gaps where a value is None."""
    left, bottom = 56, 100
    top = top or nice_max(max((v or 0 for s in series for v in s.values), default=0))
    body = _axes(labels, top, width=width, height=height, left=left, bottom=bottom)
    plot_h = height - bottom - 20
    step = (width - left - 10) / max(len(labels), 1)
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        points = [
            (left + step * (i + 0.5), 20 + plot_h - plot_h * v / top, v, labels[i])
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _, _) in enumerate(points))
            body.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for x, y, v, label in points:
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(label)}, {escape(s.name)}: {v}</title></circle>"
            )
    body += _legend(series, width=width, height=height)
    desc = "; ".join(
        f"{s.name}: " + ", ".join(f"{lb} {'-' if v is None else v}" for lb, v in zip(labels, s.values, strict=True))
        for s in series
    )
    return _frame(title, desc, width, height, body)
