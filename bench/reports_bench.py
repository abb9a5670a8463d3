"""Benchmark the reports' queries on a large read model (default 1M cases), SQLite and PostgreSQL.

    .venv/bin/python -m bench.reports_bench [--rows 1000000] [--backends sqlite postgresql]
                                            [--out bench/results/reports.json]

Loads ``rows`` cases spread over three years with an agency task for most, then times each report the
pages draw (all years, and one quarter), and the case-list export streamed to nowhere. The baseline is a
plain ``COUNT(*)`` of the same cases, run in the same process, so the ratio says what the grouping and the
working-day counting cost on this machine. PostgreSQL uses a database ``rongtuk_bench_reports`` created for
the run and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import geothai
from sqlalchemy import func, insert, select

from bench import machine
from reports.caselist import case_rows
from reports.dimensions import DIMENSIONS, lookup
from reports.figures import Filters, volume
from reports.mapdata import province_table
from reports.periods import Grain
from reports.spso import repeat_complaints, root_causes, satisfaction, spso_quarterly
from sla.calendar import WorkingCalendar
from store.db import Database
from store.migrate import upgrade
from store.models import AgencyTask, Case

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "rongtuk_bench_reports"
CHUNK = 10_000
AGENCIES = ("MIN-MOI", "MIN-MOT", "MIN-MOPH", "OCPB", "MIN-MOL", "MIN-MOF", "MIN-MOE", "PSC")
CATEGORIES = ("roads.pothole", "lighting.streetlight", "flood.flooding", "waste.cleanliness", "roads.footpath")
STATUSES = ("closed",) * 6 + ("stage1", "screening", "assignment", "closed_stage2", "withdrawn", "responded")


def _rows(start: int, count: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    provinces = [p.name_th for p in geothai.provinces()]
    first = datetime(2023, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    cases, tasks = [], []
    for n in range(start, start + count):
        received = first + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        status = rng.choice(STATUSES)
        closed = received + timedelta(hours=rng.randrange(2, 24 * 30)) if status.startswith("closed") else None
        s2 = status == "closed_stage2"
        case_id = f"b{n:09d}"
        agency = rng.choice(AGENCIES)
        cases.append(
            {
                "case_id": case_id,
                "tracking_code": f"B{n:09d}",
                "workflow_id": f"complaint-{case_id}",
                "status": status,
                "channel": rng.choice(("web", "line", "hotline", "walk_in", "letter", "app")),
                "description": "bench",
                "category": rng.choice(CATEGORIES),
                "complainant_phone": f"+6681{rng.randrange(2_000_000):07d}",
                "preferred_channels": ["web"],
                "confidential": False,
                "province": rng.choice(provinces),
                "latitude": 13 + rng.random(),
                "longitude": 100 + rng.random(),
                "attachments": [],
                "agencies": [agency],
                "outcome": rng.choice(("resolved", "upheld", "not_upheld")) if closed else None,
                "received_at": received,
                "updated_at": received,
                "closed_at": closed,
                "due_at": None if closed else now + timedelta(days=rng.randrange(-20, 20)),
                "stage": 2 if s2 else 1,
                "stage1_closed_at": closed - timedelta(days=10) if s2 and closed else closed,
                "stage2_started_at": closed - timedelta(days=9) if s2 and closed else None,
                "stage2_closed_at": closed if s2 else None,
                "rating": rng.choice((None, 3, 4, 5)) if closed else None,
                "root_cause": rng.choice((None, "budget", "contractor", "follow-up")) if closed else None,
            }
        )
        tasks.append({"case_id": case_id, "agency": agency, "status": "accepted", "assigned_at": received})
    return cases, tasks


async def load(db: Database, rows: int, seed: int = 7) -> float:
    rng = random.Random(seed)
    began = time.perf_counter()
    for start in range(0, rows, CHUNK):
        cases, tasks = _rows(start, min(CHUNK, rows - start), rng)
        async with db.session() as session:
            await session.execute(insert(Case), cases)
            await session.execute(insert(AgencyTask), tasks)
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - began


async def _timed(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


async def measure(db: Database, runs: int) -> dict[str, float]:
    lk, now, calendar = lookup(), datetime.now(UTC), WorkingCalendar()
    everything = Filters()
    quarter = Filters(since=date(2024, 4, 1), until=date(2024, 6, 30))
    results: dict[str, float] = {}

    async def run(name: str, make: Callable[[Any], Awaitable[Any]]) -> None:
        async def once() -> None:
            async with db.sessions() as session:
                await make(session)

        results[name] = round(await _timed(once, runs), 3)
        print(f"  {name:<34} {results[name]:8.3f} s", flush=True)

    await run("baseline: count(*)", lambda s: s.scalar(select(func.count()).select_from(Case)))
    for label, filters in (("all", everything), ("quarter", quarter)):
        await run(
            f"volume by quarter x province [{label}]",
            lambda s, f=filters: volume(
                s, grain=Grain.QUARTER, dimension=DIMENSIONS["province"], filters=f, lk=lk, now=now, lang="th"
            ),
        )
        await run(
            f"volume by month x agency [{label}]",
            lambda s, f=filters: volume(
                s, grain=Grain.MONTH, dimension=DIMENSIONS["agency"], filters=f, lk=lk, now=now, lang="th"
            ),
        )
        await run(
            f"spso quarterly [{label}]",
            lambda s, f=filters: spso_quarterly(
                s, filters=f, calendar=calendar, stage1_limit=5, stage2_limit=20, lang="th"
            ),
        )
        await run(f"satisfaction [{label}]", lambda s, f=filters: satisfaction(s, filters=f, lang="th"))
        await run(f"repeat complaints [{label}]", lambda s, f=filters: repeat_complaints(s, filters=f, lang="th"))
        await run(f"root causes [{label}]", lambda s, f=filters: root_causes(s, filters=f, lang="th"))
        await run(f"provinces (map) [{label}]", lambda s, f=filters: province_table(s, filters=f, now=now, lang="th"))

    async def stream_all(session: Any) -> None:
        async for _ in case_rows(session, quarter, lk, now=now):
            pass

    await run("case list export [quarter]", stream_all)
    return results


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.reports_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/reports.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": machine.machine_info(), "rows": args.rows, "backends": {}}
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp}/reports.db"
            else:
                server = await asyncpg.connect(PG_SERVER, timeout=10)
                await server.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
                await server.execute(f"CREATE DATABASE {PG_DATABASE}")
                await server.close()
                url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
            upgrade(url)
            db = Database(url)
            try:
                print(f"{backend}: loading {args.rows:,} cases", flush=True)
                loaded = await load(db, args.rows)
                print(f"{backend}: loaded in {loaded:.0f} s", flush=True)
                results["backends"][backend] = {
                    "load_seconds": round(loaded),
                    "median_seconds": await measure(db, args.runs),
                }
            finally:
                await db.dispose()
                if backend != "sqlite":
                    server = await asyncpg.connect(PG_SERVER, timeout=10)
                    await server.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
                    await server.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    asyncio.run(main())
