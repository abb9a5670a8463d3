"""Faults outside Temporal while cases run: PostgreSQL unreachable for a while, an SMS gateway that fails for a
while. Afterwards every case has reached its state, every transition has exactly one timeline row, and every
text message went out exactly once.

Separate processes (dev server, worker) on 127.0.0.1. Bounded in count and time, and sized by environment
variables so that ``make test`` stays short and ``make test-faults`` can go bigger:
``RONGTUK_FAULT_INFRA_CASES`` (20; 40 in make test-faults), ``RONGTUK_FAULT_PG_OUTAGE_SECONDS`` (10; 30 in make
test-faults),
``RONGTUK_FAULT_GATEWAY_OUTAGE_SECONDS`` (10). PostgreSQL itself is never stopped: the worker reaches it through
a TCP proxy in this process, and the proxy is what is cut.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client

from config.settings import Settings
from config.temporal import data_converter
from tests.e2e.test_faults import STEPS, Processes, _drive, show_logs
from tests.tcp_proxy import TcpProxy
from workflows.process import State

pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("RONGTUK_FAULT_INFRA_CASES", "20"))
PG_OUTAGE = float(os.environ.get("RONGTUK_FAULT_PG_OUTAGE_SECONDS", "10"))
GATEWAY_OUTAGE = float(os.environ.get("RONGTUK_FAULT_GATEWAY_OUTAGE_SECONDS", "10"))
CONCURRENCY = 10


@pytest.fixture
def processes(tmp_path: Path, database_url: str) -> Iterator[Processes]:
    p = Processes(tmp_path, database_url)
    try:
        p.start_server()
        yield p  # each test starts the worker with its own settings
    finally:
        p.group.stop()
        show_logs(p.tmp)


async def _run_cases(processes: Processes, prefix: str, fault: object) -> list[str]:
    """Drive CASES cases through the main path while ``fault()`` runs; the ids, once all are closed."""
    settings = Settings(env="test")
    client = await Client.connect(f"127.0.0.1:{processes.port}", data_converter=data_converter(settings))

    async def client_of() -> Client:
        return client

    # The last ten characters become the tracking code: unique per test and run.
    ids = [f"{prefix}-{prefix[3]}{os.getpid() % 100_000:05d}{n:04d}" for n in range(CASES)]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(case_id: str) -> None:
        async with gate:
            await _drive(client_of, case_id)

    await asyncio.wait_for(asyncio.gather(fault(), *(one(c) for c in ids)), timeout=180 + 3 * CASES + PG_OUTAGE)  # type: ignore[operator]
    return ids


async def _assert_whole(database_url: str, prefix: str, ids: list[str]) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            like = {"p": f"{prefix}-%"}
            statuses = dict(
                (await conn.execute(text("SELECT case_id, status FROM cases WHERE case_id LIKE :p"), like)).all()
            )
            events = (
                await conn.execute(
                    text("SELECT case_id, seq, count(*) FROM case_events WHERE case_id LIKE :p GROUP BY case_id, seq"),
                    like,
                )
            ).all()
            duplicates = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE case_id LIKE :p "
                        "GROUP BY case_id, seq, audience, channel, recipient HAVING count(*) > 1) AS d"
                    ),
                    like,
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert {c: statuses.get(c) for c in ids} == dict.fromkeys(ids, State.CLOSED.value)
    per_case: dict[str, list[int]] = {}
    for case_id, seq, n in events:
        assert n == 1, f"{case_id} transition {seq} recorded {n} times"
        per_case.setdefault(case_id, []).append(seq)
    assert all(sorted(per_case[c]) == list(range(1, len(STEPS) + 2)) for c in ids)
    assert duplicates == 0


async def test_cases_come_through_postgresql_unreachable_for_a_while(processes: Processes, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the read model is SQLite here: no connection to drop (set RONGTUK_TEST_DATABASE_URL)")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    processes.env["RONGTUK_DATABASE_URL"] = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False
    )
    processes.start_worker()
    cut_at: list[float] = []

    async def outage() -> None:
        await asyncio.sleep(2.0)
        cut_at.append(time.monotonic())
        proxy.cut()
        await asyncio.sleep(PG_OUTAGE)
        proxy.restore()

    try:
        ids = await _run_cases(processes, "RT-PGCUT", outage)
    finally:
        await proxy.close()
    # The outage struck while cases were still running, and they came through it.
    assert cut_at and proxy.accepted > 0
    await _assert_whole(database_url, "RT-PGCUT", ids)


async def test_text_messages_go_out_once_after_the_gateway_fails_for_a_while(
    processes: Processes, database_url: str, sms_gateway: dict[str, Any]
) -> None:
    sms_gateway["up"] = False  # down from the start, until the outage below has lasted its time
    processes.env |= {
        "RONGTUK_DELIVERY_IN_WORKER": "true",
        "RONGTUK_SMS_GATEWAY_URL": f"http://127.0.0.1:{sms_gateway['port']}/sms",
        "RONGTUK_DELIVERY_POLL_SECONDS": "0.5",
        "RONGTUK_DELIVERY_BACKOFF_SECONDS": "1",
        "RONGTUK_DELIVERY_BACKOFF_MAX_SECONDS": "2",
        "RONGTUK_DELIVERY_MAX_ATTEMPTS": "50",
        "RONGTUK_GATEWAY_TIMEOUT_SECONDS": "5",
    }
    processes.start_worker()

    async def outage() -> None:
        # Down from the start; the outage is counted from the first message it turns away.
        for _ in range(600):
            if sms_gateway["refused"] > 0:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(GATEWAY_OUTAGE)
        sms_gateway["up"] = True

    ids = await _run_cases(processes, "RT-SMSCUT", outage)
    await _assert_whole(database_url, "RT-SMSCUT", ids)

    engine = create_async_engine(database_url)
    try:
        rows: list[tuple[int, str]] = []
        for _ in range(240):  # the dispatcher drains the backlog: bounded wait, not a timing assertion
            async with engine.connect() as conn:
                rows = [
                    (int(i), str(s))
                    for i, s in (
                        await conn.execute(
                            text(
                                "SELECT id, status FROM notifications WHERE case_id LIKE 'RT-SMSCUT-%' "
                                "AND channel = 'sms'"
                            )
                        )
                    ).all()
                ]
            if rows and all(s == "sent" for _, s in rows):
                break
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    assert sms_gateway["refused"] > 0, "the gateway was never down while messages were due"
    assert rows and {s for _, s in rows} == {"sent"}
    # One text per notification row (per transition the complainant hears of), none twice. The dispatcher
    # drains the whole outbox, so texts other tests left pending in a shared database go out too: once each.
    accepted: dict[str, int] = sms_gateway["accepted"]
    ours = {str(i) for i, _ in rows}
    assert {k: v for k, v in accepted.items() if k in ours} == dict.fromkeys(ours, 1)
    assert set(accepted.values()) <= {1}, "no text went out twice"
