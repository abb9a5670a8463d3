"""How a transition is written to the read model on PostgreSQL: at once (two round trips, as the worker writes
now) against the transaction it was before (the baseline), in one process, alternating.

    .venv/bin/python -m bench.record_bench [--concurrency 1 8] [--blocks 6] [--cases 40]
                                           [--out bench/results/record.json]

The transitions are the recorded golden cases' own (``tests/workflows/histories``, those recorded since their
writes answer with their records, ``activities.rebuild.records_in_history``), given new case
numbers for every block, and written in each case's order as the worker writes them: ``record_transition``,
which takes ``write_transition_at_once``, against ``write_transition`` in a transaction (the general path). A
filing takes the general path both ways. ``--concurrency`` cases are written at once, each transition after the
one before it, for ``--blocks`` blocks of ``--cases`` cases a way, alternating (which one goes first alternates
too), after a block of each as warm-up, on a scratch database at the schema's head. Reported: latency per
transition, CPU per transition of this process (the worker's share) and of PostgreSQL's processes
(``bench.lifecycle_bench.postgres_cpu``; keep ``--concurrency`` within the pool's 10 connections).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from activities.projection import ReadModelActivities, record_channels, write_transition
from activities.rebuild import records_in_history
from bench.alternating import alternate, print_runs
from bench.machine import write_report
from bench.scratch import drop_database, scratch_database
from config.logging import configure_logging
from config.settings import Settings
from config.temporal import data_converter
from store.db import Database
from store.migrate import upgrade
from tests.workflows.histories import recorded
from workflows.models import TransitionRecord

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "rongtuk_bench_record"
WAYS = ("at_once", "transaction")


async def golden_records(settings: Settings) -> list[list[TransitionRecord]]:
    """Every golden case whose history holds all its records (recorded since v7), in order."""
    converter = data_converter(settings)
    cases = []
    for path in sorted(recorded()):
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        records = await records_in_history(converter, [history])
        if records:
            cases.append(records)
    return cases


def renumbered(records: list[TransitionRecord], case_id: str) -> list[TransitionRecord]:
    """The same transitions for another case number (and tracking code): rows of a case of their own. Each
    carries the complainant's channels, as the workflow's records do now (some golden ones were recorded
    before they did, and would take the general path both ways)."""
    tracking = uuid.uuid4().hex[:10].upper()
    channels = record_channels(records[0])
    return [
        replace(
            rec,
            event=replace(rec.event, case_id=case_id),
            case=replace(rec.case, case_id=case_id, tracking_code=tracking),
            channels=rec.channels if rec.channels is not None else channels,
        )
        for rec in records
    ]


async def _measure(
    db: Database, golden: list[list[TransitionRecord]], *, concurrency: int, blocks: int, cases: int
) -> dict[str, Any]:
    activities = ReadModelActivities(db)

    async def transaction(rec: TransitionRecord) -> None:
        async with db.session() as session:
            await write_transition(session, rec)

    write = {"at_once": activities.record_transition, "transaction": transaction}

    async def block(way: str) -> list[float]:  # seconds per transition
        gate = asyncio.Semaphore(concurrency)
        times: list[float] = []

        async def one(records: list[TransitionRecord]) -> None:
            async with gate:
                for rec in records:
                    started = time.perf_counter()
                    await write[way](rec)
                    times.append(time.perf_counter() - started)

        batch = [renumbered(golden[i % len(golden)], f"RT-BENCH-{uuid.uuid4().hex[:12]}") for i in range(cases)]
        await asyncio.gather(*(one(records) for records in batch))
        return times

    return await alternate(WAYS, block, blocks=blocks, unit="transition")


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--cases", type=int, default=40, help="cases a block")
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/record.json"))
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")  # a line per transition would be timed with it
    started = datetime.now(UTC)
    settings = Settings(env="test")
    golden = await golden_records(settings)
    per_case = sum(len(r) for r in golden) / len(golden)
    print(
        f"record bench, {started:%Y-%m-%d %H:%M} UTC: {len(golden)} golden cases ({per_case:.1f} transitions "
        f"each), {args.blocks} blocks of {args.cases} cases a way"
    )
    with tempfile.TemporaryDirectory(prefix="rongtuk-record-") as tmp:
        url = await scratch_database("postgresql", args.pg_server, PG_DATABASE, Path(tmp))
        try:
            await asyncio.to_thread(upgrade, url)
            db = Database(url, writer=True)
            runs = {}
            try:
                for concurrency in args.concurrency:
                    runs[str(concurrency)] = await _measure(
                        db, golden, concurrency=concurrency, blocks=args.blocks, cases=args.cases
                    )
            finally:
                await db.dispose()
        finally:
            await drop_database(args.pg_server, PG_DATABASE)
    print_runs(runs, WAYS, "transition")
    return write_report(args, started, golden_cases=len(golden), transitions_per_case=round(per_case, 2), runs=runs)


if __name__ == "__main__":
    asyncio.run(main())
