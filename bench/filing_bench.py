"""How a complaint is written on PostgreSQL: in one statement (as filed now) against the one transaction it
was before (the baseline), in one process, alternating.

    .venv/bin/python -m bench.filing_bench [--concurrency 1 8] [--blocks 10] [--per-block 100]
                                           [--out bench/results/filing.json]

``api.service.file_complaint`` is called as the API calls it (an Idempotency-Key each, the receipt's dates
computed), with no HTTP and no Temporal: only the write. On PostgreSQL it sends the key's claim, the case and
its outbox row as one statement outside a transaction, one round trip. The baseline is the same function
taking the path SQLite takes (a ``Database`` marked as SQLite): BEGIN, the three INSERTs and COMMIT, five
round trips. For each ``--concurrency``, ``--blocks`` blocks of ``--per-block`` filings alternate between the
two (which one goes first alternates too), after a block of each as warm-up, on a scratch database at the
schema's head. Reported: latency per filing, CPU per filing of this process (the API's share) and of
PostgreSQL's processes (``bench.lifecycle_bench.postgres_cpu``: every ``postgres`` process on the machine; keep
``--concurrency`` within the pool's 10 connections, as a connection past them is closed when handed back and
its backend's CPU is then no longer counted).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activities.sla import SlaActivities
from api.schemas import ComplaintIn
from api.service import IntakeDesk, file_complaint
from bench.alternating import alternate, print_runs
from bench.machine import write_report
from bench.scratch import drop_database, scratch_database
from config.logging import configure_logging
from config.settings import Settings
from intake.idempotency import Idempotency
from sla.policy import load_policy
from store.db import Database
from store.migrate import upgrade
from workflows.process import Actor, Role

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "rongtuk_bench_filing"
WAYS = ("one_statement", "transaction")
_COMPLAINT = {
    "channel": "web",
    "description": "ไฟถนนในซอยดับมาสองสัปดาห์ ตอนกลางคืนมืดมากและอันตราย",
    "complainant": {"name": "สมหญิง รักดี", "phone": "081-234-5678", "preferred_channels": ["sms", "web"]},
    "location": {"province": "Bangkok"},
}


async def _measure(desks: dict[str, IntakeDesk], *, concurrency: int, blocks: int, per_block: int) -> dict[str, Any]:
    complaint = ComplaintIn.model_validate(_COMPLAINT)
    actor = Actor("citizen:web", Role.CITIZEN)

    async def block(way: str) -> list[float]:  # seconds
        gate = asyncio.Semaphore(concurrency)
        times: list[float] = []

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                await file_complaint(
                    desks[way], complaint=complaint, actor=actor, idempotency=Idempotency("bench", str(uuid.uuid4()))
                )
                times.append(time.perf_counter() - started)

        await asyncio.gather(*(one() for _ in range(per_block)))
        return times

    return await alternate(WAYS, block, blocks=blocks, unit="filing")


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per-block", type=int, default=100)
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/filing.json"))
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")  # a line per filing would be timed with it
    started = datetime.now(UTC)
    print(f"filing bench, {started:%Y-%m-%d %H:%M} UTC: {args.blocks} blocks of {args.per_block} a way")
    with tempfile.TemporaryDirectory(prefix="rongtuk-filing-") as tmp:
        url = await scratch_database("postgresql", args.pg_server, PG_DATABASE, Path(tmp))
        try:
            await asyncio.to_thread(upgrade, url)
            settings = Settings(database_url=url, task_queue=f"bench-filing-{uuid.uuid4()}")
            sla = SlaActivities(settings.calendar(), load_policy())
            one, apart = Database(url), Database(url)
            apart.is_sqlite = True  # the baseline: the transaction SQLite files in, on the same PostgreSQL
            desks = {"one_statement": IntakeDesk(one, settings, sla), "transaction": IntakeDesk(apart, settings, sla)}
            runs = {}
            try:
                for concurrency in args.concurrency:
                    runs[str(concurrency)] = await _measure(
                        desks, concurrency=concurrency, blocks=args.blocks, per_block=args.per_block
                    )
            finally:
                await one.dispose()
                await apart.dispose()
        finally:
            await drop_database(args.pg_server, PG_DATABASE)
    print_runs(runs, WAYS, "filing")
    return write_report(args, started, runs=runs)


if __name__ == "__main__":
    asyncio.run(main())
