"""Benchmark the whole case lifecycle over the API, with every notification delivered, against two no-op
workflows driven by the same client load shape in the same run.

    .venv/bin/python -m bench.lifecycle_bench [--cases 100] [--concurrency 20] [--warmup 5]
                                              [--backend postgresql|sqlite] [--out bench/results/lifecycle.json]

It starts ``temporal server start-dev`` (a WAL SQLite file, headless, free port), a fresh read model
(PostgreSQL database ``rongtuk_lifecycle_bench`` when PostgreSQL listens on 127.0.0.1:5432, dropped afterwards;
else a SQLite file), and as **separate processes** the API under uvicorn, the real worker (``python -m worker``,
with its notification dispatcher and intake relay) and a no-op worker for the baselines (this module with
``--noop-worker``). In this process: an SMS gateway (HTTP) and an SMTP server on 127.0.0.1 that count what they
receive per notification id, and the clients. Then, each phase ``--warmup`` unmeasured cases and ``--cases``
measured ones, ``--concurrency`` in flight, each case filed and driven through ``screen, accept (DOPA),
agency_accept, respond, close`` one call after the other:

1. **naive**: a no-op workflow with one regular no-op activity per transition (intake and each action's update
   handler run one), no child, no signals; started with ``start_workflow`` and the ``receipt`` update, then
   one ``act`` update per action, from a Temporal client in this process.
2. **same shape**: the same no-op workflow replaying the real case's engine commands per step (local
   activities, activities, the agency task child and its signals), taken from the history of a case the API
   drove (as ``bench.engine_bench`` does); same calls.
3. **client**: the real ``ComplaintWorkflow`` on the real worker, the same calls (``start_workflow``,
   ``receipt``, ``act``) from a Temporal client: no HTTP, no sign-in, no idempotency keys, no early checks.
4. **api**: the real thing: staff sign in (``/api/v1/auth/login``, accounts made in the read model), a citizen
   files over ``POST /api/v1/complaints`` (DB-first intake; the relay starts the workflow) and the officer and
   the agency act over ``POST /api/v1/cases/{id}/actions/{action}`` with an ``Idempotency-Key``, following a
   503 (case still being started) or a 202 (not applied yet) as a careful client does.

Afterwards every notification row of the measured real cases (phases 3 and 4) must reach ``sent`` and the
gateways must have received each exactly once. Reported per phase: cases per second, intake and action p50 /
p99, and the CPU seconds per case of the Temporal server, the worker serving the phase (real or no-op), the API,
PostgreSQL (every ``postgres`` process on the machine) and this process (clients and gateways), read from
``/proc/<pid>/stat``; then the ratios. The API path does more
than any baseline (HTTP, auth, validation, idempotency keys, the read model's early checks, DB-first intake and
the relay, notification delivery): the API-vs-baseline ratios are the issue's targets, the client-vs-baseline
ratios are the workflow-only view (``bench.engine_bench``'s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import text
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.engine_bench import (
    ACTION_NAMES,
    ACTIONS,
    UPDATE_RETRIES,
    _proc_cpu,
    history_of,
    latency,
    machine_info,
    shape_of,
    update,
)
from bench.noop_workflows import NoopCaseWorkflow, NoopChildWorkflow, NoopInput, noop_activity
from bench.scratch import drop_database, postgres_listening, scratch_database
from cli.devserver import ProcessGroup, free_port, temporal_command, wait_for_port
from config.settings import Settings
from config.temporal import data_converter
from domain.complaint import Complaint
from store.db import Database
from store.migrate import upgrade
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.models import ActionRequest, CaseInput
from workflows.process import Actor, Role, State

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "rongtuk_lifecycle_bench"
REBUILT_DATABASE = "rongtuk_lifecycle_bench_rebuilt"
CASE_QUEUE = "bench-lifecycle"
NOOP_QUEUE = "bench-lifecycle-noop"
PASSWORD = "lifecycle-bench-password"
OFFICER, AGENCY = "bench-officer", "bench-dopa"
CALL_TIMEOUT = 120.0  # seconds per call, 503/202 follow-ups included: a stuck call fails the run
STAFF_EMAILS = {
    "DOPA": "dopa@bench.invalid",
    "DOPA:head": "dopa-head@bench.invalid",
    "supervisors": "sup@bench.invalid",
}
CITIZEN = Actor("citizen:web", Role.CITIZEN)


def complaint_body(marker: str, n: int) -> dict[str, Any]:
    """What a citizen files on the web (texts only: one SMS per transition the complainant hears of)."""
    return {
        "channel": "web",
        "description": f"ถนนหน้าบ้านเป็นหลุมลึก รถจักรยานยนต์ล้มหลายครั้ง ({marker} {n})",
        "complainant": {"name": "สมชาย ใจดี", "phone": "081-234-5678", "preferred_channels": ["sms"]},
        "location": {"province": "กรุงเทพมหานคร"},
    }


# --- the gateways ----------------------------------------------------------------------------------------------


@dataclass
class Deliveries:
    """What the local gateways received, per notification id and channel."""

    sms: dict[str, int] = field(default_factory=dict)
    email: dict[str, int] = field(default_factory=dict)

    def count(self, book: dict[str, int], key: str) -> None:
        book[key] = book.get(key, 0) + 1


class _Smtp:
    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content)
        self._deliveries.count(self._deliveries.email, str(msg.get("X-Rongtuk-Notification", "")))
        return "250 Message accepted"


async def start_gateways(deliveries: Deliveries) -> tuple[web.AppRunner, Controller, int, int]:
    """An SMS gateway (``POST /sms``) and an SMTP server on 127.0.0.1; their ports."""

    async def sms(request: web.Request) -> web.Response:
        await request.read()
        deliveries.count(deliveries.sms, request.headers.get("Idempotency-Key", ""))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/sms", sms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sms_port = runner.addresses[0][1]
    smtp_port = free_port()
    smtp = Controller(_Smtp(deliveries), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    return runner, smtp, sms_port, smtp_port


# --- the no-op worker (its own process, like the real one) -----------------------------------------------------


async def serve_noop(address: str) -> None:
    """Serve the no-op workflows until SIGTERM/SIGINT."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    worker = Worker(
        client,
        task_queue=NOOP_QUEUE,
        workflows=[NoopCaseWorkflow, NoopChildWorkflow],
        activities=[noop_activity],
        max_cached_workflows=2000,
    )
    async with worker:
        await stop.wait()


# --- drivers ---------------------------------------------------------------------------------------------------


@dataclass
class Driver:
    """How one phase files a case and performs its action number k."""

    name: str
    file: Callable[[], Awaitable[Any]]
    act: Callable[[Any, int], Awaitable[None]]
    worker: str  # which process serves its workflows ("worker" or "noop_worker")


def noop_driver(name: str, client: Client, shape: NoopInput) -> Driver:
    """A no-op workflow of ``shape``: ``start_workflow``, ``receipt``, then one ``act`` update per action."""

    async def file() -> WorkflowHandle[Any, Any]:
        handle = await client.start_workflow(
            NoopCaseWorkflow.run, shape, id=f"noop-{name}-{uuid.uuid4().hex[:12]}", task_queue=NOOP_QUEUE
        )
        await update(name, handle, NoopCaseWorkflow.receipt)
        return handle

    async def act(handle: WorkflowHandle[Any, Any], k: int) -> None:
        await update(name, handle, NoopCaseWorkflow.act, ACTION_NAMES[k])

    return Driver(name, file, act, "noop_worker")


def client_driver(client: Client, marker: str) -> Driver:
    """The real case workflow, driven through the Temporal client with the same calls as the baselines."""
    counter = iter(range(10**9))

    async def file() -> WorkflowHandle[Any, Any]:
        n = next(counter)
        case_id = f"RT-LC-{marker}-{n:05d}"
        body = complaint_body(marker, n)
        body["complainant"]["phone"] = "+66812345678"
        handle = await client.start_workflow(
            ComplaintWorkflow.run,
            CaseInput(
                case_id=case_id,
                tracking_code=uuid.uuid4().hex[:10].upper(),
                complaint=Complaint.model_validate(body),
                filed_by=CITIZEN,
                search_attributes=True,
            ),
            id=workflow_id_for(case_id),
            task_queue=CASE_QUEUE,
        )
        await update("client", handle, ComplaintWorkflow.receipt)
        return handle

    async def act(handle: WorkflowHandle[Any, Any], k: int) -> None:
        event, actor, payload = ACTIONS[k]
        summary = await update("client", handle, ComplaintWorkflow.act, ActionRequest(event, actor, dict(payload)))
        if k == len(ACTIONS) - 1 and summary.status is not State.CLOSED:
            raise RuntimeError(f"{handle.id} ended in {summary.status}, not closed")

    return Driver("client", file, act, "worker")


@dataclass
class ApiCalls:
    """What the HTTP clients met on the way: 503s followed, 202s followed, keys sent."""

    retried_503: int = 0
    followed_202: int = 0
    case_ids: list[str] = field(default_factory=list)


def api_driver(http: httpx.AsyncClient, tokens: dict[str, dict[str, str]], marker: str, calls: ApiCalls) -> Driver:
    """Over HTTP: a citizen files, the officer and the agency act; each POST with its own Idempotency-Key."""
    counter = iter(range(10**9))
    who = {"screen": OFFICER, "accept": OFFICER, "agency_accept": AGENCY, "respond": AGENCY, "close": OFFICER}

    async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        headers = headers | {"Idempotency-Key": str(uuid.uuid4())}
        while True:
            response = await http.post(path, json=body, headers=headers)
            if response.status_code != 503:
                break
            calls.retried_503 += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        if response.status_code == 202:
            calls.followed_202 += 1
            where = response.headers["Location"]
            for _ in range(600):  # bounded by CALL_TIMEOUT too
                if (await http.get(where, headers=headers)).json()["state"] != "pending":
                    break
                await asyncio.sleep(0.2)
            response = await http.post(path, json=body, headers=headers)  # the same key: the stored answer
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response

    async def file() -> str:
        n = next(counter)
        receipt = (await post("/api/v1/complaints", complaint_body(marker, n), {})).json()
        calls.case_ids.append(receipt["case_id"])
        return str(receipt["case_id"])

    async def act(case_id: str, k: int) -> None:
        event, _actor, payload = ACTIONS[k]
        await post(f"/api/v1/cases/{case_id}/actions/{event}", dict(payload), tokens[who[event]])

    return Driver("api", file, act, "worker")


# --- measuring -------------------------------------------------------------------------------------------------


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process (user + system), from /proc; this process's too, and
    PostgreSQL's (:func:`postgres_cpu`)."""
    used = {name: _proc_cpu(f"/proc/{pid}/stat")[1] for name, pid in pids.items()}
    used["bench"] = time.process_time()
    used["postgresql"] = postgres_cpu()
    return used


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine (the postmaster, the backends and
    the background writers), with the backends that have exited: the read model's share, when the bench's
    database is on the local server and nothing else uses it meanwhile. About 0 with the SQLite read model,
    whose work is in the processes.

    A backend that exits (an overflow connection closed when handed back, as under 20 actions in flight on a
    pool of 10 + 10) moves its CPU into the postmaster's count of its reaped children (``cutime``,
    ``cstime``), which is added: before that, such a backend's CPU was lost between two readings, and the
    lifecycle's PostgreSQL figure read about half of what it was (docs/performance.md)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue  # gone since the listing
        if raw[raw.index("(") + 1 : raw.rindex(")")] != "postgres":
            continue
        # After the command: field 3 (state) on; utime, stime, cutime and cstime are fields 14 to 17.
        total += sum(int(f) for f in raw[raw.rindex(")") + 2 :].split()[11:15]) / tick
    return total


@dataclass
class Phase:
    """Samples of one measured phase."""

    name: str
    cases: int
    wall_s: float = 0.0
    intake: list[float] = field(default_factory=list)
    actions: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTION_NAMES})
    cpu_s: dict[str, float] = field(default_factory=dict)
    loadavg: list[float] = field(default_factory=list)
    last: Any = None

    def summary(self, worker: str) -> dict[str, Any]:
        every = [v for values in self.actions.values() for v in values]
        per_case = {k: v / self.cases for k, v in self.cpu_s.items()}
        own = {
            "server": per_case["temporal"],
            "worker": per_case[worker],
            "api": per_case["api"],
            "bench": per_case["bench"],
            "postgresql": per_case.get("postgresql", 0.0),
        }
        own["total"] = own["server"] + own["worker"] + own["api"]  # what the system spends (not the clients)
        own["total_with_postgresql"] = own["total"] + own["postgresql"]
        return {
            "cases": self.cases,
            "wall_s": self.wall_s,
            "cases_per_s": self.cases / self.wall_s,
            "intake": latency(self.intake),
            "actions": latency(every),
            "per_action": {a: latency(v) for a, v in self.actions.items()},
            "cpu_s_per_case": own,
            "cpu_s_per_case_every_process": per_case,
            "loadavg_before_after": self.loadavg,
        }


async def _bounded(call: Awaitable[Any]) -> Any:
    async with asyncio.timeout(CALL_TIMEOUT):
        return await call


async def drive(driver: Driver, cases: int, concurrency: int, phase: Phase | None = None) -> None:
    """``cases`` cases filed and driven through every action, at most ``concurrency`` at once."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            handle = await _bounded(driver.file())
            if phase is not None:
                phase.intake.append(time.perf_counter() - started)
            for k, name in enumerate(ACTION_NAMES):
                started = time.perf_counter()
                await _bounded(driver.act(handle, k))
                if phase is not None:
                    phase.actions[name].append(time.perf_counter() - started)
            if phase is not None:
                phase.last = handle

    async with asyncio.TaskGroup() as group:
        for _ in range(cases):
            group.create_task(one())


async def run_phase(driver: Driver, args: argparse.Namespace, pids: dict[str, int]) -> Phase:
    """Warm up, then measure one phase."""
    print(f"{driver.name}: {args.warmup} warm-up cases, then {args.cases} measured ...", flush=True)
    await drive(driver, args.warmup, args.concurrency)
    phase = Phase(driver.name, args.cases, loadavg=[os.getloadavg()[0]])
    before = cpu_seconds(pids)
    started = time.perf_counter()
    await drive(driver, args.cases, args.concurrency, phase)
    phase.wall_s = time.perf_counter() - started
    after = cpu_seconds(pids)
    phase.cpu_s = {k: after[k] - before[k] for k in after}
    phase.loadavg.append(os.getloadavg()[0])
    print(f"  {phase.wall_s:.1f} s, {args.cases / phase.wall_s:.2f} cases/s", flush=True)
    return phase


# --- the delivery check ----------------------------------------------------------------------------------------


async def check_deliveries(url: str, like: str, deliveries: Deliveries, wait_s: float) -> dict[str, Any]:
    """Wait (bounded) until every notification of the cases ``like`` is sent; then each must have reached its
    gateway exactly once (SMS by Idempotency-Key, email by X-Rongtuk-Notification)."""
    db = Database(url)
    started = time.perf_counter()
    rows: list[Any] = []
    try:
        while True:
            async with db.session() as s:
                rows = list(
                    (
                        await s.execute(
                            text("SELECT id, channel, recipient, status FROM notifications WHERE case_id LIKE :p"),
                            {"p": like},
                        )
                    ).all()
                )
            if rows and all(r.status == "sent" for r in rows):
                break
            if time.perf_counter() - started > wait_s:
                break
            await asyncio.sleep(0.5)
    finally:
        await db.dispose()
    drained_s = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    sms = {str(r.id) for r in rows if r.channel == "sms"}
    email = {str(r.id) for r in rows if r.channel == "web" and r.recipient in STAFF_EMAILS}
    inbox_only = len(rows) - len(sms) - len(email)
    got_sms = {k: v for k, v in deliveries.sms.items() if k in sms}
    got_email = {k: v for k, v in deliveries.email.items() if k in email}
    missing = len(sms - set(got_sms)) + len(email - set(got_email))
    twice = sum(1 for v in [*got_sms.values(), *got_email.values()] if v > 1)
    return {
        "notifications": len(rows),
        "statuses": statuses,
        "to_sms_gateway": len(sms),
        "to_smtp": len(email),
        "web_inbox_only": inbox_only,
        "missing": missing,
        "delivered_twice": twice,
        "exactly_once": missing == 0 and twice == 0 and inbox_only == 0 and statuses.get("sent") == len(rows),
        "drained_after_last_action_s": drained_s,
    }


# --- the rebuild from this server ------------------------------------------------------------------------------


async def _timeline_hashes(url: str) -> dict[tuple[str, int], str]:
    """Every timeline row's hash by (case, seq): equal hashes, equal rows (each hash covers its row and the last)."""
    db = Database(url)
    try:
        async with db.session() as s:
            found = await s.execute(text("SELECT case_id, seq, hash FROM case_events"))
            return {(r.case_id, r.seq): r.hash for r in found.all()}
    finally:
        await db.dispose()


async def rebuild_from_server(
    client: Client, settings: Settings, live_url: str, rebuilt_url: str, pids: dict[str, int], passes: int
) -> dict[str, Any]:
    """Every case this run filed, rebuilt from the Temporal server into an empty read model as ``rongtuk db
    rebuild`` does (histories fetched from the server, one replay process per core), with the records read from
    the histories and, as the baseline, replayed; ``passes`` times each, alternating. The rebuilt timeline must
    equal the live one row for row."""
    from activities.rebuild import HistoryReader, ReplayProcesses, default_jobs, rebuild
    from worker import WORKFLOWS

    await asyncio.to_thread(upgrade, rebuilt_url)
    db = Database(rebuilt_url, writer=True)
    jobs = default_jobs()
    processes = ReplayProcesses(settings, jobs) if jobs > 1 else None
    live = await _timeline_hashes(live_url)
    runs: dict[str, list[dict[str, Any]]] = {"replayed": [], "read": []}
    try:
        for n in range(passes):
            for mode in ("replayed", "read"):
                async with db.session() as s:
                    for table in ("notifications", "agency_tasks", "case_events", "cases"):
                        await s.execute(text(f"DELETE FROM {table}"))
                before = cpu_seconds(pids)
                started = time.perf_counter()
                report = await rebuild(
                    reader=HistoryReader(client, WORKFLOWS), db=db, processes=processes, read_records=mode == "read"
                )
                wall = time.perf_counter() - started
                after = cpu_seconds(pids)
                rebuilt = await _timeline_hashes(rebuilt_url)
                run = {
                    "pass": n + 1,
                    "cases": report.cases,
                    "transitions": report.transitions,
                    "failed": len(report.failed),
                    "wall_s": wall,
                    "cases_per_s": report.cases / wall,
                    "cpu_ms_per_case": {
                        k: (after[k] - before[k]) / max(report.cases, 1) * 1000 for k in ("temporal", "bench")
                    },
                    "timeline_equals_live": rebuilt == live,
                }
                runs[mode].append(run)
                print(
                    f"  rebuild from the server, records {mode}: {report.cases} cases in {wall:.1f} s, "
                    f"{run['cases_per_s']:.0f} cases/s, timeline {'equal to' if rebuilt == live else 'DIFFERS FROM'} "
                    f"the live one",
                    flush=True,
                )
    finally:
        if processes is not None:
            processes.close()
        await db.dispose()
    best = {mode: max(runs[mode], key=lambda r: r["cases_per_s"]) for mode in runs}
    return {
        "jobs": jobs,
        "runs": runs,
        "best": best,
        "read_vs_replayed": best["read"]["cases_per_s"] / best["replayed"]["cases_per_s"],
        "extrapolated_100k_min": 100_000 / best["read"]["cases_per_s"] / 60,
        "all_equal": all(r["timeline_equals_live"] and not r["failed"] for rs in runs.values() for r in rs),
    }


# --- the run ---------------------------------------------------------------------------------------------------


async def add_staff(url: str) -> None:
    """The officer and the agency's staff member, as ``rongtuk users add`` makes them."""
    from api.accounts import add_account
    from api.auth import StaffRole

    db = Database(url)
    try:
        await add_account(db, username=OFFICER, role=StaffRole.OFFICER, password=PASSWORD)
        await add_account(db, username=AGENCY, role=StaffRole.AGENCY, password=PASSWORD, agency="DOPA")
    finally:
        await db.dispose()


async def sign_in(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f"sign-in of {username}: {response.status_code} {response.text[:200]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def measure(args: argparse.Namespace, url: str, tmp: Path, group: ProcessGroup) -> dict[str, Any]:
    """Start the gateways and the processes, then run the four phases and check the deliveries."""
    deliveries = Deliveries()
    runner, smtp, sms_port, smtp_port = await start_gateways(deliveries)
    try:
        temporal_port, api_port = free_port(), free_port()
        server = group.start(
            "temporal",
            temporal_command(db_file=tmp / "temporal.db", port=temporal_port, ui_port=None),
            log=tmp / "temporal.log",
        )
        wait_for_port(temporal_port, proc=server)
        env = {
            "RONGTUK_ENV": "test",
            "RONGTUK_DATABASE_URL": url,
            "RONGTUK_DATA_DIR": str(tmp),
            "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "RONGTUK_TASK_QUEUE": CASE_QUEUE,
            "RONGTUK_LOG_LEVEL": "WARNING",
            "RONGTUK_SMS_GATEWAY_URL": f"http://127.0.0.1:{sms_port}/sms",
            "RONGTUK_SMTP_HOST": "127.0.0.1",
            "RONGTUK_SMTP_PORT": str(smtp_port),
            "RONGTUK_SMTP_STARTTLS": "false",
            "RONGTUK_STAFF_EMAILS": json.dumps(STAFF_EMAILS),
            "RONGTUK_DELIVERY_POLL_SECONDS": "0.5",
            "RONGTUK_RATE_INTAKE_PER_MINUTE": "0",
            "RONGTUK_RATE_TRACKING_PER_MINUTE": "0",
            "RONGTUK_RATE_LOGIN_PER_MINUTE": "0",
        }
        api = group.start(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-keep-alive",
                "60",
            ],
            env=env,
            log=tmp / "api.log",
        )
        wait_for_port(api_port, proc=api)
        worker = group.start("worker", [sys.executable, "-m", "worker"], env=env, log=tmp / "worker.log")
        noop = group.start(
            "noop_worker",
            [sys.executable, "-m", "bench.lifecycle_bench", "--noop-worker", f"127.0.0.1:{temporal_port}"],
            log=tmp / "noop-worker.log",
        )
        pids = {"temporal": server.pid, "api": api.pid, "worker": worker.pid, "noop_worker": noop.pid}
        settings = Settings(env="test", database_url=url, data_dir=tmp)
        client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=data_converter(settings))
        plain = await Client.connect(f"127.0.0.1:{temporal_port}")
        marker = uuid.uuid4().hex[:6]
        limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", limits=limits, timeout=60) as http:
            tokens = {OFFICER: await sign_in(http, OFFICER), AGENCY: await sign_in(http, AGENCY)}
            calls = ApiCalls()
            api_cases = api_driver(http, tokens, f"api-{marker}", calls)
            # The real case's shape, from a case the API drove alone.
            print("probe: one case over the API, alone, for its shape ...", flush=True)
            await drive(api_cases, 1, 1)
            probe_id = calls.case_ids[-1]
            shape = shape_of(await history_of(client, workflow_id_for(probe_id)))
            steps = dict(zip(["intake", *ACTION_NAMES], shape.steps, strict=False))
            print("  " + "; ".join(f"{n}: {' '.join(s)}" for n, s in steps.items()), flush=True)
            naive = NoopInput(steps=[["activity"] for _ in range(len(ACTION_NAMES) + 1)], signals=0)
            drivers = [
                noop_driver("naive", plain, naive),
                noop_driver("same_shape", plain, shape),
                client_driver(client, f"cl{marker}"),
                api_cases,
            ]
            phases: dict[str, dict[str, Any]] = {}
            for driver in drivers:
                phase = await run_phase(driver, args, pids)
                phases[driver.name] = phase.summary(driver.worker)
            api_calls: dict[str, Any] = {"retried_503": calls.retried_503, "followed_202": calls.followed_202}
            api_calls["update_rpc_retries_by_phase"] = dict(UPDATE_RETRIES)
        print("waiting for every notification to be delivered ...", flush=True)
        delivered = {
            "api": await check_deliveries(url, "RT-%", deliveries, args.settle_timeout),
        }
        # The client phase's cases have their own prefix; "RT-%" above counted them too, so split.
        delivered["client"] = await check_deliveries(url, f"RT-LC-cl{marker}-%", deliveries, args.settle_timeout)
        rebuilt = None
        if args.rebuild_passes:
            print("the read model of every case of this run rebuilt from the server ...", flush=True)
            (tmp / "rebuilt").mkdir(exist_ok=True)
            rebuilt_url = await scratch_database(args.backend, args.pg_server, REBUILT_DATABASE, tmp / "rebuilt")
            rebuilt = await rebuild_from_server(client, settings, url, rebuilt_url, pids, args.rebuild_passes)
        return {
            "rebuild_from_server": rebuilt,
            "shape": {"same_shape": steps, "naive": "one regular activity per step, no child, no signals"},
            "phases": phases,
            "api_calls": api_calls,
            "deliveries_all_real_cases": delivered["api"],
            "deliveries_client_phase": delivered["client"],
        }
    finally:
        await runner.cleanup()
        smtp.stop()


def ratios(phases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's comparisons (api against each baseline) and the workflow-only ones (client against each)."""
    out: dict[str, Any] = {}
    for case in ("api", "client"):
        for base in ("naive", "same_shape"):
            c, b = phases[case], phases[base]
            out[f"{case}_vs_{base}"] = {
                "throughput": c["cases_per_s"] / b["cases_per_s"],
                "action_p50": c["actions"]["p50_ms"] / b["actions"]["p50_ms"],
                "action_p99": c["actions"]["p99_ms"] / b["actions"]["p99_ms"],
                "cpu_server": c["cpu_s_per_case"]["server"] / b["cpu_s_per_case"]["server"],
                "cpu_worker": c["cpu_s_per_case"]["worker"] / b["cpu_s_per_case"]["worker"],
                "cpu_total": c["cpu_s_per_case"]["total"] / b["cpu_s_per_case"]["total"],
            }
    return out


def table(phases: dict[str, dict[str, Any]]) -> str:
    names = ["naive", "same_shape", "client", "api"]
    rows = [
        "| figure | naive no-op (1 activity per transition) | same-shape no-op | real workflow via client | "
        "real lifecycle over the API |",
        "|---|---:|---:|---:|---:|",
    ]

    def line(label: str, pick: Callable[[dict[str, Any]], float], fmt: str) -> None:
        rows.append(f"| {label} | " + " | ".join(format(pick(phases[n]), fmt) for n in names) + " |")

    line("cases per second", lambda p: p["cases_per_s"], ".2f")
    line("intake p50 ms", lambda p: p["intake"]["p50_ms"], ".0f")
    line("intake p99 ms", lambda p: p["intake"]["p99_ms"], ".0f")
    line("action p50 ms", lambda p: p["actions"]["p50_ms"], ".0f")
    line("action p99 ms", lambda p: p["actions"]["p99_ms"], ".0f")
    line("CPU ms per case: Temporal server", lambda p: p["cpu_s_per_case"]["server"] * 1000, ".0f")
    line("CPU ms per case: worker (real or no-op)", lambda p: p["cpu_s_per_case"]["worker"] * 1000, ".0f")
    line("CPU ms per case: API", lambda p: p["cpu_s_per_case"]["api"] * 1000, ".0f")
    line("CPU ms per case: server + worker + API", lambda p: p["cpu_s_per_case"]["total"] * 1000, ".0f")
    line(
        "CPU ms per case: PostgreSQL (every postgres process)",
        lambda p: p["cpu_s_per_case"]["postgresql"] * 1000,
        ".0f",
    )
    line(
        "CPU ms per case: server + worker + API + PostgreSQL",
        lambda p: p["cpu_s_per_case"]["total_with_postgresql"] * 1000,
        ".0f",
    )
    line("CPU ms per case: bench process (clients, gateways)", lambda p: p["cpu_s_per_case"]["bench"] * 1000, ".0f")
    line("load average (1 min) at the start", lambda p: p["loadavg_before_after"][0], ".1f")
    return "\n".join(rows)


def ratio_table(r: dict[str, Any]) -> str:
    rows = [
        "| comparison | throughput | action p50 | action p99 | CPU server | CPU worker | CPU total |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "api_vs_naive": "API lifecycle ÷ naive (target: throughput >= 1.0×)",
        "api_vs_same_shape": "API lifecycle ÷ same shape (target: throughput >= 0.8×, action p99 <= 1.2×)",
        "client_vs_naive": "workflow only (client) ÷ naive",
        "client_vs_same_shape": "workflow only (client) ÷ same shape",
    }
    for key, label in labels.items():
        v = r[key]
        rows.append(
            f"| {label} | {v['throughput']:.2f}× | {v['action_p50']:.2f}× | {v['action_p99']:.2f}× "
            f"| {v['cpu_server']:.2f}× | {v['cpu_worker']:.2f}× | {v['cpu_total']:.2f}× |"
        )
    return "\n".join(rows)


async def _setup_and_measure(args: argparse.Namespace, tmp: Path, group: ProcessGroup) -> dict[str, Any]:
    url = await scratch_database(args.backend, args.pg_server, BENCH_DATABASE, tmp)
    await asyncio.to_thread(upgrade, url)
    await add_staff(url)
    measured = await measure(args, url, tmp, group)
    measured["backend"] = args.backend
    return measured


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the four phases, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100, help="measured cases per phase")
    parser.add_argument("--concurrency", type=int, default=20, help="cases in flight at once")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured cases before each phase")
    parser.add_argument("--settle-timeout", type=float, default=180.0, help="how long to wait for the deliveries")
    parser.add_argument(
        "--backend", choices=["postgresql", "sqlite"], default="postgresql" if postgres_listening() else "sqlite"
    )
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/lifecycle.json"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    parser.add_argument(
        "--rebuild-passes", type=int, default=2, help="rebuild the run's cases from the server this often (0: not)"
    )
    parser.add_argument("--noop-worker", metavar="ADDRESS", help=argparse.SUPPRESS)  # the baselines' worker
    args = parser.parse_args(argv)
    if args.noop_worker:
        asyncio.run(serve_noop(args.noop_worker))
        return {}
    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-lifecycle-bench-"))
    group = ProcessGroup()
    print(
        f"rongtuk lifecycle bench, {started:%Y-%m-%d %H:%M} UTC, read model on {args.backend}; {args.cases} cases "
        f"per phase, {args.concurrency} in flight, {args.warmup} warm-up; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        measured = asyncio.run(_setup_and_measure(args, tmp, group))
    finally:
        group.stop()
        if args.backend == "postgresql":
            asyncio.run(drop_database(args.pg_server, BENCH_DATABASE))
            asyncio.run(drop_database(args.pg_server, REBUILT_DATABASE))
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    measured["ratios"] = ratios(measured["phases"])
    results = {
        "date": started.isoformat(),
        "machine": machine_info(temporal_command(db_file=None, port=0, ui_port=None)),
        "loadavg_at_end": list(os.getloadavg()),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **measured,
        "duration_s": (datetime.now(UTC) - started).total_seconds(),
    }
    print(f"\nPhases ({args.cases} cases each, {args.concurrency} in flight; CPU from /proc of each process)\n")
    print(table(measured["phases"]))
    print("\nRatios (the API path also does HTTP, sign-in, idempotency keys, early checks against the read model,")
    print("DB-first intake with the relay and notification delivery; the baselines do none of it)\n")
    print(ratio_table(measured["ratios"]))
    d = measured["deliveries_all_real_cases"]
    print(
        f"\nNotifications of the real cases (client and API phases): {d['notifications']} rows, "
        f"{d['to_sms_gateway']} SMS and {d['to_smtp']} emails; missing {d['missing']}, twice "
        f"{d['delivered_twice']}, statuses {d['statuses']}: "
        f"{'every one delivered exactly once' if d['exactly_once'] else 'NOT delivered exactly once'}"
    )
    r = measured["rebuild_from_server"]
    if r is not None:
        read, replayed = r["best"]["read"], r["best"]["replayed"]
        print(
            f"Rebuild of this run's {read['cases']} cases from the server ({r['jobs']} replay processes), best of "
            f"{len(r['runs']['read'])}: records read {read['cases_per_s']:.0f} cases/s, replayed "
            f"{replayed['cases_per_s']:.0f} cases/s ({r['read_vs_replayed']:.1f}x); Temporal server CPU "
            f"{read['cpu_ms_per_case']['temporal']:.1f} ms a case; 100k cases: {r['extrapolated_100k_min']:.1f} min "
            f"extrapolated; timelines {'equal to the live one' if r['all_equal'] else 'NOT EQUAL to the live one'}"
        )
    print(f"API calls: {measured['api_calls']}; total {results['duration_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    if not d["exactly_once"]:
        raise SystemExit("notifications were not delivered exactly once")
    if r is not None and not r["all_equal"]:
        raise SystemExit("the read model rebuilt from the server differs from the live one")
    return results


if __name__ == "__main__":
    main()
