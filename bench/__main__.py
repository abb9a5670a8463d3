"""One entry point for every benchmark: ``python -m bench [--quick]`` (also ``rongtuk bench``).

Runs each benchmark script in its own process (each starts and stops what it needs), then prints one table of
the headline figures, every one beside the baseline measured in the same run, and writes
``bench/results/summary[-quick].json`` with the machine, the versions, the settings and those figures; each
part's full results are in its own file next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine_info, versions
from bench.scratch import PG_HOST, PG_PORT, postgres_listening

ROOT = Path(__file__).resolve().parent.parent

# Settings per part: the full run is each script's own default; --quick finishes in about 2 minutes on 2 cores.
PARTS: dict[str, dict[str, list[str]]] = {
    "overdue": {
        "module": ["bench.overdue_bench"],
        "full": [],
        "quick": ["--rows", "100000", "--runs", "30", "--warmup", "3", "--calendar-ops", "30000"],
    },
    "engine": {
        "module": ["bench.engine_bench"],
        "full": [],
        "quick": ["--cases", "40", "--concurrency", "10", "--warmup", "3"],
    },
    "intake": {
        "module": ["bench.intake_bench"],
        # --rate: the target's 100 complaints/s arriving, besides the closed-loop clients; the machine shaped as
        # docs/operations.md ("One machine") says: the relay in the worker, the engine at a lower CPU priority.
        "full": ["--rate", "100", "--relay-in", "worker", "--background-nice", "10"],
        "quick": ["--complaints", "400", "--baseline", "300", "--warmup", "20", "--rate", "100"],
    },
    "board": {
        "module": ["bench.board_bench"],
        "full": [],
        "quick": ["--rows", "100000", "--runs", "10", "--warmup", "2", "--no-plans"],
    },
    "lifecycle": {
        "module": ["bench.lifecycle_bench"],
        "full": [],
        "quick": ["--cases", "30", "--concurrency", "20", "--warmup", "2"],
    },
    "replay": {"module": ["bench.replay_bench"], "full": [], "quick": ["--passes", "1", "--copies", "1"]},
    # The full run measures the target: 10,000 cases left open under the default sticky cache (300).
    "memory": {
        "module": ["bench.memory_bench"],
        "full": ["--open", "10000", "--cache", "300"],
        "quick": ["--cases", "100", "--steps", "2"],
    },
}


def run_part(name: str, args: list[str], out: Path) -> dict[str, Any]:
    """Run one benchmark script, streaming its output; its JSON results."""
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    command = [sys.executable, "-m", *PARTS[name]["module"], *args, "--out", str(shown)]
    print(f"\n=== {name}: {' '.join(command[2:])}\n", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["_wall_s"] = time.monotonic() - started
    return result


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,} {unit}".strip()
    return f"{value:,.2f} {unit}".strip() if value < 100 else f"{value:,.0f} {unit}".strip()


Row = tuple[str, str, float | None, float | None, str]  # part, figure, baseline, value, unit


def overdue_rows(result: dict[str, Any]) -> list[Row]:
    cal = result["calendar"]
    rows: list[Row] = [
        ("overdue", "deadline `WorkingCalendar.due`", cal["baseline_us_per_op"], cal["due_us_per_op"], "µs/op")
    ]
    for backend in result["queries"]:
        for size in backend["sizes"]:
            label = f"{backend['backend']} {size['rows']:,} rows"
            pk, page = size["baseline_pk_lookup"], size["overdue_first_page"]
            rows.append(("overdue", f"board 'overdue' page + total p50, {label}", pk["p50_ms"], page["p50_ms"], "ms"))
            rows.append(("overdue", f"board 'overdue' page + total p99, {label}", pk["p99_ms"], page["p99_ms"], "ms"))
    return rows


def engine_rows(result: dict[str, Any]) -> list[Row]:
    base, cases = result["phases"]["baseline"], result["phases"]["cases"]
    hist = result["history"]

    def both(figure: str, pick: Callable[[dict[str, Any]], float], unit: str) -> Row:
        return ("engine", figure, pick(base), pick(cases), unit)

    return [
        both("cases per second, end to end", lambda p: p["cases_per_s"], "/s"),
        both("intake p50", lambda p: p["intake"]["p50_ms"], "ms"),
        both("intake p99", lambda p: p["intake"]["p99_ms"], "ms"),
        both("action p50", lambda p: p["actions"]["p50_ms"], "ms"),
        both("action p99", lambda p: p["actions"]["p99_ms"], "ms"),
        both("CPU per case, worker + client", lambda p: p["cpu_s_per_case"]["process"], "s"),
        both("CPU per case, Temporal server", lambda p: p["cpu_s_per_case"]["server"], "s"),
        both("CPU per case, total", lambda p: p["cpu_s_per_case"]["total"], "s"),
        (
            "engine",
            "history events, parent workflow",
            hist["baseline"]["case"]["events"],
            hist["cases"]["case"]["events"],
            "",
        ),
    ]


def intake_rows(result: dict[str, Any]) -> list[Row]:
    """Intake over HTTP (32 clients) and the relay, beside a bare ``start_workflow`` loop at the same concurrency."""
    bare, intake, after = result["baseline_bare_start"], result["intake"], result["after"]
    return [
        ("intake", "complaints/s over HTTP (baseline: bare starts/s)", bare["per_s"], intake["per_s"], "/s"),
        (
            "intake",
            "intake p50 (baseline: bare start p50)",
            bare["latency"]["p50_ms"],
            intake["latency"]["p50_ms"],
            "ms",
        ),
        (
            "intake",
            "intake p99 (baseline: bare start p99)",
            bare["latency"]["p99_ms"],
            intake["latency"]["p99_ms"],
            "ms",
        ),
        (
            "intake",
            "relay cases/s over the run",
            bare["per_s"],
            after["relay_per_s_over_run"],
            "/s",
        ),
        ("intake", "relay lag p99, commit to started", None, after["relay_lag"]["p99_ms"], "ms"),
        ("intake", "complaints lost or filed twice", None, float(after["answered_201"] - after["distinct_cases"]), ""),
        *everything_open_rows(result),
        *api_alone_rows(result),
    ]


def everything_open_rows(result: dict[str, Any]) -> list[Row]:
    """Everything at once again, the complaints arriving at ``--rate`` (the target's 100/s) from at most 32
    clients: the answers, and how far behind the relay fell and how soon it caught up."""
    opened = result.get("open_loop")
    if not opened:
        return []
    intake, after = opened["intake"], opened["after"]
    rate = intake["open_loop_rate"]
    lost = float(after["answered_201"] - after["distinct_cases"])
    drained = after["drained_s_after_last_answer"]
    return [
        ("intake", f"everything, {rate:g}/s arriving: complaints/s", rate, intake["per_s"], "/s"),
        ("intake", f"everything, {rate:g}/s arriving: p50", None, intake["latency"]["p50_ms"], "ms"),
        ("intake", f"everything, {rate:g}/s arriving: p99", None, intake["latency"]["p99_ms"], "ms"),
        ("intake", f"everything, {rate:g}/s arriving: relay lag p99", None, after["relay_lag"]["p99_ms"], "ms"),
        ("intake", f"everything, {rate:g}/s arriving: relay drained after", None, drained, "s"),
        ("intake", f"everything, {rate:g}/s arriving: lost or filed twice", None, lost, ""),
    ]


def api_alone_rows(result: dict[str, Any]) -> list[Row]:
    """The API by itself (no relay, no worker) with 1 and 2 processes, and the relay alone draining it."""
    rows: list[Row] = []
    for alone in result.get("api_alone", []):
        n = alone["api_workers"]
        rows += [
            ("intake", f"API alone x{n}: complaints/s (baseline: bare starts/s)", None, alone["per_s"], "/s"),
            ("intake", f"API alone x{n}: p50", None, alone["latency"]["p50_ms"], "ms"),
            ("intake", f"API alone x{n}: p99", None, alone["latency"]["p99_ms"], "ms"),
            ("intake", f"API alone x{n}: API CPU per complaint", None, alone["api_cpu_ms_per_complaint"], "ms"),
        ]
        if opened := alone.get("open_loop"):
            rate = opened["open_loop_rate"]
            rows += [
                ("intake", f"API alone x{n}, {rate:g}/s arriving: complaints/s", rate, opened["per_s"], "/s"),
                ("intake", f"API alone x{n}, {rate:g}/s arriving: p99", None, opened["latency"]["p99_ms"], "ms"),
            ]
    if relay := result.get("relay_alone"):
        bare = result["baseline_bare_start"]["per_s"]
        bare = relay.get("bare_loop_right_after", {}).get("per_s", bare)
        rows.append(("intake", "relay alone: starts/s (baseline: bare loop right after)", bare, relay["per_s"], "/s"))
    return rows


def lifecycle_rows(result: dict[str, Any]) -> list[Row]:
    """The lifecycle over the API against the naive and the same-shape no-op workflows (same run, same calls),
    and the real workflow driven through the client (the workflow-only view)."""
    phases = result["phases"]
    rows: list[Row] = []
    for case, label in (("api", "over the API"), ("client", "workflow only, via client")):
        for base, base_label in (("naive", "naive no-op"), ("same_shape", "same-shape no-op")):
            b, c = phases[base], phases[case]
            rows.append(
                ("lifecycle", f"cases/s {label} (baseline: {base_label})", b["cases_per_s"], c["cases_per_s"], "/s")
            )
        b, c = phases["same_shape"], phases[case]
        rows.append(
            (
                "lifecycle",
                f"action p99 {label} (baseline: same-shape update p99)",
                b["actions"]["p99_ms"],
                c["actions"]["p99_ms"],
                "ms",
            )
        )
    parts = (("server", "Temporal server"), ("worker", "worker"), ("api", "API"), ("postgresql", "PostgreSQL"))
    for key, label in parts:
        b, c = phases["naive"]["cpu_s_per_case"].get(key), phases["api"]["cpu_s_per_case"].get(key)
        if c is None:
            continue  # a result written before PostgreSQL's share was measured
        rows.append(("lifecycle", f"CPU per case over the API, {label} (baseline: naive)", b, c, "s"))
    if rebuilt := result.get("rebuild_from_server"):
        # The slowest pass of each: what an operator can count on.
        read = min(rebuilt["runs"]["read"], key=lambda run: run["cases_per_s"])
        replayed = min(rebuilt["runs"]["replayed"], key=lambda run: run["cases_per_s"])
        rows += [
            (
                "lifecycle",
                f"rebuild from the server, {read['cases']:,} cases: cases/s, records read (baseline: replayed)",
                replayed["cases_per_s"],
                read["cases_per_s"],
                "/s",
            ),
            (
                "lifecycle",
                "rebuild from the server: 100k cases extrapolated",
                None,
                100_000 / read["cases_per_s"] / 60,
                "min",
            ),
        ]
    delivered = result["deliveries_all_real_cases"]
    rows.append(
        (
            "lifecycle",
            "notifications not delivered exactly once",
            None,
            float(delivered["missing"] + delivered["delivered_twice"]),
            "",
        )
    )
    return rows


def board_rows(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for backend in result["backends"]:
        measured = [f for f in backend["filters"] if "p99_ms" in f]
        if not measured:
            continue
        worst = max(measured, key=lambda f: f["p99_ms"])
        base = backend["baseline_pk_lookup"]
        label = f"{backend['backend']} {backend['rows']:,} rows"
        met = sum(f["met"] for f in measured)
        rows.append(
            (
                "board",
                f"worst filter p99 ({worst['filter']}, page {worst['page']}), {label}",
                base["p99_ms"],
                worst["p99_ms"],
                "ms",
            )
        )
        rows.append(("board", f"filter lines within target, {label}", None, met, f"of {len(measured)}"))
    return rows


def replay_rows(result: dict[str, Any]) -> list[Row]:
    r, b = result["replay"], result["rebuild"]
    floor: list[Row] = []
    if "noop_batched_per_s" in r:  # runs before the no-op floor have no such row
        floor.append(
            (
                "replay",
                "histories per second, 1 process (baseline: no-op workflows of the same shapes)",
                r["noop_batched_per_s"],
                r["batched_per_s"],
                "/s",
            )
        )
    return [
        *floor,
        ("replay", "histories per second, 1 process vs parse only", r["parse_per_s"], r["batched_per_s"], "/s"),
        ("replay", f"histories per second, {r['jobs']} processes vs 1", r["batched_per_s"], r["processes_per_s"], "/s"),
        (
            "replay",
            f"rebuild cases/s, {b['processes']['jobs']} processes vs 1",
            b["one_process"]["cases_per_s"],
            b["processes"]["cases_per_s"],
            "/s",
        ),
        (
            "replay",
            f"rebuild cases/s, records read vs replayed, {b['processes']['jobs']} processes",
            b["replayed"]["processes"]["cases_per_s"],
            b["processes"]["cases_per_s"],
            "/s",
        ),
        ("replay", "rebuild: 100k cases extrapolated (wall)", None, b["processes"]["extrapolated_100k_s"] / 60, "min"),
    ]


def memory_rows(result: dict[str, Any]) -> list[Row]:
    if population := result.get("population"):  # --open: the cases left open, settled
        base = result["baseline_rss_mib"]
        return [
            (
                "memory",
                f"worker RSS, idle vs {population['open_cases']:,} open, settled",
                base,
                population["rss_settled_mib"],
                "MiB",
            ),
            (
                "memory",
                f"worker RSS, idle vs {population['open_cases']:,} open, peak",
                base,
                population["rss_peak_mib"],
                "MiB",
            ),
        ]
    rows: list[Row] = [
        (
            "memory",
            "worker RSS, idle (baseline) vs last sample",
            result["baseline_rss_mib"],
            result["samples"][-1]["rss_mib"],
            "MiB",
        )
    ]
    if result.get("mib_per_open_case"):
        rows.append(
            ("memory", "RSS per open case (case + agency task cached)", None, result["mib_per_open_case"] * 1024, "KiB")
        )
    return rows


Target = tuple[str, float, float | None, bool]  # the target, its limit, the measured figure, met


def targets(results: dict[str, dict[str, Any]]) -> list[Target]:
    """Issue 13's targets that the parts measured, each with its limit and this run's figure: a ratio to a
    baseline where the target is one, else the figure itself (``None`` where the part did not measure it)."""
    out: list[Target] = []

    def at_most(name: str, limit: float, value: float | None) -> None:
        out.append((name, limit, value, value is not None and value <= limit))

    def at_least(name: str, limit: float, value: float | None) -> None:
        out.append((name, limit, value, value is not None and value >= limit))

    if board := results.get("board"):
        for backend in board["backends"]:
            limit = 50.0 if backend["backend"] == "sqlite" else 20.0
            measured = [f["p99_ms"] for f in backend["filters"] if "p99_ms" in f]
            label = (
                f"board p99 ms, worst of {len(measured)} filter lines, {backend['backend']} {backend['rows']:,} rows"
            )
            at_most(label, limit, max(measured) if measured else None)
    if intake := results.get("intake"):
        at_least("intake complaints/s, everything at once, 32 clients", 100.0, intake["intake"]["per_s"])
        at_most("intake p99 ms, everything at once, 32 clients", 150.0, intake["intake"]["latency"]["p99_ms"])
        if opened := intake.get("open_loop"):
            rate = opened["intake"]["open_loop_rate"]
            at_most(
                f"intake p99 ms, everything at once, {rate:g}/s arriving", 150.0, opened["intake"]["latency"]["p99_ms"]
            )
        for alone in intake.get("api_alone", []):
            if opened := alone.get("open_loop"):
                rate = opened["open_loop_rate"]
                at_most(
                    f"intake p99 ms, API alone x{alone['api_workers']}, {rate:g}/s arriving",
                    150.0,
                    opened["latency"]["p99_ms"],
                )
        if relay := intake.get("relay_alone"):
            bare = relay.get("bare_loop_right_after", {}).get("per_s")
            at_least("relay alone ÷ bare start loop right after", 1.0, ratio(bare, relay["per_s"]))
        after = intake["after"]
        at_most("complaints lost or filed twice", 0.0, float(after["answered_201"] - after["distinct_cases"]))
    if lifecycle := results.get("lifecycle"):
        r = lifecycle["ratios"]
        at_least("lifecycle over the API ÷ naive no-op, cases/s", 1.0, r["api_vs_naive"]["throughput"])
        at_least("lifecycle over the API ÷ same-shape no-op, cases/s", 0.8, r["api_vs_same_shape"]["throughput"])
        at_most("action p99 over the API ÷ same-shape update p99", 1.2, r["api_vs_same_shape"]["action_p99"])
        if rebuilt := lifecycle.get("rebuild_from_server"):
            slowest = min(run["cases_per_s"] for run in rebuilt["runs"]["read"])
            at_most("rebuild of 100k cases from the server, minutes (slowest pass)", 10.0, 100_000 / slowest / 60)
    if replay := results.get("replay"):
        at_least(
            f"replay histories/s, {replay['replay']['jobs']} processes", 200.0, replay["replay"]["processes_per_s"]
        )
    if memory := results.get("memory"):
        if population := memory.get("population"):
            at_most(f"worker RSS MiB, {population['open_cases']:,} open, peak", 300.0, population["rss_peak_mib"])
    return out


def targets_table(found: Sequence[Target]) -> str:
    lines = ["| target | limit | measured | verdict |", "|---|---:|---:|---|"]
    for name, limit, value, met in found:
        shown = "–" if value is None else f"{value:,.2f}"
        lines.append(f"| {name} | {limit:,.2f} | {shown} | {'met' if met else 'missed'} |")
    return "\n".join(lines)


def ratio(base: float | None, value: float | None) -> float | None:
    return value / base if base and value is not None else None


def table(rows: Sequence[Row]) -> str:
    lines = ["| part | figure | baseline (same run) | Rongtuk | ÷ baseline |", "|---|---|---:|---:|---:|"]
    for part, figure, base, value, unit in rows:
        r = ratio(base, value)
        shown = f"{r:.2f}×" if r is not None else "–"
        lines.append(f"| {part} | {figure} | {_fmt(base, unit)} | {_fmt(value, unit)} | {shown} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks, print the summary table and write the JSON files."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, about 2 minutes on 2 cores")
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), default=sorted(PARTS), help="parts to run")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "full"
    suffix = "-quick" if args.quick else ""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    machine = machine_info()
    summary: dict[str, Any] = {
        "date": started.isoformat(),
        "mode": mode,
        "machine": machine,
        "versions": versions(),
        "settings": {},
        "parts": {},
    }
    rows: list[Row] = []
    results: dict[str, dict[str, Any]] = {}
    builders = {
        "overdue": overdue_rows,
        "engine": engine_rows,
        "board": board_rows,
        "replay": replay_rows,
        "memory": memory_rows,
        "intake": intake_rows,
        "lifecycle": lifecycle_rows,
    }
    for name in args.only:
        part_args = list(PARTS[name][mode])
        if name in ("overdue", "board") and not postgres_listening():
            print(f"(no PostgreSQL on {PG_HOST}:{PG_PORT}: the board is measured on SQLite only)")
            part_args += ["--backends", "sqlite"]
        out = args.out_dir / f"{name}{suffix}.json"
        result = run_part(name, part_args, out)
        summary["settings"][name] = result.get("args", {})
        summary["parts"][name] = {"results_file": out.name, "wall_s": round(result["_wall_s"], 1)}
        if name == "overdue":
            summary["versions"]["sqlite"] = result["machine"].get("sqlite")
            summary["versions"]["postgresql"] = result["machine"].get("postgresql")
        if name == "engine":
            summary["versions"]["temporal_cli"] = result["machine"].get("temporal_cli")
        rows += builders[name](result)
        results[name] = result

    summary["machine"]["loadavg_at_end"] = list(os.getloadavg())
    summary["duration_s"] = (datetime.now(UTC) - started).total_seconds()
    summary["figures"] = [
        {"part": p, "figure": f, "baseline": b, "value": v, "unit": u, "ratio": ratio(b, v)} for p, f, b, v, u in rows
    ]
    print(f"\n=== summary ({mode}, {summary['duration_s']:.0f} s)\n")
    print(table(rows))
    found = targets(results)
    summary["targets"] = [{"target": t, "limit": lim, "measured": v, "met": met} for t, lim, v, met in found]
    print(f"\n=== issue 13's targets ({sum(t[3] for t in found)} of {len(found)} met)\n")
    print(targets_table(found))
    out = args.out_dir / f"summary{suffix}.json"
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nwrote {out}")
    return summary


if __name__ == "__main__":
    main()
