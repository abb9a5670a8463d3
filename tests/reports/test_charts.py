"""The SVG charts: sized to their data, readable without colour or script, and allowed by the pages' CSP."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from reports.charts import Series, bar_chart, line_chart, nice_max, whole_max

NS = "{http://www.w3.org/2000/svg}"


def test_nice_max() -> None:
    assert [nice_max(v) for v in (0, 0.7, 3, 17, 99, 101, 240, 5000)] == [1, 1, 5, 20, 100, 200, 250, 5000]


def test_bar_chart() -> None:
    svg = bar_chart(
        "Cases & more",
        ["Q1 2026", "Q2 2026", "Q3 2026"],
        [Series("Received", [10, 40, 25]), Series("Overdue", [1, None, 5])],
    )
    root = ET.fromstring(svg)  # well-formed, names escaped
    assert root.get("role") == "img"
    assert root.find(f"{NS}title").text == "Cases & more"  # type: ignore[union-attr]
    desc = root.find(f"{NS}desc").text or ""  # type: ignore[union-attr]
    assert "Received: Q1 2026 10, Q2 2026 40, Q3 2026 25" in desc and "Overdue: Q1 2026 1, Q2 2026 0" in desc
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert len(bars) == 6
    heights = {b.find(f"{NS}title").text: float(b.get("height", 0)) for b in bars}  # type: ignore[union-attr]
    assert heights["Q2 2026, Received: 40"] == 4 * heights["Q1 2026, Received: 10"] > 0
    assert "style" not in svg and "<script" not in svg


def test_line_chart_gaps_and_slanted_labels() -> None:
    labels = [f"ไตรมาส {q}/25{y}" for y in (66, 67, 68) for q in (1, 2, 3, 4)]
    svg = line_chart("ร้อยละ", labels, [Series("ขั้นที่ 1", [50.0, None, *[60.0] * 10])], top=100)
    assert svg.count("<circle") == 11
    assert len(re.findall(r"rotate\(-30", svg)) == 12, "long labels slant instead of overlapping"
    ET.fromstring(svg)


def test_count_axes_step_by_whole_counts_and_every_gridline_says_its_value() -> None:
    assert [whole_max(v) for v in (0, 1, 4, 5, 17, 37, 101, 240, 5000)] == [4, 4, 4, 8, 20, 40, 120, 300, 6000]
    ticks = lambda svg: re.findall(r'text-anchor="end" fill="#3e4c59">([^<]+)<', svg)  # noqa: E731
    # One case: gridlines 0-4, not 0, 0.2, 0.5, 0.8, 1 (what a single count drew before).
    assert ticks(bar_chart("x", ["Q4"], [Series("Received", [1])])) == ["0", "1", "2", "3", "4"]
    # The satisfaction scale (1-5): 1.25 is written 1.25, not rounded to 1.
    assert ticks(line_chart("x", ["Q4"], [Series("Average", [3.5])], top=5)) == ["0", "1.25", "2.5", "3.75", "5"]
