"""The benchmark entry point's summary, built from the committed results of each part (no benchmark runs)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import engine_rows, overdue_rows, ratio, table

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def test_engine_rows_put_each_figure_beside_its_same_run_baseline() -> None:
    result = json.loads((RESULTS / "engine.json").read_text())
    rows = {figure: (base, value) for _part, figure, base, value, _unit in engine_rows(result)}
    base, cases = result["phases"]["baseline"], result["phases"]["cases"]
    assert rows["cases per second, end to end"] == (base["cases_per_s"], cases["cases_per_s"])
    assert rows["action p99"] == (base["actions"]["p99_ms"], cases["actions"]["p99_ms"])
    assert rows["CPU per case, total"] == (base["cpu_s_per_case"]["total"], cases["cpu_s_per_case"]["total"])
    assert rows["history events, parent workflow"][1] == result["history"]["cases"]["case"]["events"]


def test_overdue_rows_cover_every_backend_and_size() -> None:
    result = json.loads((RESULTS / "overdue.json").read_text())
    rows = overdue_rows(result)
    sizes = sum(len(backend["sizes"]) for backend in result["queries"])
    assert len(rows) == 1 + 2 * sizes
    assert rows[0][2:4] == (result["calendar"]["baseline_us_per_op"], result["calendar"]["due_us_per_op"])


def test_table_shows_ratios_and_gaps() -> None:
    text = table([("engine", "cases per second", 10.0, 6.5, "/s"), ("engine", "missing", None, 3.0, "ms")])
    assert "| engine | cases per second | 10.00 /s | 6.50 /s | 0.65× |" in text
    assert "| engine | missing | – | 3.00 ms | – |" in text
    assert ratio(0.0, 1.0) is None and ratio(2.0, 1.0) == 0.5


def test_intake_rows_put_http_intake_and_the_relay_beside_bare_starts() -> None:
    from bench.__main__ import intake_rows

    result = json.loads((RESULTS / "intake.json").read_text())
    rows = {figure: (base, value) for _part, figure, base, value, _unit in intake_rows(result)}
    bare, intake, after = result["baseline_bare_start"], result["intake"], result["after"]
    assert rows["complaints/s over HTTP (baseline: bare starts/s)"] == (bare["per_s"], intake["per_s"])
    assert rows["intake p99 (baseline: bare start p99)"] == (bare["latency"]["p99_ms"], intake["latency"]["p99_ms"])
    assert rows["relay cases/s over the run"] == (bare["per_s"], after["relay_per_s_over_run"])
    # The committed run lost nothing and filed nothing twice.
    assert rows["complaints lost or filed twice"][1] == 0
    assert after["distinct_cases"] == after["cases_in_database"] == after["answered_201"] == after["started"]
