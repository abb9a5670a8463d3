"""The delivery outbox's claim and the attempts counter, with a year's worth of sent rows kept beside them.

    .venv/bin/python -m bench.outbox_bench [--rows 1000000] [--pending 300] [--runs 20]
                                           [--backends sqlite postgresql] [--out bench/results/outbox.json]

Sent notifications and the delivery log are kept for good (about 15 rows a case each). A scratch database at
the schema's head gets ``--rows`` sent notifications, then ``--pending`` due ones, and ``--rows`` log rows.
Then, each ``--runs`` times:

- **the claim as the dispatcher sends it** (``delivery.outbox.claim_due``: one UPDATE of the oldest due rows,
  rolled back after), against **the claim before migration 0017** (the same UPDATE without the constant
  predicate that lets the partial index serve it, kept here as the baseline);
- **the attempts counter** as ``/metrics`` reads it (the sum of the tally the database keeps, migration
  0018), against **the count of the log** it read before, and all the delivery figures of a scrape
  (``delivery.queries.delivery_collector``);
- **the staff inbox's first page** for an agency (``delivery.queries.staff_inbox_rows``: each recipient's newest
  rows from ``ix_notifications_recipient``, counted to 10,000), against **the inbox before migration 0020**
  (its count and page as they were, measured last, with the index dropped);
- a primary-key lookup, the floor.

SQLite is measured with statistics (after ``ANALYZE``) and without them, as the application leaves it.
PostgreSQL is measured with its custom plans, and with ``plan_cache_mode = force_generic_plan``: the plan a
prepared statement can settle on after five runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update

from bench.board_bench import DEFAULT_PG_SERVER
from bench.machine import machine_info
from bench.overdue_bench import time_async
from bench.scratch import drop_database, scratch_database
from config.settings import Settings
from delivery.outbox import PENDING, SENDING, claim_due
from delivery.queries import delivery_collector, staff_inbox_rows
from store import models
from store.db import Database
from store.migrate import upgrade

N, A, T = models.Notification, models.DeliveryAttempt, models.DeliveryTally
PG_DATABASE = "rongtuk_bench_outbox"
CASE_ID = "RT-BENCH-OUTBOX"


def _before_0017(now: datetime, limit: int) -> Any:
    """The claim's UPDATE as it was before migration 0017: the same rows, no constant predicate."""
    due = (
        select(N.id)
        .where(
            or_(
                and_(N.status == PENDING, or_(N.next_attempt_at.is_(None), N.next_attempt_at <= now)),
                and_(N.status == SENDING, N.claimed_until < now),
            )
        )
        .order_by(N.id)
        .limit(limit)
    )
    return (
        update(N)
        .where(N.id.in_(due.scalar_subquery()))
        .values(status=SENDING, claim_token="bench", attempts=N.attempts + 1)
        .returning(N.id)
        .execution_options(synchronize_session=False)
    )


# The sent rows' recipients: one in 15 to the centre's supervisors, one in 15 to an agency (BMA), the rest to the
# complainant (about what a case sends: the staff inbox reads the first two).
_AUDIENCE = "CASE x % 15 WHEN 0 THEN 'supervisor' WHEN 1 THEN 'agency' ELSE 'complainant' END"
_RECIPIENT = "CASE x % 15 WHEN 0 THEN 'supervisors' WHEN 1 THEN 'BMA' ELSE 'complainant' END"
STAFF = ["BMA", "BMA:head"]

_LOAD_SQLITE = [
    """WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :rows)
    INSERT INTO notifications (case_id, seq, event, state, audience, channel, recipient, created_at, status,
                               attempts, sent_at, gateway)
    SELECT :case, x, 'screen', 'screening', """
    + _AUDIENCE
    + ", 'sms', "
    + _RECIPIENT
    + """, :at, 'sent', 1, :at, 'sms' FROM g""",
    """WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :pending)
    INSERT INTO notifications (case_id, seq, event, state, audience, channel, recipient, created_at, status,
                               attempts)
    SELECT :case, :rows + x, 'screen', 'screening', 'complainant', 'sms', 'complainant', :at, 'pending', 0 FROM g""",
    """WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :rows)
    INSERT INTO delivery_log (case_id, seq, audience, channel, gateway, attempt, at, ok, result, status_code,
                              duration_ms)
    SELECT :case, x, 'complainant', 'sms', CASE WHEN x % 3 = 0 THEN 'email' ELSE 'sms' END, 1, :at, 1,
           CASE WHEN x % 50 = 0 THEN 'retry' ELSE 'sent' END, 200, 12 FROM g""",
]
_LOAD_POSTGRES = [
    """INSERT INTO notifications (case_id, seq, event, state, audience, channel, recipient, created_at, status,
                                  attempts, sent_at, gateway)
    SELECT :case, x, 'screen', 'screening', """
    + _AUDIENCE
    + ", 'sms', "
    + _RECIPIENT
    + """, :at, 'sent', 1, :at, 'sms'
    FROM generate_series(1, :rows) x""",
    """INSERT INTO notifications (case_id, seq, event, state, audience, channel, recipient, created_at, status,
                                  attempts)
    SELECT :case, :rows + x, 'screen', 'screening', 'complainant', 'sms', 'complainant', :at, 'pending', 0
    FROM generate_series(1, :pending) x""",
    """INSERT INTO delivery_log (case_id, seq, audience, channel, gateway, attempt, at, ok, result, status_code,
                                 duration_ms)
    SELECT :case, x, 'complainant', 'sms', CASE WHEN x % 3 = 0 THEN 'email' ELSE 'sms' END, 1, :at, true,
           CASE WHEN x % 50 = 0 THEN 'retry' ELSE 'sent' END, 200, 12 FROM generate_series(1, :rows) x""",
]


async def _load(db: Database, *, rows: int, pending: int, now: datetime) -> float:
    started = time.perf_counter()
    async with db.session() as s:
        s.add(
            models.Case(
                case_id=CASE_ID,
                tracking_code="BENCHOUTBOX",
                workflow_id=f"complaint-{CASE_ID}",
                status="screening",
                channel="web",
                description="ไฟถนนดับ",
                preferred_channels=["sms"],
                received_at=now,
                updated_at=now,
            )
        )
    at = now if not db.is_sqlite else now.replace(tzinfo=None).isoformat(sep=" ")
    for statement in _LOAD_SQLITE if db.is_sqlite else _LOAD_POSTGRES:
        async with db.session() as s:
            await s.execute(text(statement), {"rows": rows, "pending": pending, "case": CASE_ID, "at": at})
    return time.perf_counter() - started


async def _time(runs: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float | int]:
    # One warm-up: the statement built and prepared, the pages read once.
    return (await time_async(call, runs=runs, warmup=1)).as_dict()


async def _measure(db: Database, settings: Settings, *, runs: int, now: datetime, generic: bool) -> dict[str, Any]:
    async def in_session(work: Callable[[Any], Awaitable[Any]]) -> Any:
        async with db.sessions() as s:
            if generic:
                await s.execute(text("SET plan_cache_mode = force_generic_plan"))
            try:
                return await work(s)
            finally:
                await s.rollback()

    async def claim() -> None:
        async def work(s: Any) -> None:
            ids = await claim_due(
                s, N, token=str(uuid.uuid4()), now=now, settings=settings, skip_locked=not db.is_sqlite
            )
            assert len(ids) == settings.delivery_batch_size

        await in_session(work)

    async def claim_before() -> None:
        async def work(s: Any) -> None:
            ids = list((await s.execute(_before_0017(now, settings.delivery_batch_size))).scalars())
            assert len(ids) == settings.delivery_batch_size

        await in_session(work)

    async def tally() -> None:
        async def work(s: Any) -> None:
            found = (await s.execute(select(T.gateway, T.result, func.sum(T.n)).group_by(T.gateway, T.result))).all()
            assert found

        await in_session(work)

    async def collector() -> None:
        async def work(s: Any) -> None:
            assert (await delivery_collector(s, now=now))._attempts

        await in_session(work)

    async def count_log() -> None:
        async def work(s: Any) -> None:
            found = (await s.execute(select(A.gateway, A.result, func.count()).group_by(A.gateway, A.result))).all()
            assert found

        await in_session(work)

    async def inbox() -> None:
        async def work(s: Any) -> None:
            found = await staff_inbox_rows(s, recipients=STAFF, page=1, page_size=25)
            assert len(found.rows) == 25 and found.total > 0

        await in_session(work)

    async def pk() -> None:
        await in_session(lambda s: s.get(N, 1))

    return {
        "pk_lookup": await _time(runs, pk),
        "claim": await _time(runs, claim),
        "claim_before_0017": await _time(runs, claim_before),
        "attempts_counter": await _time(runs, tally),
        "attempts_counted_from_the_log": await _time(runs, count_log),
        "delivery_collector": await _time(runs, collector),
        "staff_inbox": await _time(runs, inbox),
    }


def _inbox_before_0020() -> tuple[Any, Any]:
    """The staff inbox's statements before migration 0020: its count and its first page, one query each over
    the recipients with ``IN``, ordered by date."""
    where = [N.audience != "complainant", N.recipient.in_(STAFF)]
    count = select(func.count()).select_from(N).where(*where)
    page = (
        select(N, models.Case)
        .join(models.Case, models.Case.case_id == N.case_id)
        .where(*where)
        .order_by(N.created_at.desc(), N.id.desc())
        .limit(25)
    )
    return count, page


async def _measure_inbox_before(db: Database, runs: int) -> dict[str, Any]:
    """The staff inbox as it was (the index dropped, its statements as they were): the baseline."""
    async with db.session() as s:
        await s.execute(text("DROP INDEX ix_notifications_recipient"))
    count, page = _inbox_before_0020()

    async def before() -> None:
        async with db.sessions() as s:
            assert int((await s.execute(count)).scalar_one()) > 0
            assert len((await s.execute(page)).all()) == 25

    return {"staff_inbox_before_0020": await _time(runs, before)}


async def run_backend(backend: str, *, rows: int, pending: int, runs: int, pg_server: str) -> dict[str, Any]:
    settings = Settings()
    now = datetime.now(UTC) + timedelta(seconds=1)
    with tempfile.TemporaryDirectory(prefix="rongtuk-outbox-") as tmp:
        url = await scratch_database(backend, pg_server, PG_DATABASE, Path(tmp))
        try:
            await asyncio.to_thread(upgrade, url)
            db = Database(url)
            load_s = await _load(db, rows=rows, pending=pending, now=now)
            async with db.session() as s:
                await s.execute(text("ANALYZE"))
                version = sqlite3.sqlite_version
                if not db.is_sqlite:
                    version = str((await s.execute(text("SHOW server_version"))).scalar_one()).split()[0]
            out: dict[str, Any] = {"backend": backend, "version": version, "load_s": round(load_s, 1)}
            if backend == "sqlite":
                out["with_statistics"] = await _measure(db, settings, runs=runs, now=now, generic=False)
                async with db.session() as s:
                    await s.execute(text("DROP TABLE sqlite_stat1"))
                await db.dispose()  # statistics are read when a connection opens
                db = Database(url)
                out["without_statistics"] = await _measure(db, settings, runs=runs, now=now, generic=False)
            else:
                out["custom_plans"] = await _measure(db, settings, runs=runs, now=now, generic=False)
                out["generic_plans"] = await _measure(db, settings, runs=runs, now=now, generic=True)
            # Last, as it drops the index the staff inbox reads now.
            out["baseline"] = await _measure_inbox_before(db, runs)
            await db.dispose()
            return out
        finally:
            if backend != "sqlite":
                await drop_database(pg_server, PG_DATABASE)


_ROWS = (
    ("pk_lookup", "primary-key lookup (floor)"),
    ("claim", "claim, as sent now"),
    ("claim_before_0017", "claim before 0017 (baseline)"),
    ("attempts_counter", "attempts: sum of the tally"),
    ("attempts_counted_from_the_log", "attempts: count of the log (baseline)"),
    ("delivery_collector", "all delivery figures of a scrape"),
    ("staff_inbox", "staff inbox page 1 (BMA), as now"),
)


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/outbox.json"))
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    backends = []
    print(f"outbox bench, {started:%Y-%m-%d %H:%M} UTC: {args.rows:,} sent rows, {args.pending} due, {args.runs} runs")
    for backend in args.backends:
        result = await run_backend(
            backend, rows=args.rows, pending=args.pending, runs=args.runs, pg_server=args.pg_server
        )
        backends.append(result)
        modes = [k for k in ("with_statistics", "without_statistics", "custom_plans", "generic_plans") if k in result]
        print(f"\n{backend} {result['version']}: loaded in {result['load_s']} s")
        print(f"  {'':<36}" + "".join(f"{m.replace('_', ' '):>28}" for m in modes))
        for key, label in _ROWS:
            cells = "".join(
                f"{result[m][key]['p50_ms']:>14.2f} / {result[m][key]['p99_ms']:>8.2f} ms".rjust(28) for m in modes
            )
            print(f"  {label:<36}{cells}")
        before = result["baseline"]["staff_inbox_before_0020"]
        print(f"  {'staff inbox before 0020 (baseline)':<36}{before['p50_ms']:>14.2f} / {before['p99_ms']:>8.2f} ms")
    out = {
        "date": started.isoformat(),
        "machine": machine_info(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "backends": backends,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out} (p50 / p99)")
    return out


if __name__ == "__main__":
    asyncio.run(main())
