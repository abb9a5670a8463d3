"""The benchmark entry point's summary, built from the committed results of each part (no benchmark runs)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

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


def _load(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return result


def test_targets_judge_each_measured_figure_against_its_limit() -> None:
    from bench.__main__ import targets, targets_table

    results = {
        "board": _load("board-1m-quiet"),
        "lifecycle": _load("lifecycle-rebuild"),
        "replay": _load("replay-quick"),
        "memory": _load("memory-10k"),
    }
    found = {name: (limit, value, met) for name, limit, value, met in targets(results)}
    board = found["board p99 ms, worst of 56 filter lines, sqlite 1,000,000 rows"]
    assert board[0] == 50.0 and board[1] is not None and board[1] < 50.0 and board[2]
    lifecycle = results["lifecycle"]
    naive = found["lifecycle over the API ÷ naive no-op, cases/s"]
    assert naive[1] == lifecycle["ratios"]["api_vs_naive"]["throughput"] and not naive[2]
    slowest = min(run["cases_per_s"] for run in lifecycle["rebuild_from_server"]["runs"]["read"])
    rebuild = found["rebuild of 100k cases from the server, minutes (slowest pass)"]
    assert rebuild[1] == 100_000 / slowest / 60 and rebuild[2] is (100_000 / slowest / 60 <= 10.0)
    assert found["replay histories/s, 2 processes"][2] is False
    memory = found["worker RSS MiB, 10,000 open, peak"]
    assert memory[1] == results["memory"]["population"]["rss_peak_mib"] and memory[2]
    text = targets_table(targets(results))
    assert "| replay histories/s, 2 processes | 200.00 | 90.37 | missed |" in text


def test_memory_rows_of_an_open_population_show_it_settled_and_at_peak() -> None:
    from bench.__main__ import memory_rows

    result = _load("memory-10k")
    rows = {figure: (base, value) for _part, figure, base, value, _unit in memory_rows(result)}
    population = result["population"]
    assert rows["worker RSS, idle vs 10,000 open, settled"] == (
        result["baseline_rss_mib"],
        population["rss_settled_mib"],
    )
    assert rows["worker RSS, idle vs 10,000 open, peak"][1] == population["rss_peak_mib"]


def test_replay_rows_put_ours_beside_no_op_workflows_of_the_same_shapes() -> None:
    from bench.__main__ import replay_rows

    result = _load("replay")
    replay = result["replay"]
    rows = {figure: (base, value) for _part, figure, base, value, _unit in replay_rows(result)}
    floor = rows["histories per second, 1 process (baseline: no-op workflows of the same shapes)"]
    assert floor == (replay["noop_batched_per_s"], replay["batched_per_s"])
    # The floor stood for the same histories: one no-op history per golden one (each case and its children),
    # none failing to replay.
    assert abs(replay["noop_histories"] - replay["histories"]) <= replay["histories"] // 20
    assert replay["noop_batched_failures"] == replay["noop_unsandboxed_failures"] == 0
    assert replay["batched_vs_noop"] == replay["batched_per_s"] / replay["noop_batched_per_s"]
    # A run from before the floor existed still makes a table, without that row.
    before = result | {"replay": {k: v for k, v in replay.items() if not k.startswith("noop_")}}
    assert len(replay_rows(before)) == len(replay_rows(result)) - 1


def test_lifecycle_rows_show_postgresql_s_share_where_the_run_measured_it() -> None:
    from bench.__main__ import lifecycle_rows

    measured = _load("lifecycle-postgres-cpu")
    rows = {figure: (base, value) for _part, figure, base, value, _unit in lifecycle_rows(measured)}
    api = measured["phases"]["api"]["cpu_s_per_case"]
    assert rows["CPU per case over the API, PostgreSQL (baseline: naive)"][1] == api["postgresql"] > 0
    assert api["total_with_postgresql"] == api["total"] + api["postgresql"]
    # A result written before the share was measured still makes a table, without the row.
    before = copy.deepcopy(measured)
    for phase in before["phases"].values():
        for name in ("postgresql", "total_with_postgresql"):
            phase.get("cpu_s_per_case", {}).pop(name, None)
    earlier = {figure for _part, figure, *_rest in lifecycle_rows(before)}
    assert "CPU per case over the API, PostgreSQL (baseline: naive)" not in earlier
    assert "CPU per case over the API, API (baseline: naive)" in earlier
