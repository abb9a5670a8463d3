"""Two API replicas and two workers on one Temporal server and one read model, as a deployment that has outgrown one
machine runs them (docs/operations.md, "Workers, API replicas, task queues"), with one worker SIGKILLed mid-run.

Each complaint is filed over HTTP through one replica and every action on it is sent through the other, so the
intake relays (one in each API and each worker), the update-with-start of a case's first action and the two
workers' dispatchers all meet the same rows. Afterwards: every complaint is one case and is closed, each
transition has exactly one timeline row, no notification is recorded twice, and every text message reached the
SMS gateway (a real HTTP server on 127.0.0.1), sent again under its own key only by a dispatcher killed between
sending and recording it.

Bounded in count (``RONGTUK_REPLICA_CASES``, 12) and time. Runs on SQLite (the file shared by every process, as
``rongtuk dev`` shares it) and on PostgreSQL with ``RONGTUK_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import POOLER
from tests.e2e.test_faults import show_logs
from tests.e2e.test_separate_processes import Stack, add_user, post, sign_in, written
from tests.pgbouncer import pgbouncer
from workflows.process import State

pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("RONGTUK_REPLICA_CASES", "12"))
IN_FLIGHT = 6
LEASE_SECONDS = 10
BATCH = 10
EVENTS = ["filed", "screen", "accept", "agency_accept", "respond", "close"]


@pytest.fixture(params=["direct", "pgbouncer"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str, sms_gateway: dict[str, Any]
) -> Iterator[Stack]:
    """The stack, each process on the database directly, or (PostgreSQL only) every process through a real
    PgBouncer in transaction mode with ``RONGTUK_DATABASE_POOLER=transaction`` and 2 server connections: many
    workers and replicas on few server connections, as docs/operations.md describes."""
    with contextlib.ExitStack() as cleanup:
        url, pooled = database_url, request.param == "pgbouncer"
        if pooled:
            url = cleanup.enter_context(pgbouncer(database_url, tmp_path / "pgbouncer"))
        stack = Stack(tmp_path, url, workers=("worker-a", "worker-b"), apis=("api-a", "api-b"))
        stack.env |= {
            "RONGTUK_DATABASE_POOLER": "transaction" if pooled else POOLER.value,
            "RONGTUK_SMS_GATEWAY_URL": f"http://127.0.0.1:{sms_gateway['port']}/sms",
            "RONGTUK_DELIVERY_POLL_SECONDS": "0.5",
            "RONGTUK_DELIVERY_BACKOFF_SECONDS": "1",
            "RONGTUK_DELIVERY_BACKOFF_MAX_SECONDS": "2",
            "RONGTUK_GATEWAY_TIMEOUT_SECONDS": "5",
            # A row the killed worker had claimed is taken over once its lease runs out; a round is a batch.
            "RONGTUK_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            "RONGTUK_DELIVERY_BATCH_SIZE": str(BATCH),
        }
        try:
            stack.start()
            yield stack
        finally:
            stack.group.stop()
            show_logs(tmp_path, lines=40)


async def _rows(database_url: str, case_ids: list[str]) -> dict[str, Any]:
    """The cases' rows, timelines and notifications, read for these cases only."""
    ours = {"ids": case_ids}
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:

            async def read(sql: str) -> list[Any]:
                statement = text(sql).bindparams(bindparam("ids", expanding=True))
                return list((await conn.execute(statement, ours)).all())

            statuses = await read("SELECT case_id, status FROM cases WHERE case_id IN :ids")
            events = await read(
                "SELECT case_id, seq, event FROM case_events WHERE case_id IN :ids ORDER BY case_id, seq"
            )
            notifications = await read(
                "SELECT id, case_id, seq, audience, channel, recipient, status FROM notifications WHERE case_id IN :ids"
            )
    finally:
        await engine.dispose()
    return {"statuses": {str(c): str(s) for c, s in statuses}, "events": events, "notifications": notifications}


async def test_two_apis_and_two_workers_one_killed_deliver_each_case_and_message_once(
    replicas: Stack, database_url: str, sms_gateway: dict[str, Any]
) -> None:
    run = uuid.uuid4().hex[:8]  # each variant of the stack signs up its own users in the one database
    add_user(replicas.env, f"officer-replicas-{run}", "--role", "officer")
    add_user(replicas.env, f"dopa-replicas-{run}", "--role", "agency", "--agency", "DOPA")
    # Blocking clients, each request in a thread: the gateway runs on this event loop meanwhile.
    apis = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for port in replicas.api_ports]
    try:
        officer = [sign_in(api, f"officer-replicas-{run}") for api in apis]
        dopa = [sign_in(api, f"dopa-replicas-{run}") for api in apis]
        gate = asyncio.Semaphore(IN_FLIGHT)
        accepted = asyncio.Event()
        accepted_cases: set[str] = set()
        case_ids: list[str] = []
        closed: list[str] = []
        closed_at_kill: list[int] = []

        async def send(replica: int, path: str, body: dict[str, object], headers: dict[str, str]) -> Any:
            return (await asyncio.to_thread(post, apis[replica], path, body, headers)).json()

        async def one(n: int) -> None:
            filer, actor = n % 2, (n + 1) % 2  # filed through one replica, acted on through the other
            async with gate:
                receipt = await send(
                    filer,
                    "/api/v1/complaints",
                    {
                        "channel": "hotline",
                        "description": f"ไฟถนนดับหน้าหมู่บ้าน จุดที่ {n} มืดมาหลายคืนแล้ว",
                        "complainant": {
                            "name": "ผู้ร้อง ทดสอบ",
                            "phone": f"089{n:07d}",
                            "preferred_channels": ["sms"],
                        },
                        "location": {"province": "เชียงใหม่"},
                    },
                    officer[filer],
                )
                case_id = receipt["case_id"]
                case_ids.append(case_id)
                path = f"/api/v1/cases/{case_id}/actions"
                await send(actor, f"{path}/screen", {}, officer[actor])
                await send(
                    actor, f"{path}/accept", {"category": "government.tax", "agencies": ["DOPA"]}, officer[actor]
                )
                accepted_cases.add(case_id)
                if len(accepted_cases) >= max(1, CASES // 3):
                    accepted.set()
                await send(filer, f"{path}/agency_accept", {}, dopa[filer])
                await send(actor, f"{path}/respond", {"outcome": "upheld", "response": "ซ่อมไฟถนนแล้ว"}, dopa[actor])
                await send(filer, f"{path}/close", {}, officer[filer])
                closed.append(case_id)

        async def kill_one_worker() -> None:
            await accepted.wait()
            closed_at_kill.append(len(closed))
            replicas.group.stop("worker-a", sig=signal.SIGKILL, timeout=5)
            await asyncio.sleep(5)  # the other worker alone for a while, then the killed one back
            replicas.start_worker("worker-a")

        await asyncio.wait_for(asyncio.gather(kill_one_worker(), *(one(n) for n in range(CASES))), 120 + 10 * CASES)

        rows: dict[str, Any] = {}
        for _ in range(240):  # the dispatchers drain the texts: a bounded wait, not a timing assertion
            rows = await _rows(database_url, case_ids)
            sent = [n.status == "sent" for n in rows["notifications"] if n.channel == "sms"]
            if sent and all(sent):
                break
            await asyncio.sleep(0.5)
    finally:
        for api in apis:
            api.close()

    assert closed_at_kill and closed_at_kill[0] < CASES, "the worker died while cases were still running"
    assert len(set(case_ids)) == CASES
    assert rows["statuses"] == dict.fromkeys(case_ids, State.CLOSED.value)
    timelines: dict[str, list[tuple[int, str]]] = {}
    for e in rows["events"]:
        timelines.setdefault(e.case_id, []).append((e.seq, e.event))
    assert timelines == {c: list(enumerate(EVENTS, start=1)) for c in case_ids}, "one row per transition"
    recorded = [(n.case_id, n.seq, n.audience, n.channel, n.recipient) for n in rows["notifications"]]
    assert len(recorded) == len(set(recorded)), "a notification was recorded twice"
    texts = {str(n.id): n for n in rows["notifications"] if n.channel == "sms"}
    # The complainant hears of every transition by text, once.
    assert sorted((n.case_id, n.seq) for n in texts.values()) == sorted(
        (c, seq) for c in case_ids for seq in range(1, len(EVENTS) + 1)
    )
    assert {n.status for n in texts.values()} == {"sent"}
    accepted_keys: dict[str, int] = sms_gateway["accepted"]
    assert set(texts) <= set(accepted_keys), "every text reached the gateway"
    # A text goes out again, under its own key, only when a dispatcher died between sending it and recording
    # it: at most one round of the killed worker's. Dispatchers that raced for rows would repeat many more.
    repeats = {key: n - 1 for key, n in accepted_keys.items() if key in texts and n > 1}
    assert sum(repeats.values()) <= BATCH, f"texts sent again: {repeats}"
    logs = "".join(p.read_text(errors="replace") for p in replicas.tmp.glob("*.log"))
    assert not any(form in logs for form in written("ผู้ร้อง", "0890000001", "+66890000001"))
    # No request waited out the database timeout for want of a connection (the client would have retried).
    assert '"database_unavailable"' not in logs
