"""Archiving ended cases (``store/archive.py``, ``rongtuk db archive``): how fast the archive is written, its
cases deleted and restored, beside a plain read of the same rows in the same run (the baseline: the queries the
archive makes, without asking Temporal or writing the file).

    .venv/bin/python -m bench.archive_bench [--cases 5000] [--later 0] [--backend postgresql|sqlite] [--batch 200]
                                            [--out bench/results/archive.json]

The cases are the recorded golden cases' rows (``tests/workflows/histories``, as ``rongtuk db rebuild`` writes
them) under new case numbers, on a scratch database at the schema's head, then set back to 1999 and closed.
Temporal is a real dev server that holds none of them, so each is asked about and found gone, as a case past
its namespace's retention is. One pass each: archive (read, ask Temporal, write, read back), delete, restore.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text, update
from temporalio.testing import WorkflowEnvironment

from activities.projection import new_case_rows, write_new_cases
from bench.machine import write_report
from bench.record_bench import golden_records, renumbered
from bench.scratch import drop_database, postgres_listening, scratch_database
from config.logging import configure_logging
from config.settings import Settings
from config.temporal import data_converter
from store import models
from store.archive import CASE_TABLES, candidates_query, delete_archived, restore_archive, rows_of, write_archive
from store.db import Database
from store.migrate import upgrade
from workflows import search_attributes
from workflows.process import State

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "rongtuk_bench_archive"
CUTOFF = datetime(2000, 1, 1, tzinfo=UTC)
LONG_AGO = datetime(1999, 3, 1, 3, 0, tzinfo=UTC)


async def seed(db: Database, settings: Settings, cases: int, later: int) -> None:
    """``cases`` golden cases under new numbers, received and ended in 1999, and ``later`` more as they were
    recorded (this year's, not eligible), numbered as the centres number them: by date, the old ones first."""
    golden = [g for g in await golden_records(settings) if new_case_rows(g) is not None]
    batch: list[Any] = []
    for i in range(cases + later):
        day = "19990301" if i < cases else "20261205"
        rows = new_case_rows(renumbered(golden[i % len(golden)], f"RT-{day}-{uuid.uuid4().hex[:10].upper()}"))
        assert rows is not None
        batch.append(rows)
        if len(batch) == 200 or i == cases + later - 1:
            async with db.session() as session:
                await write_new_cases(session, batch)
            batch = []
    old = models.Case.case_id < "RT-2"
    async with db.session() as session:
        await session.execute(update(models.Case).where(old).values(status=State.CLOSED.value, received_at=LONG_AGO))
        await session.execute(update(models.CaseEvent).where(models.CaseEvent.case_id < "RT-2").values(at=LONG_AGO))
    if not db.is_sqlite:  # statistics, as autovacuum keeps them in service (a SQLite file has none)
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


async def read_alone(db: Database, batch: int) -> int:
    """The baseline: the archive's queries (the eligible cases, then their rows), nothing else."""
    read, after = 0, None
    while True:
        async with db.sessions() as session:
            ids = list((await session.scalars(candidates_query(CUTOFF, after=after, limit=batch))).all())
            if not ids:
                return read
            after = ids[-1]
            read += len(await rows_of(session, ids))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(what: str, cases: int, job: Any) -> dict[str, Any]:
    cpu, started = _cpu(), time.perf_counter()
    await job
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    figure = {"seconds": round(seconds, 3), "cases_per_s": round(cases / seconds, 1), "cpu_ms_per_case": None}
    figure["cpu_ms_per_case"] = round(cpu / cases * 1000, 3)
    print(
        f"  {what:<22} {seconds:8.2f} s  {cases / seconds:9.1f} cases/s  {figure['cpu_ms_per_case']:7.2f} ms CPU/case"
    )
    return figure


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--later", type=int, default=0, help="more cases, this year's, in the same database")
    parser.add_argument(
        "--backend", choices=["postgresql", "sqlite"], default="postgresql" if postgres_listening() else "sqlite"
    )
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/archive.json"))
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    started = datetime.now(UTC)
    settings = Settings(env="test")
    print(
        f"archive bench, {started:%Y-%m-%d %H:%M} UTC: {args.cases} ended cases (and {args.later} later ones) "
        f"on {args.backend}, batches of {args.batch}"
    )
    with tempfile.TemporaryDirectory(prefix="rongtuk-archive-") as tmp:
        url = await scratch_database(args.backend, args.pg_server, PG_DATABASE, Path(tmp))
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            data_converter=data_converter(settings),
            dev_server_extra_args=["--log-level", "error"],
            search_attributes=search_attributes.ALL,
        )
        try:
            await asyncio.to_thread(upgrade, url)
            db = Database(url)
            try:
                await seed(db, settings, args.cases, args.later)
                async with db.sessions() as session:
                    rows = {
                        t.name: int(await session.scalar(select(func.count()).where(t.c.case_id < "RT-2")) or 0)
                        for t in CASE_TABLES
                    }
                n = args.cases
                figures = {"read_alone": await timed("read alone (baseline)", n, read_alone(db, args.batch))}
                report = None

                async def archive() -> int:
                    nonlocal report
                    report = await write_archive(
                        db, env.client, out_dir=Path(tmp) / "out", cutoff=CUTOFF, revision="bench", batch=args.batch
                    )
                    return len(report.cases)

                figures["archive"] = await timed("archive (write, check)", n, archive())
                assert report is not None and len(report.cases) == n, "every seeded case archived"
                figures["delete"] = await timed("delete", n, delete_archived(db, report.path, batch=args.batch))
                figures["restore"] = await timed("restore", n, restore_archive(db, report.path))
                size = report.path.stat().st_size
            finally:
                await db.dispose()
        finally:
            await env.shutdown()
            if args.backend == "postgresql":
                await drop_database(args.pg_server, PG_DATABASE)
    base = figures["read_alone"]["seconds"]
    ratios = {k: round(v["seconds"] / base, 2) for k, v in figures.items() if k != "read_alone"}
    print(f"\n  time ÷ read alone: {ratios}")
    print(
        f"  archive file: {size / 1e6:.1f} MB, {size / n / 1024:.2f} KiB a case; rows a case: "
        f"{ {k: round(v / n, 1) for k, v in rows.items() if v} }"
    )
    return write_report(
        args,
        started,
        backend=args.backend,
        rows=rows,
        figures=figures,
        time_over_read_alone=ratios,
        file_bytes=size,
        file_bytes_per_case=round(size / n),
    )


if __name__ == "__main__":
    asyncio.run(main())
