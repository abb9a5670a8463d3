"""Benchmark every filter of the supervisor board, alone and combined, at 1M read-model rows.

    .venv/bin/python -m bench.board_bench [--rows 1000000] [--backends sqlite postgresql]
                                          [--pages 1 20] [--runs 20] [--out bench/results/board.json]

Each filter is one line of ``FILTERS`` (keyword arguments of ``store.queries.list_cases``); a line whose
keyword ``list_cases`` does not take yet (a filter another change adds) is reported as "not on the board" and
skipped, so the list can name filters before they exist. Every line is timed on the pages the board serves
(``page=1`` and a deeper page, offset paging of 50 as ``GET /api/v1/cases``), through a fresh session per
call as the API does: the page query plus the ``count(*)`` behind ``total``. The baseline, timed in the same
process, is a primary-key lookup through the same session machinery.

The read model is bulk-loaded as ``bench.overdue_bench`` loads it (``executemany`` into a temporary SQLite
file, ``COPY`` into a scratch PostgreSQL database that is dropped at the end), plus ``agency_tasks``: one row
per agency of each case that reached an agency, open (assigned/accepted) while the case is in ``assignment``
or ``stage1``, answered otherwise. Targets (issue 13): p99 <= 20 ms on PostgreSQL, <= 50 ms on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bench import machine
from bench.overdue_bench import (
    COLUMNS,
    _pg_value,
    _sqlite_value,
    generate_rows,
    time_async,
)
from config.heap import freeze_startup_heap
from sla.calendar import WorkingCalendar
from store import models, queries
from store.db import Database
from store.migrate import upgrade
from store.models import Case

DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_PG_DATABASE = "rongtuk_bench_board"
TARGET_MS = {"sqlite": 50.0, "postgresql": 20.0}

# One line per board filter: a label and the keyword arguments of list_cases. Add a filter by adding a line.
FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("no filter", {}),
    ("overdue", {"overdue": True}),
    ("not overdue", {"overdue": False}),
    ("at risk", {"at_risk": True}),
    ("not at risk", {"at_risk": False}),
    ("open", {"open_only": True}),
    ("ended", {"open_only": False}),
    ("agency", {"agency": "BMA"}),
    ("stage 1", {"stage": 1}),
    ("stage 2", {"stage": 2}),
    ("province", {"province": "Province-07"}),
    ("status stage1", {"status": "stage1"}),
    ("status closed", {"status": "closed"}),
    ("kind", {"kind": "complaint"}),
    ("priority", {"priority": "urgent"}),
    ("centre", {"centre": "PSC"}),
    ("region", {"region": "central"}),
    ("category", {"category": "street-lights"}),
    # combined
    ("overdue + agency", {"overdue": True, "agency": "BMA"}),
    ("overdue + province", {"overdue": True, "province": "Province-07"}),
    ("overdue + stage 1", {"overdue": True, "stage": 1}),
    ("overdue + status", {"overdue": True, "status": "stage1"}),
    ("at risk + agency", {"at_risk": True, "agency": "BMA"}),
    ("open + agency", {"open_only": True, "agency": "BMA"}),
    ("open + province", {"open_only": True, "province": "Province-07"}),
    ("open + category", {"open_only": True, "category": "street-lights"}),
    ("agency + stage 1", {"agency": "BMA", "stage": 1}),
    ("agency + province", {"agency": "BMA", "province": "Province-07"}),
    ("stage 1 + province", {"stage": 1, "province": "Province-07"}),
    ("status + province", {"status": "stage1", "province": "Province-07"}),
    ("overdue + agency + province + stage", {"overdue": True, "agency": "BMA", "province": "Province-07", "stage": 1}),
    ("overdue + priority + region", {"overdue": True, "priority": "urgent", "region": "central"}),
    ("agency + kind + centre", {"agency": "BMA", "kind": "complaint", "centre": "PSC"}),
]

# Values for the columns other changes add (filled only when the column exists in store.models.Case).
NEW_COLUMN_VALUES: dict[str, tuple[list[str], list[float]]] = {
    "kind": (["complaint", "suggestion", "request", "tipoff"], [0.75, 0.1, 0.1, 0.05]),
    "priority": (["normal", "urgent"], [0.97, 0.03]),
    "centre": (["PSC", "1111", "BMA-CC", "DAMRONGDHAM"], [0.4, 0.3, 0.2, 0.1]),
    "region": (["central", "north", "northeast", "south", "east", "west"], [0.35, 0.15, 0.25, 0.12, 0.08, 0.05]),
}
TASK_COLUMNS = ("case_id", "agency", "status", "assigned_at", "accepted_at", "responded_at", "due_at")
# The task rows' copies of their case's board columns (store/board.py), when the schema has them.
TASK_COPIES: tuple[tuple[str, str], ...] = tuple(
    (task, case) for task, case in getattr(models, "BOARD_COPIES", ()) if task != "case_id"
)
AGENCY_TASK_COLUMNS = (*TASK_COLUMNS, *(task for task, _ in TASK_COPIES))
_TASK_DATETIMES = frozenset({"assigned_at", "accepted_at", "responded_at", "due_at", "case_due_at"})
CHUNK_TASKS = 20_000


def board_keywords() -> set[str]:
    """The filters list_cases takes today."""
    return set(inspect.signature(queries.list_cases).parameters)


# Columns the projection derives from another (filled only when the column exists in store.models.Case).
DERIVED_COLUMNS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "category_group": lambda row: models.category_group_of(row.get("category")),
}


def extra_columns() -> list[str]:
    return [c for c in (*NEW_COLUMN_VALUES, *DERIVED_COLUMNS) if c in Case.__table__.columns]


def _enrich(chunk: list[dict[str, Any]], extra: Sequence[str], seed: int) -> list[dict[str, Any]]:
    for row in chunk:
        rng = random.Random(f"{seed}:{row['case_id']}")
        for column in extra:
            if column in DERIVED_COLUMNS:
                row[column] = DERIVED_COLUMNS[column](row)
                continue
            values, weights = NEW_COLUMN_VALUES[column]
            row[column] = rng.choices(values, weights)[0]
    return chunk


def _tasks(chunk: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Agency tasks for a chunk of cases: open in assignment/stage1, answered once the case moved on."""
    out = []
    for row in chunk:
        if row["stage"] is None and row["status"] != "assignment":
            continue
        assigned = row["received_at"] + timedelta(days=1)
        for agency in row["agencies"]:
            if row["status"] == "assignment":
                values = ("assigned", assigned, None, None, row["due_at"])
            elif row["status"] == "stage1":
                values = ("accepted", assigned, assigned + timedelta(hours=4), None, row["due_at"])
            else:
                responded = assigned + timedelta(days=3)
                values = ("responded", assigned, assigned + timedelta(hours=4), responded, None)
            out.append((row["case_id"], agency, *values, *(row.get(case) for _, case in TASK_COPIES)))
    return out


def load_sqlite(path: Path, start: int, stop: int, *, now: datetime, seed: int) -> int:
    conn = sqlite3.connect(path)
    extra = extra_columns()
    columns = (*COLUMNS, *extra)
    tasks = 0
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        sql = f"INSERT INTO cases ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        task_sql = (
            f"INSERT INTO agency_tasks ({', '.join(AGENCY_TASK_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in AGENCY_TASK_COLUMNS)})"
        )
        for chunk in generate_rows(start, stop, now=now, seed=seed):
            _enrich(chunk, extra, seed)
            task_rows = [
                tuple(
                    _sqlite_value("due_at" if c in _TASK_DATETIMES else c, v)
                    for c, v in zip(AGENCY_TASK_COLUMNS, t, strict=True)
                )
                for t in _tasks(chunk)
            ]
            tasks += len(task_rows)
            with conn:
                conn.executemany(sql, [tuple(_sqlite_value(c, row[c]) for c in columns) for row in chunk])
                conn.executemany(task_sql, task_rows)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return tasks


async def load_postgres(dsn: str, start: int, stop: int, *, now: datetime, seed: int) -> int:
    conn = await asyncpg.connect(dsn)
    extra = extra_columns()
    columns = (*COLUMNS, *extra)
    tasks = 0
    try:
        for chunk in generate_rows(start, stop, now=now, seed=seed):
            _enrich(chunk, extra, seed)
            records = [tuple(_pg_value(c, row[c]) for c in columns) for row in chunk]
            await conn.copy_records_to_table("cases", records=records, columns=list(columns))
            task_rows = _tasks(chunk)
            tasks += len(task_rows)
            await conn.copy_records_to_table("agency_tasks", records=task_rows, columns=list(AGENCY_TASK_COLUMNS))
        await conn.execute("VACUUM ANALYZE cases")
        await conn.execute("VACUUM ANALYZE agency_tasks")
    finally:
        await conn.close()
    return tasks


async def explain(db: Database, kwargs: dict[str, Any], *, now: datetime, calendar: WorkingCalendar) -> list[str]:
    """The plan lines of each statement list_cases sends for these filters."""
    captured: list[tuple[str, Any]] = []

    def listener(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        async with db.sessions() as session:
            await queries.list_cases(session, now=now, calendar=calendar, page_size=50, **kwargs)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listener)
    lines: list[str] = []
    async with db.engine.connect() as conn:
        for statement, parameters in captured:
            prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (COSTS OFF) "
            rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
            lines.append(" | ".join(str(r[-1]) if db.is_sqlite else str(r[0]).strip() for r in rows))
    return lines


async def measure(
    db: Database,
    *,
    backend: str,
    now: datetime,
    pages: Sequence[int],
    runs: int,
    warmup: int,
    case_ids: Sequence[str],
    with_plans: bool,
) -> dict[str, Any]:
    calendar = WorkingCalendar()
    known = board_keywords()
    rng = random.Random(7)
    # As the API does once started (config/heap.py): its start-up heap frozen, so that a full collection of
    # it (35 ms here) is not timed as one filter's slow call.
    freeze_startup_heap()

    async def lookup() -> None:
        async with db.sessions() as session:
            (await session.execute(select(Case.case_id, Case.status).where(Case.case_id == rng.choice(case_ids)))).one()

    cpu0 = time.process_time()
    base = await time_async(lookup, runs=runs, warmup=warmup)
    base_cpu_ms = (time.process_time() - cpu0) * 1000 / (runs + warmup)
    out: dict[str, Any] = {
        "baseline_pk_lookup": base.as_dict() | {"client_cpu_ms_per_call": base_cpu_ms},
        "filters": [],
    }
    print(f"  {'filter':<38} {'page':>5} {'total':>9} {'p50 ms':>8} {'p99 ms':>8} {'x PK':>6}  stmts  cpu ms  target")
    print(f"  {'baseline: primary-key lookup':<38} {'':>5} {'':>9} {base.p50_ms:>8.2f} {base.p99_ms:>8.2f}")
    if not db.is_sqlite:
        # The floor under the session machinery: the same lookup on one asyncpg connection, no transaction.
        raw = await asyncpg.connect(make_url(db.url).set(drivername="postgresql").render_as_string(False))
        try:

            async def raw_lookup() -> None:
                sql = "SELECT case_id, status FROM cases WHERE case_id = $1"
                await raw.fetchrow(sql, rng.choice(case_ids))

            floor = await time_async(raw_lookup, runs=runs, warmup=warmup)
        finally:
            await raw.close()
        out["baseline_raw_asyncpg_pk_lookup"] = floor.as_dict()
        print(f"  {'baseline: the same on raw asyncpg':<38} {'':>5} {'':>9} {floor.p50_ms:>8.2f} {floor.p99_ms:>8.2f}")
    statements: list[str] = []

    def count_statement(*_args: Any) -> None:
        statements.append("")

    event.listen(db.engine.sync_engine, "before_cursor_execute", count_statement)
    for label, kwargs in FILTERS:
        missing = sorted(set(kwargs) - known)
        if missing:
            out["filters"].append({"filter": label, "kwargs": kwargs, "skipped": f"not on the board: {missing}"})
            print(f"  {label:<38} skipped: list_cases has no {', '.join(missing)}")
            continue
        for page in pages:
            result: dict[str, int] = {}

            async def call(page: int = page, kwargs: dict[str, Any] = kwargs, result: dict[str, int] = result) -> None:
                async with db.sessions() as session:
                    got = await queries.list_cases(
                        session, now=now, calendar=calendar, page=page, page_size=50, **kwargs
                    )
                result.update(total=got.total, items=len(got.items))

            statements.clear()
            cpu0 = time.process_time()
            t = await time_async(call, runs=runs, warmup=warmup)
            cpu_ms = (time.process_time() - cpu0) * 1000 / (runs + warmup)  # this process only: Python's share
            per_call = len(statements) / (runs + warmup)
            met = t.p99_ms <= TARGET_MS[backend]
            row: dict[str, Any] = {
                "filter": label,
                "kwargs": kwargs,
                "page": page,
                **result,
                **t.as_dict(),
                "ratio_p50": t.p50_ms / base.p50_ms,
                "target_ms": TARGET_MS[backend],
                "met": met,
                "statements_per_call": per_call,
                "client_cpu_ms_per_call": cpu_ms,
                "loadavg": list(os.getloadavg()),
            }
            if with_plans and (page == pages[0] or not met):
                row["plans"] = await explain(db, {**kwargs, "page": page}, now=now, calendar=calendar)
            out["filters"].append(row)
            print(
                f"  {label:<38} {page:>5} {result.get('total', 0):>9,} {t.p50_ms:>8.2f} {t.p99_ms:>8.2f} "
                f"{t.p50_ms / base.p50_ms:>6.1f}  {per_call:>5.1f}  {cpu_ms:>6.2f}  {'met' if met else 'MISSED'}",
                flush=True,
            )
    event.remove(db.engine.sync_engine, "before_cursor_execute", count_statement)
    measured = [f for f in out["filters"] if "p99_ms" in f]
    out["worst_p99_ms"] = max((f["p99_ms"] for f in measured), default=None)
    out["all_met"] = all(f["met"] for f in measured)
    return out


KEEP_TABLE = "bench_board_seed"  # in a kept database: what was seeded (rows, seed, schema head, now)


async def _kept_seed(url: str) -> tuple[datetime, int] | None:
    """The ``now`` and task count a kept scratch database was seeded with, if it matches this schema."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            head = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
            row = (await conn.exec_driver_sql(f"SELECT now_iso, tasks, head FROM {KEEP_TABLE}")).one()
    except Exception:  # no such database, table or row: seed it afresh
        return None
    finally:
        await db.dispose()
    return (datetime.fromisoformat(row[0]), int(row[1])) if row[2] == head else None


async def _mark_kept(url: str, *, now: datetime, tasks: int) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            head = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
            await conn.exec_driver_sql(
                f"CREATE TABLE {KEEP_TABLE} (now_iso VARCHAR(40), tasks INTEGER, head VARCHAR(32))"
            )
            await conn.exec_driver_sql(f"INSERT INTO {KEEP_TABLE} VALUES ('{now.isoformat()}', {tasks}, '{head}')")
    finally:
        await db.dispose()


async def run_backend(
    backend: str,
    rows: int,
    *,
    now: datetime,
    seed: int,
    pages: Sequence[int],
    runs: int,
    warmup: int,
    pg_server: str,
    pg_database: str,
    with_plans: bool,
    keep: bool = False,
) -> dict[str, Any]:
    """Seed a scratch database (or, with ``keep``, reuse the one an earlier run kept) and time every line."""
    tmpdir: Path | None = None
    admin_dsn: str | None = None
    if keep:  # named by size and kept: a later run with the same schema head measures it again, unseeded
        pg_database = f"{pg_database}_keep_{rows}"
    if backend == "sqlite":
        if keep:
            path = Path(tempfile.gettempdir()) / f"rongtuk-board-keep-{rows}.db"
        else:
            tmpdir = Path(tempfile.mkdtemp(prefix="rongtuk-board-"))
            path = tmpdir / "board.db"
        url = f"sqlite+aiosqlite:///{path}"
        version = sqlite3.sqlite_version
    else:
        admin = await asyncpg.connect(pg_server)
        try:
            version = str(await admin.fetchval("SHOW server_version"))
        finally:
            await admin.close()
        admin_dsn = None if keep else pg_server
        server = make_url(pg_server)
        url = server.set(drivername="postgresql+asyncpg", database=pg_database).render_as_string(hide_password=False)
        dsn = server.set(drivername="postgresql", database=pg_database).render_as_string(hide_password=False)
    kept = await _kept_seed(url) if keep else None
    db: Database | None = None
    try:
        if kept is not None:
            now, tasks = kept
            load_s = 0.0
            print(
                f"\n{backend} {version.split()[0]}: reusing the kept {rows:,} cases, {tasks:,} tasks "
                f"(seeded at {now:%H:%M})"
            )
        else:
            if backend == "sqlite":
                path.unlink(missing_ok=True)
            else:
                admin = await asyncpg.connect(pg_server)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
                    await admin.execute(f'CREATE DATABASE "{pg_database}"')
                finally:
                    await admin.close()
            await asyncio.to_thread(upgrade, url)
            t0 = time.perf_counter()
            if backend == "sqlite":
                tasks = await asyncio.to_thread(load_sqlite, path, 0, rows, now=now, seed=seed)
            else:
                tasks = await load_postgres(dsn, 0, rows, now=now, seed=seed)
            load_s = time.perf_counter() - t0
            if keep:
                await _mark_kept(url, now=now, tasks=tasks)
            print(
                f"\n{backend} {version.split()[0]}: {rows:,} cases and {tasks:,} agency tasks loaded in {load_s:.0f} s"
            )
        db = Database(url)
        case_rng = random.Random(rows)
        case_ids = [f"RT-B{case_rng.randrange(rows):09d}" for _ in range(1000)]
        result = await measure(
            db,
            backend=backend,
            now=now,
            pages=pages,
            runs=runs,
            warmup=warmup,
            case_ids=case_ids,
            with_plans=with_plans,
        )
        head = {
            "backend": backend,
            "version": version,
            "rows": rows,
            "agency_tasks": tasks,
            "load_seconds": load_s,
            "reused": kept is not None,
        }
        return head | result
    finally:
        if db is not None:
            await db.dispose()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        if admin_dsn is not None:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
            finally:
                await admin.close()


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.board_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--no-plans", action="store_true", help="skip EXPLAIN of each filter")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER, help="a database URL on the server to use")
    parser.add_argument("--pg-database", default=DEFAULT_PG_DATABASE, help="scratch database, dropped at the end")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the seeded scratch databases (rongtuk-board-keep-ROWS.db, PG_DATABASE_keep_ROWS) and reuse "
        "them in later runs while the schema head is the same (their seeding time is then the run's 'now')",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/board.json"))
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    info = {**machine.machine_info(), "sqlite": sqlite3.sqlite_version}
    print(f"rongtuk board bench, {started:%Y-%m-%d %H:%M} UTC, {args.rows:,} rows, load {info['loadavg_at_start']}")
    results: dict[str, Any] = {
        "date": started.isoformat(),
        "machine": info,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "backends": [],
    }
    now = started.replace(microsecond=0)
    for backend in args.backends:
        results["backends"].append(
            await run_backend(
                backend,
                args.rows,
                now=now,
                seed=args.seed,
                pages=args.pages,
                runs=args.runs,
                warmup=args.warmup,
                pg_server=args.pg_server,
                pg_database=args.pg_database,
                with_plans=not args.no_plans,
                keep=args.keep,
            )
        )
    info["loadavg_at_end"] = list(os.getloadavg())
    results["duration_seconds"] = (datetime.now(UTC) - started).total_seconds()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\ntotal {results['duration_seconds']:.0f} s; wrote {args.out}")
    return results


if __name__ == "__main__":
    asyncio.run(main())
