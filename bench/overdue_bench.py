"""Benchmark the deadline arithmetic and the overdue board query at 100k and 1M read-model rows.

    .venv/bin/python -m bench.overdue_bench [--rows 100000 1000000] [--backends sqlite postgresql]
                                            [--out bench/results/overdue.json]

Two measurements, each against a baseline run in the same process so that the ratio says more than the raw
figure on a noisy machine:

* ``WorkingCalendar.due()`` over random receipt times and 1..20 working days, against plain
  ``start + timedelta(days=n)`` over the same inputs.
* ``store.queries.list_cases(overdue=True, page_size=50)`` (first page plus its total) and the overdue count
  alone, against a primary-key lookup of one case, on SQLite (a temporary file) and PostgreSQL (a database
  ``rongtuk_bench`` created for the run and dropped at the end). The read model is bulk-loaded with ~10%
  overdue rows, a realistic status mix and midnight deadlines as the workflow writes them (so thousands of
  cases share each due_at); the larger sizes add rows to the smaller data set.

See bench/README.md for the figures and their caveats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bench import machine
from sla.calendar import BANGKOK, WorkingCalendar
from store import queries
from store.db import Database
from store.migrate import upgrade
from store.models import Case
from workflows.process import OPEN_STATES, STATE_DEADLINES, State

BENCH_DATABASE = "rongtuk_bench"
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
CHUNK = 20_000

# Share of all rows in each situation; the rest are finished cases (due_at NULL).
OVERDUE_SHARE = 0.10
FUTURE_SHARE = 0.16
PAUSED_SHARE = 0.04
# Open cases pile up where agencies work; states added to the process later get weight 1.
OPEN_WEIGHTS = {"received": 0.5, "screening": 1.5, "assignment": 2.0, "stage1": 4.0, "responded": 1.0}
FINISHED_WEIGHTS = {"closed": 8.0, "withdrawn": 1.0}
PROVINCES = [f"Province-{i:02d}" for i in range(77)]
AGENCIES = ["DOPA", "BMA", "RTP", "DLT", "DOH", "PEA", "MEA", "PWA", "MWA", "DLA"]


COLUMNS = (
    "case_id",
    "tracking_code",
    "workflow_id",
    "status",
    "channel",
    "subject",
    "description",
    "category",
    "complainant_name",
    "complainant_phone",
    "preferred_channels",
    "confidential",
    "province",
    "district",
    "attachments",
    "agencies",
    "received_at",
    "expected_by",
    "updated_at",
    "closed_at",
    "last_seq",
    "due_at",
    "due_rule",
    "escalation_level",
    "stage",
)
_DATETIME_COLUMNS = frozenset({"received_at", "expected_by", "updated_at", "closed_at", "due_at"})
_JSON_COLUMNS = frozenset({"preferred_channels", "attachments", "agencies"})


# --- the data set --------------------------------------------------------------------------------------------


def _weighted(names: Sequence[str], weights: dict[str, float]) -> tuple[list[str], list[float]]:
    return list(names), [weights.get(n, 1.0) for n in names]


def _deadlines(now: datetime) -> tuple[list[datetime], list[datetime]]:
    # Real deadlines are the midnight that ends a working day, so thousands of cases share each value and
    # the case_id tie-break does real work: the past ~60 and next ~30 calendar days of them.
    calendar = WorkingCalendar()
    today = now.astimezone(BANGKOK).date()
    past: list[datetime] = []
    future: list[datetime] = []
    for offset in range(-60, 31):
        day = today + timedelta(days=offset)
        if calendar.is_working_day(day):
            due_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=BANGKOK)
            (past if due_at < now else future).append(due_at)
    return past, future


def generate_rows(start: int, stop: int, *, now: datetime, seed: int) -> Iterator[list[dict[str, Any]]]:
    """Yield read-model rows ``start``..``stop`` in chunks; row ``i`` is the same whatever the chunking."""
    open_states, open_w = _weighted(sorted(str(s) for s in OPEN_STATES), OPEN_WEIGHTS)
    finished_states, finished_w = _weighted(sorted(str(s) for s in set(State) - OPEN_STATES), FINISHED_WEIGHTS)
    rules = {str(s): r for s, r in STATE_DEADLINES.items()}
    past_dues, future_dues = _deadlines(now)
    chunk: list[dict[str, Any]] = []
    for i in range(start, stop):
        rng = random.Random(seed * 1_000_003 + i)
        received = now - timedelta(seconds=rng.randrange(365 * 86400))
        u = rng.random()
        closed_at = None
        stage = None
        if u < OVERDUE_SHARE + FUTURE_SHARE + PAUSED_SHARE:
            status = rng.choices(open_states, open_w)[0]
            if u < OVERDUE_SHARE:
                due_at: datetime | None = rng.choice(past_dues)
            elif u < OVERDUE_SHARE + FUTURE_SHARE:
                due_at = rng.choice(future_dues)
            else:
                due_at = None  # clock paused (e.g. waiting for the complainant)
            stage = 1 if status in ("stage1", "responded") else None
        else:
            status = rng.choices(finished_states, finished_w)[0]
            due_at = None
            closed_at = received + timedelta(seconds=rng.randrange(30 * 86400))
            stage = rng.choices([None, 1, 2], [0.25, 0.7, 0.05])[0]
        agencies = rng.sample(AGENCIES, rng.choice((1, 1, 1, 2)))
        chunk.append(
            {
                "case_id": f"RT-B{i:09d}",
                "tracking_code": f"T{i:09d}",
                "workflow_id": f"complaint-RT-B{i:09d}",
                "status": status,
                "channel": rng.choice(("web", "hotline", "line", "walk_in", "letter", "traffy")),
                "subject": "ไฟถนนดับ",
                "description": "ไฟถนนในซอยดับมาสองสัปดาห์ ตอนกลางคืนมืดมากและอันตราย ขอให้หน่วยงานเร่งแก้ไข " * 2,
                "category": "street-lights",
                "complainant_name": "สมหญิง รักดี",
                "complainant_phone": "0812345678",
                "preferred_channels": ["sms"],
                "confidential": rng.random() < 0.05,
                "province": rng.choice(PROVINCES),
                "district": "District",
                "attachments": [],
                "agencies": agencies,
                "received_at": received,
                "expected_by": received + timedelta(days=15),
                "updated_at": received + timedelta(hours=1),
                "closed_at": closed_at,
                "last_seq": rng.randint(1, 12),
                "due_at": due_at,
                "due_rule": rules.get(status, "stage1_response") if due_at else None,
                "escalation_level": rng.choices((0, 1, 2), (0.9, 0.08, 0.02))[0],
                "stage": stage,
            }
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sqlite_value(column: str, value: Any) -> Any:
    # The same text the read model's UTCDateTime/JSON types write, so comparisons behave as in production.
    if value is None:
        return None
    if column in _DATETIME_COLUMNS:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if column in _JSON_COLUMNS:
        return json.dumps(value)
    return value


def _pg_value(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS and value is not None else value


def load_sqlite(path: Path, start: int, stop: int, *, now: datetime, seed: int) -> None:
    """Insert rows with executemany in chunks, one transaction per chunk, indexes in place."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # Durability is irrelevant for a throwaway file; it only slows the load.
        conn.execute("PRAGMA synchronous=OFF")
        sql = f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
        for chunk in generate_rows(start, stop, now=now, seed=seed):
            with conn:
                conn.executemany(sql, [tuple(_sqlite_value(c, row[c]) for c in COLUMNS) for row in chunk])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def load_postgres(dsn: str, start: int, stop: int, *, now: datetime, seed: int) -> None:
    """COPY rows in chunks, then VACUUM ANALYZE as autovacuum would after a bulk insert."""
    conn = await asyncpg.connect(dsn)
    try:
        for chunk in generate_rows(start, stop, now=now, seed=seed):
            records = [tuple(_pg_value(c, row[c]) for c in COLUMNS) for row in chunk]
            await conn.copy_records_to_table("cases", records=records, columns=list(COLUMNS))
        # Done here rather than left to autovacuum so that it cannot land in the middle of a measurement;
        # the visibility map it sets is what allows index-only scans for the count.
        await conn.execute("VACUUM ANALYZE cases")
    finally:
        await conn.close()


# --- timing ----------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    runs: int

    def as_dict(self) -> dict[str, float | int]:
        return {"p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "mean_ms": self.mean_ms, "runs": self.runs}


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    # Nearest-rank: with 50 runs p99 is the slowest run, which is what a reader of "p99" should expect.
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def time_async(fn: Callable[[], Awaitable[object]], *, runs: int, warmup: int) -> Timing:
    """Time ``fn`` ``runs`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return Timing(_percentile(samples, 0.50), _percentile(samples, 0.99), statistics.fmean(samples), runs)


# --- the deadline arithmetic ---------------------------------------------------------------------------------


def bench_calendar(ops: int, *, seed: int, repeats: int = 3) -> dict[str, Any]:
    """Time WorkingCalendar.due() against plain date addition over the same random inputs."""
    rng = random.Random(seed)
    origin = datetime(2025, 1, 1, tzinfo=UTC)
    inputs = [(origin + timedelta(seconds=rng.randrange(3 * 365 * 86400)), rng.randint(1, 20)) for _ in range(ops)]
    calendar = WorkingCalendar()
    for year in range(2024, 2030):  # build the per-year holiday tables outside the timing
        calendar.is_working_day(date(year, 1, 1))

    def due() -> None:
        for received, n in inputs:
            calendar.due(received, n)

    def plain() -> None:
        for received, n in inputs:
            received + timedelta(days=n)

    def best_of(fn: Callable[[], None]) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) / ops * 1e6

    due_us, plain_us = best_of(due), best_of(plain)
    return {
        "ops": ops,
        "repeats": repeats,
        "due_us_per_op": due_us,
        "baseline_us_per_op": plain_us,
        "ratio": due_us / plain_us,
        "ops_per_second": 1e6 / due_us,
    }


# --- the overdue query ---------------------------------------------------------------------------------------


def _capture_statements(db: Database) -> tuple[list[tuple[str, Any]], Callable[[], None]]:
    captured: list[tuple[str, Any]] = []

    def listener(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
    return captured, lambda: event.remove(db.engine.sync_engine, "before_cursor_execute", listener)


async def explain_overdue(db: Database, *, now: datetime, calendar: WorkingCalendar) -> list[dict[str, Any]]:
    """The plans of the statements list_cases(overdue=True) really sends, with the parameters it binds."""
    captured, stop = _capture_statements(db)
    try:
        async with db.sessions() as session:
            await queries.list_cases(session, now=now, calendar=calendar, overdue=True, page_size=50)
    finally:
        stop()
    plans = []
    async with db.engine.connect() as conn:
        for statement, parameters in captured:
            prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
            rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
            plan = [str(r[-1]) for r in rows] if db.is_sqlite else [str(r[0]) for r in rows]
            plans.append(
                {
                    "statement": " ".join(statement.split()),
                    "plan": plan,
                    "uses_ix_cases_status_due_at": any("ix_cases_status_due_at" in line for line in plan),
                }
            )
    return plans


async def bench_queries(
    db: Database, *, now: datetime, calendar: WorkingCalendar, case_ids: Sequence[str], runs: int, warmup: int
) -> dict[str, Any]:
    """Time the board's overdue page, the overdue count alone and a primary-key lookup."""
    rng = random.Random(7)
    count_stmt = (
        select(func.count()).select_from(Case).where(Case.status.in_(queries.open_state_codes()), Case.due_at < now)
    )
    lookup_columns = (Case.case_id, Case.status, Case.due_at, Case.province, Case.agencies)
    # For comparison: the page as one "status IN (...) AND due_at < now" range, which list_cases avoids.
    single_range = (
        select(*queries.BOARD_COLUMNS)
        .where(Case.status.in_(queries.open_state_codes()), Case.due_at < now)
        .order_by(Case.due_at, Case.case_id)
        .limit(50)
    )
    page_result: dict[str, Any] = {}

    async def page() -> None:
        async with db.sessions() as session:
            result = await queries.list_cases(session, now=now, calendar=calendar, overdue=True, page_size=50)
        page_result.update(total=result.total, items=len(result.items))

    async def count() -> None:
        async with db.sessions() as session:
            await session.scalar(count_stmt)

    async def single_range_page() -> None:
        async with db.sessions() as session:
            (await session.execute(single_range)).all()

    async def lookup() -> None:
        case_id = rng.choice(case_ids)
        async with db.sessions() as session:
            (await session.execute(select(*lookup_columns).where(Case.case_id == case_id))).one()

    timings = {
        "baseline_pk_lookup": await time_async(lookup, runs=runs, warmup=warmup),
        "overdue_first_page": await time_async(page, runs=runs, warmup=warmup),
        "overdue_count": await time_async(count, runs=runs, warmup=warmup),
        "single_range_page": await time_async(single_range_page, runs=runs, warmup=warmup),
    }
    base = timings["baseline_pk_lookup"].p50_ms
    return {
        "overdue_total": page_result.get("total"),
        "page_items": page_result.get("items"),
        **{name: t.as_dict() | {"ratio_p50": t.p50_ms / base} for name, t in timings.items()},
    }


async def run_backend(
    backend: str, sizes: Sequence[int], *, now: datetime, seed: int, runs: int, warmup: int, pg_server: str
) -> dict[str, Any]:
    """Load the read model up to each size in turn and measure it; clean up whatever was created."""
    calendar = WorkingCalendar()
    tmpdir: Path | None = None
    admin_dsn = None
    if backend == "sqlite":
        tmpdir = Path(tempfile.mkdtemp(prefix="rongtuk-bench-"))
        path = tmpdir / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        version = sqlite3.sqlite_version
    else:
        admin_dsn = pg_server
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
            version = str(await admin.fetchval("SHOW server_version"))
        finally:
            await admin.close()
        server = make_url(pg_server)
        bench_url = server.set(drivername="postgresql+asyncpg", database=BENCH_DATABASE)
        url = bench_url.render_as_string(hide_password=False)
        pg_dsn = server.set(drivername="postgresql", database=BENCH_DATABASE).render_as_string(hide_password=False)
    out: dict[str, Any] = {"backend": backend, "version": version, "sizes": []}
    db: Database | None = None
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        loaded = 0
        for size in sorted(sizes):
            t0 = time.perf_counter()
            if backend == "sqlite":
                await asyncio.to_thread(load_sqlite, path, loaded, size, now=now, seed=seed)
            else:
                await load_postgres(pg_dsn, loaded, size, now=now, seed=seed)
            load_s = time.perf_counter() - t0
            loaded = size
            # Fresh connections, so that none holds a snapshot or a schema cache from before the load.
            await db.engine.dispose()
            rng = random.Random(size)
            case_ids = [f"RT-B{rng.randrange(size):09d}" for _ in range(1000)]
            plans = await explain_overdue(db, now=now, calendar=calendar)
            result = await bench_queries(db, now=now, calendar=calendar, case_ids=case_ids, runs=runs, warmup=warmup)
            size_bytes = path.stat().st_size if backend == "sqlite" else await _pg_size(db)
            out["sizes"].append(
                {"rows": size, "load_seconds": load_s, "db_bytes": size_bytes, **result, "plans": plans}
            )
            _print_size(backend, size, out["sizes"][-1])
    finally:
        if db is not None:
            await db.dispose()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        if admin_dsn is not None:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
            finally:
                await admin.close()
    return out


async def _pg_size(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.exec_driver_sql("SELECT pg_database_size(current_database())")).scalar_one())


# --- report ----------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, with the SQLite library version."""
    return {**machine.machine_info(), "sqlite": sqlite3.sqlite_version}


def _print_calendar(result: dict[str, Any]) -> None:
    print(f"\nDeadline computation ({result['ops']:,} ops, median of {result['repeats']})")
    print(f"  {'operation':<40} {'us/op':>9}")
    print(f"  {'WorkingCalendar.due(received, 1..20)':<40} {result['due_us_per_op']:>9.2f}")
    print(f"  {'baseline: start + timedelta(days=n)':<40} {result['baseline_us_per_op']:>9.3f}")
    print(f"  ratio {result['ratio']:.0f}x; {result['ops_per_second']:,.0f} deadlines per second")


def _print_size(backend: str, size: int, r: dict[str, Any]) -> None:
    uses = all(p["uses_ix_cases_status_due_at"] for p in r["plans"])
    print(
        f"\n{backend} {size:,} rows (loaded in {r['load_seconds']:.1f} s, {r['db_bytes'] / 2**20:,.0f} MiB, "
        f"{r['overdue_total']:,} overdue, ix_cases_status_due_at used: {'yes' if uses else 'NO'})"
    )
    for plan in r["plans"]:
        kind = "count" if "count(" in plan["statement"].lower() else "page"
        steps = [_plan_step(line) for line in plan["plan"] if _PLAN_STEP.search(line)]
        print(f"  plan ({kind}): " + " | ".join(dict.fromkeys(steps)))
    print(f"  {'query':<38} {'p50 ms':>9} {'p99 ms':>9} {'x baseline':>11}")
    labels = {
        "overdue_first_page": "list_cases(overdue) page 1 + total",
        "overdue_count": "overdue count alone",
        "single_range_page": "(single IN-range page, for comparison)",
        "baseline_pk_lookup": "baseline: primary-key lookup",
    }
    for key, label in labels.items():
        t = r[key]
        print(f"  {label:<38} {t['p50_ms']:>9.2f} {t['p99_ms']:>9.2f} {t['ratio_p50']:>10.1f}x")


# The lines of a plan that say how rows are found and ordered (PostgreSQL's also carry timings and buffers).
_PLAN_STEP = re.compile(r"SEARCH|SCAN|Scan using|Seq Scan|Append|Sort \(|TEMP B-TREE")


def _plan_step(line: str) -> str:
    # One line per kind of step: PostgreSQL repeats the same step once per merged branch.
    line = re.sub(r"\s*\((actual|cost)[^)]*\)", "", line).replace("->", "").strip()
    line = re.sub(r" cases cases_\d+$", " cases", line)
    return re.sub(r"SCAN anon_\d+", "SCAN anon", line)


def _summary_table(results: dict[str, Any]) -> str:
    lines = [
        "| backend | rows | overdue | list_cases page 1 + total p50 / p99 ms | count p50 / p99 ms "
        "| PK lookup p50 / p99 ms | page / PK (p50) | single IN-range page p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend in results["queries"]:
        for r in backend["sizes"]:
            page, count, base = r["overdue_first_page"], r["overdue_count"], r["baseline_pk_lookup"]
            lines.append(
                f"| {backend['backend']} {backend['version'].split()[0]} | {r['rows']:,} | {r['overdue_total']:,} "
                f"| {page['p50_ms']:.2f} / {page['p99_ms']:.2f} | {count['p50_ms']:.2f} / {count['p99_ms']:.2f} "
                f"| {base['p50_ms']:.2f} / {base['p99_ms']:.2f} | {page['ratio_p50']:.0f}x "
                f"| {r['single_range_page']['p50_ms']:.2f} |"
            )
    return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and write the JSON file."""
    parser = argparse.ArgumentParser(prog="python -m bench.overdue_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/overdue.json"))
    parser.add_argument("--calendar-ops", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER, help="a database URL on the server to use")
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    now = started.replace(microsecond=0)
    info = machine_info()
    print(f"rongtuk overdue bench, {started:%Y-%m-%d %H:%M} UTC")
    print(f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, SQLite {info['sqlite']}")

    results: dict[str, Any] = {
        "date": started.isoformat(),
        "machine": info,
        "now": now.isoformat(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    results["calendar"] = bench_calendar(args.calendar_ops, seed=args.seed)
    _print_calendar(results["calendar"])

    results["queries"] = []
    for backend in args.backends:
        result = await run_backend(
            backend, args.rows, now=now, seed=args.seed, runs=args.runs, warmup=args.warmup, pg_server=args.pg_server
        )
        if backend == "postgresql":
            info["postgresql"] = result["version"]
        results["queries"].append(result)

    results["duration_seconds"] = (datetime.now(UTC) - started).total_seconds()
    if results["queries"]:
        print(f"\nSummary ({args.runs} timed runs after {args.warmup} warm-ups)")
        print(_summary_table(results))
    print(f"\ntotal {results['duration_seconds']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    asyncio.run(main())
