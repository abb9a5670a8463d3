"""Two API replicas and two workers on one Temporal server and one read model, as a deployment that has outgrown one
machine runs them (docs/operations.md, "Workers, API replicas, task queues"), with one worker SIGKILLed mid-run.

Each complaint is filed over HTTP through one replica and every action on it is sent through the other, so the
intake relays (one in each API and each worker), the update-with-start of a case's first action and the two
workers' dispatchers all meet the same rows. Afterwards: every complaint is one case and is closed, each
transition has exactly one timeline row, no notification is recorded twice, and every text message reached the
SMS gateway (a real HTTP server on 127.0.0.1, counting by Idempotency-Key) exactly once.

Bounded in count (``RONGTUK_REPLICA_CASES``, 12) and time. Runs on SQLite (the file shared by every process, as
``rongtuk dev`` shares it) and on PostgreSQL with ``RONGTUK_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cli.devserver import ProcessGroup, start_listening, temporal_command
from tests.e2e.test_faults import show_logs
from tests.e2e.test_separate_processes import PASSWORD, add_user, written
from workflows.process import State

pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("RONGTUK_REPLICA_CASES", "12"))
IN_FLIGHT = 6
LEASE_SECONDS = 10
BATCH = 10
WORKERS = ("worker-a", "worker-b")
APIS = ("api-a", "api-b")
EVENTS = ["filed", "screen", "accept", "agency_accept", "respond", "close"]


class Replicas:
    """The dev server, two workers and two APIs, each a process of its own with its own log."""

    def __init__(self, tmp: Path, database_url: str, sms_port: int) -> None:
        self.tmp = tmp
        self.group = ProcessGroup()
        self.api_ports: list[int] = []
        self.env = {
            "RONGTUK_ENV": "test",
            "RONGTUK_DATABASE_URL": database_url,
            "RONGTUK_DATA_DIR": str(tmp),
            "RONGTUK_TASK_QUEUE": "rongtuk-replicas",
            "RONGTUK_LOG_FORMAT": "json",
            "RONGTUK_SMS_GATEWAY_URL": f"http://127.0.0.1:{sms_port}/sms",
            "RONGTUK_DELIVERY_POLL_SECONDS": "0.5",
            "RONGTUK_DELIVERY_BACKOFF_SECONDS": "1",
            "RONGTUK_DELIVERY_BACKOFF_MAX_SECONDS": "2",
            "RONGTUK_GATEWAY_TIMEOUT_SECONDS": "5",
            # A row the killed worker had claimed is taken over once its lease runs out; a round is a batch.
            "RONGTUK_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            "RONGTUK_DELIVERY_BATCH_SIZE": str(BATCH),
        }

    def start(self) -> None:
        _, port = start_listening(
            self.group,
            "temporal",
            lambda port: temporal_command(db_file=self.tmp / "temporal.db", port=port, ui_port=None),
            log=self.tmp / "temporal.log",
        )
        self.env["RONGTUK_TEMPORAL_ADDRESS"] = f"127.0.0.1:{port}"
        for name in WORKERS:
            self.start_worker(name)
        for name in APIS:
            _, api_port = start_listening(
                self.group,
                name,
                lambda port: [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
                env=self.env,
                log=self.tmp / f"{name}.log",
            )
            self.api_ports.append(api_port)

    def start_worker(self, name: str) -> None:
        self.group.start(name, [sys.executable, "-m", "worker"], env=self.env, log=self.tmp / f"{name}.log")


@pytest.fixture
async def sms_gateway() -> AsyncIterator[dict[str, Any]]:
    """An SMS gateway on 127.0.0.1 that, as real ones do, sends a message once per Idempotency-Key: ``sent`` has
    the keys it sent, ``repeated`` how often each key came again (answered 200, not sent again)."""
    state: dict[str, Any] = {"sent": set(), "repeated": {}}

    async def sms(request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("Idempotency-Key", "")
        if key in state["sent"]:
            state["repeated"][key] = state["repeated"].get(key, 0) + 1
        state["sent"].add(key)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/sms", sms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state["port"] = runner.addresses[0][1]
    yield state
    await runner.cleanup()


@pytest.fixture
def replicas(tmp_path: Path, database_url: str, sms_gateway: dict[str, Any]) -> Iterator[Replicas]:
    r = Replicas(tmp_path, database_url, sms_gateway["port"])
    try:
        r.start()
        yield r
    finally:
        r.group.stop()
        show_logs(tmp_path, lines=40)


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """POST as a careful client does: one Idempotency-Key for all its tries, a 503 or 429 tried again after its
    Retry-After, a 202 followed to its result. Bounded."""
    headers = headers | {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(90):
        try:
            response = await client.post(path, json=body, headers=headers)
        except httpx.TransportError:  # a replica busy past the timeout: the same key again
            await asyncio.sleep(1)
            continue
        if response.status_code not in (429, 503):
            break
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    if response.status_code == 202:
        for _ in range(120):
            state = (await client.get(response.headers["Location"], headers=headers)).json()["state"]
            if state != "pending":
                break
            await asyncio.sleep(0.5)
        assert state == "applied", f"{path}: {state}"
        response = await client.post(path, json=body, headers=headers)  # the same key: the applied answer
    assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
    return response.json()  # type: ignore[no-any-return]


async def _sign_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _rows(database_url: str, case_ids: list[str]) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            ours = {"p": "RT-%"}
            rows = (await conn.execute(text("SELECT case_id, status FROM cases WHERE case_id LIKE :p"), ours)).all()
            statuses = {str(case_id): str(status) for case_id, status in rows}
            events = (
                await conn.execute(text("SELECT case_id, seq, event FROM case_events ORDER BY case_id, seq"))
            ).all()
            notes = (
                await conn.execute(
                    text("SELECT id, case_id, seq, audience, channel, recipient, status FROM notifications")
                )
            ).all()
    finally:
        await engine.dispose()
    wanted = set(case_ids)
    return {
        "statuses": {c: s for c, s in statuses.items() if c in wanted},
        "events": [e for e in events if e.case_id in wanted],
        "notifications": [n for n in notes if n.case_id in wanted],
    }


async def test_two_apis_and_two_workers_one_killed_deliver_each_case_and_message_once(
    replicas: Replicas, database_url: str, sms_gateway: dict[str, Any]
) -> None:
    add_user(replicas.env, "officer-replicas", "--role", "officer")
    add_user(replicas.env, "dopa-replicas", "--role", "agency", "--agency", "DOPA")
    apis = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) for port in replicas.api_ports]
    try:
        officer = [await _sign_in(api, "officer-replicas") for api in apis]
        dopa = [await _sign_in(api, "dopa-replicas") for api in apis]
        gate = asyncio.Semaphore(IN_FLIGHT)
        accepted = asyncio.Event()
        accepted_cases: set[str] = set()
        case_ids: list[str] = []
        closed: list[str] = []
        closed_at_kill: list[int] = []

        async def one(n: int) -> None:
            filer, actor = n % 2, (n + 1) % 2  # filed through one replica, acted on through the other
            async with gate:
                receipt = await _post(
                    apis[filer],
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
                await _post(apis[actor], f"{path}/screen", {}, officer[actor])
                await _post(
                    apis[actor], f"{path}/accept", {"category": "government.tax", "agencies": ["DOPA"]}, officer[actor]
                )
                accepted_cases.add(case_id)
                if len(accepted_cases) >= max(1, CASES // 3):
                    accepted.set()
                await _post(apis[filer], f"{path}/agency_accept", {}, dopa[filer])
                await _post(
                    apis[actor],
                    f"{path}/respond",
                    {"outcome": "upheld", "response": "ซ่อมไฟถนนแล้ว"},
                    dopa[actor],
                )
                await _post(apis[filer], f"{path}/close", {}, officer[filer])
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
            await api.aclose()

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
    assert set(texts) <= sms_gateway["sent"], "every text reached the gateway"
    # A text goes out again, under its own key, only when a dispatcher died between sending it and recording
    # it: at most one round of the killed worker's. Dispatchers that raced for rows would repeat many more.
    repeats = {key: n for key, n in sms_gateway["repeated"].items() if key in texts}
    assert sum(repeats.values()) <= BATCH, f"texts sent again: {repeats}"
    logs = "".join(p.read_text(errors="replace") for p in replicas.tmp.glob("*.log"))
    assert not any(form in logs for form in written("ผู้ร้อง", "0890000001", "+66890000001"))
