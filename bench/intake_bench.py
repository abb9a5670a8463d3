"""Benchmark intake over HTTP against the real app, and the relay that starts the workflows, against a bare
``start_workflow`` loop in the same run.

    .venv/bin/python -m bench.intake_bench [--complaints 2000] [--concurrency 32] [--baseline 1000]
                                           [--backend postgresql|sqlite] [--out bench/results/intake.json]

It starts ``temporal server start-dev`` (a WAL SQLite file in a temporary directory, headless, free port), a
fresh read model (PostgreSQL database ``rongtuk_bench_intake`` when PostgreSQL listens on 127.0.0.1:5432, or
a SQLite file), the API under uvicorn and one worker (``python -m worker``) as separate processes. Then:

1. **Baseline**: a bare ``start_workflow`` loop of ``ComplaintWorkflow`` (same input, same codec) at the same
   concurrency, from this process, on a task queue no worker polls: the cost of a start alone.
2. **The API alone**, once per ``--api-workers`` count (default 1 and 2 uvicorn processes, ``rongtuk api
   --workers N``): its relay off and no worker running, ``--complaints`` POSTs from ``--concurrency`` clients.
   What the intake path costs by itself: latency, complaints/s, API CPU per complaint (all its processes).
3. **The relay alone**: one relay (``IntakeRelay``, default settings: batches, bounded starts in flight) in
   this process drains what step 2 committed, against the bare loop of step 1: sustained starts/s.
   Steps 2 and 3 use a task queue no worker polls, so nothing they file runs later in the run.
4. **Everything at once** (production shape on one machine): the API (``--api-workers`` first count) with its
   relay, and one worker (``python -m worker``, with its own relay). ``--complaints`` POSTs as in step 2,
   each with its own Idempotency-Key; every tenth receipt is tracked (GET /api/v1/track/{code}) at once and
   must answer 200; the relay's lag (unstarted complaints, oldest age) is sampled every 0.25 s. Afterwards
   every complaint is counted in the database (none lost, none twice: one case per key, one outbox row per
   case, all started), the relay's per-case lag (commit to workflow started) and the cases per second it
   sustained over the run; the CPU of every process per complaint. With ``--rate``, the same again open loop,
   with how long the relay still drained after the last answer. ``--relay-in worker`` runs the relay in the
   worker only, ``--background-nice N`` the worker and Temporal at a lower CPU priority (one machine shaped so
   that the answers come first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from bench.engine_bench import latency, server_cpu
from bench.machine import machine_info
from bench.scratch import drop_database, postgres_listening, scratch_database
from cli.devserver import ProcessGroup, start_listening, temporal_command
from config.settings import Settings
from config.temporal import data_converter
from domain.complaint import Complaint
from intake.relay import relay_lag, start_relay, stop_relay
from store import models
from store.db import Database
from store.migrate import upgrade
from workflows.complaint import ComplaintWorkflow
from workflows.models import CaseInput
from workflows.process import Actor, Role

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "rongtuk_bench_intake"
QUEUE = "bench-intake"
# Steps 2 and 3 start their workflows here: no worker polls it, so they never run.
IDLE_QUEUE = "bench-intake-nobody-polls"


def body(marker: str, n: int) -> dict[str, Any]:
    return {
        "channel": "web",
        "description": f"ไฟถนนในซอยดับมาสองสัปดาห์ ตอนกลางคืนมืดมากและอันตราย ({marker} {n})",
        "complainant": {"name": "สมหญิง รักดี", "phone": "081-234-5678", "preferred_channels": ["sms", "web"]},
        "location": {"province": "Bangkok"},
    }


async def bare_starts(client: Client, n: int, concurrency: int) -> dict[str, Any]:
    """The baseline: ``start_workflow`` of the case workflow, ``concurrency`` in flight, nobody running them."""
    complaint = Complaint.model_validate(body("baseline", 0) | {"complainant": {"name": "x", "phone": "0812345678"}})
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []
    tag = uuid.uuid4().hex[:6]

    async def one(k: int) -> None:
        async with gate:
            started = time.perf_counter()
            case_id = f"RT-BARE-{tag}-{k:05d}"
            await client.start_workflow(
                ComplaintWorkflow.run,
                CaseInput(case_id, f"BARE{k:06d}", complaint, Actor("citizen:web", Role.CITIZEN)),
                id=f"complaint-{case_id}",
                task_queue="bench-bare-nobody-polls",
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
            times.append(time.perf_counter() - started)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(n)))
    wall = time.perf_counter() - t0
    return {"starts": n, "concurrency": concurrency, "wall_s": wall, "per_s": n / wall, "latency": latency(times)}


async def sample_lag(db: Database, out: list[tuple[float, int, float]], stop: asyncio.Event) -> None:
    t0 = time.perf_counter()
    while not stop.is_set():
        async with db.session() as s:
            lag = await relay_lag(s, now=datetime.now(UTC))
        out.append((time.perf_counter() - t0, lag.waiting, lag.oldest_seconds))
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.25)
        except TimeoutError:
            pass


async def http_intake(
    api: str, n: int, concurrency: int, marker: str, *, track_every: int = 10, rate: float | None = None
) -> tuple[dict[str, Any], list[str]]:
    """``n`` complaints from ``concurrency`` clients; their latencies, statuses and tracking checks.

    Closed loop by default (each client sends the next complaint when its answer arrives: latency is then
    ``concurrency`` / throughput). With ``rate``, open loop: complaint k is due at ``k / rate`` seconds and sent
    then by a free client (at most ``concurrency`` in flight), and its latency counts from when it was due, so
    waiting for a free client counts too."""
    times: list[float] = []
    statuses: dict[int, int] = {}
    tracked: list[int] = []
    track_ms: list[float] = []
    keys: list[str] = []
    retries: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for k in range(n):
        queue.put_nowait(k)
    t0 = time.perf_counter()

    async def client_loop(http: aiohttp.ClientSession) -> None:
        while True:
            try:
                k = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            key = f"bench-{marker}-{k}"
            started = time.perf_counter()
            if rate:
                due = t0 + k / rate
                if due > started:
                    await asyncio.sleep(due - started)
                started = due
            for attempt in range(5):
                try:
                    async with http.post(
                        f"{api}/api/v1/complaints", json=body(marker, k), headers={"Idempotency-Key": key}
                    ) as response:
                        status, answer = response.status, await response.read()
                    break
                except aiohttp.ClientConnectionError:
                    # A connection the server closed: retried with the same key, as a client should (the
                    # count afterwards shows whether that filed anything twice).
                    retries.append(k)
                    if attempt == 4:
                        raise
            answered = time.perf_counter()
            times.append(answered - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 201:
                keys.append(key)
                if k % track_every == 0:
                    async with http.get(f"{api}/api/v1/track/{json.loads(answer)['tracking_code']}") as seen:
                        await seen.read()
                    tracked.append(seen.status)
                    track_ms.append((time.perf_counter() - answered) * 1000)

    # aiohttp, not httpx: the load generator shares the 2 cores with what it measures, and an aiohttp request
    # costs a fifth of httpx's CPU here (delivery.gateways.HttpPoster).
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30.0)
    utf8 = functools.partial(json.dumps, ensure_ascii=False)  # Thai as UTF-8, as a browser sends it
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, json_serialize=utf8) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(http) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "complaints": n,
        "concurrency": concurrency,
        "open_loop_rate": rate,
        "wall_s": wall,
        "per_s": n / wall,
        "statuses": statuses,
        "transport_retries": len(retries),
        "latency": latency(times),
        "tracked_at_once": {"checked": len(tracked), "ok": tracked.count(200), "max_ms": max(track_ms, default=0)},
    }, keys


async def settle_and_count(db: Database, marker: str, keys: list[str], *, wait_s: float) -> dict[str, Any]:
    """Wait (bounded) for the relay to start everything, then count: none lost, none twice."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async with db.session() as s:
            if (await relay_lag(s, now=datetime.now(UTC))).waiting == 0:
                break
        await asyncio.sleep(0.2)
    pattern = f"%({marker} %"
    async with db.session() as s:
        cases = list(
            (await s.execute(select(models.Case.case_id).where(models.Case.description.like(pattern)))).scalars()
        )
        rows = (
            await s.execute(
                select(models.IntakeOutbox.status, models.IntakeOutbox.created_at, models.IntakeOutbox.sent_at).where(
                    models.IntakeOutbox.case_id.in_(cases)
                )
            )
        ).all()
        answered_keys = (
            await s.execute(
                select(func.count()).where(models.IdempotencyKey.key.in_(keys), models.IdempotencyKey.kind == "intake")
            )
        ).scalar_one()
        filed = (
            await s.execute(select(func.count()).where(models.Case.case_id.in_(cases), models.Case.last_seq >= 1))
        ).scalar_one()
    lags = [(r.sent_at - r.created_at).total_seconds() for r in rows if r.sent_at is not None]
    first = min((r.created_at for r in rows), default=None)
    last = max((r.sent_at for r in rows if r.sent_at is not None), default=None)
    span = (last - first).total_seconds() if first and last else float("nan")
    return {
        "answered_201": len(keys),
        "cases_in_database": len(cases),
        "distinct_cases": len(set(cases)),
        "keys_recorded": int(answered_keys),
        "outbox_rows": len(rows),
        "started": sum(1 for r in rows if r.status == "started"),
        "filed_by_worker_at_count": int(filed),
        "relay_lag": latency(lags),
        "relay_per_s_over_run": len(lags) / span if span and span == span else None,
    }


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process and its children (uvicorn's workers), from /proc."""
    return {name: server_cpu(pid) for name, pid in pids.items()}


async def api_alone(api: str, args: argparse.Namespace, pid: int, workers: int) -> dict[str, Any]:
    """Step 2: the intake path by itself (no relay in the API, no worker)."""
    await http_intake(api, args.warmup, min(args.concurrency, 8), f"warm-{uuid.uuid4().hex[:6]}")
    print(f"API alone, {workers} process(es): {args.complaints} complaints, {args.concurrency} clients", flush=True)
    before = server_cpu(pid)
    load = os.getloadavg()[0]
    measured, _ = await http_intake(api, args.complaints, args.concurrency, f"alone-{uuid.uuid4().hex[:8]}")
    measured["api_workers"] = workers
    measured["api_cpu_ms_per_complaint"] = (server_cpu(pid) - before) / args.complaints * 1000
    measured["loadavg_1m"] = [load, os.getloadavg()[0]]
    print(
        f"  {measured['per_s']:.0f}/s, p50 {measured['latency']['p50_ms']:.0f} ms, "
        f"p99 {measured['latency']['p99_ms']:.0f} ms, API CPU {measured['api_cpu_ms_per_complaint']:.1f} ms "
        f"per complaint, statuses {measured['statuses']}",
        flush=True,
    )
    if args.rate:
        opened, _ = await http_intake(
            api, args.complaints, args.concurrency, f"open-{uuid.uuid4().hex[:8]}", rate=args.rate
        )
        opened["loadavg_1m"] = os.getloadavg()[0]
        measured["open_loop"] = opened
        print(
            f"  open loop at {args.rate:.0f}/s (at most {args.concurrency} in flight): {opened['per_s']:.0f}/s, "
            f"p50 {opened['latency']['p50_ms']:.0f} ms, p99 {opened['latency']['p99_ms']:.0f} ms",
            flush=True,
        )
    return measured


async def relay_alone(url: str, temporal_port: int, bare: dict[str, Any]) -> dict[str, Any]:
    """Step 3: one relay with the default settings drains the backlog of step 2; its starts/s."""
    settings = Settings(env="dev", database_url=url, temporal_address=f"127.0.0.1:{temporal_port}")
    client = await Client.connect(settings.temporal_address, data_converter=data_converter(settings))
    db = Database(url)
    try:
        async with db.session() as s:
            backlog = (await relay_lag(s, now=datetime.now(UTC))).waiting
        print(
            f"relay alone: {backlog} waiting, {settings.intake_relay_loops} loops of batches of "
            f"{settings.intake_relay_batch_size}, at most {settings.intake_relay_concurrency} starts in flight",
            flush=True,
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        relay, task = start_relay(db, client, settings)
        # Done when the relay has started the whole backlog, by its own count: the bare loop has no observer
        # polling the database beside it, and neither should the relay (the table is checked once, after).
        # Bounded: a start that keeps failing leaves its row pending, and the check after says how many.
        deadline = time.monotonic() + 600
        while relay.started + relay.found_started < backlog and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
        await stop_relay(relay, task)
        async with db.session() as s:
            left = (await relay_lag(s, now=datetime.now(UTC))).waiting
        cpu = time.process_time() - cpu0
        # The bare loop again, right after: the machine's load moves within minutes, the ratio should not.
        again = await bare_starts(client, relay.started, bare["concurrency"])
        out = {
            "backlog": backlog,
            "left_unstarted": left,
            "started": relay.started,
            "wall_s": wall,
            "per_s": relay.started / wall if wall else None,
            "vs_bare_loop": (relay.started / wall) / bare["per_s"] if wall else None,
            "bare_loop_right_after": again,
            "vs_bare_loop_right_after": (relay.started / wall) / again["per_s"] if wall else None,
            "bench_process_cpu_ms_per_start": cpu / max(relay.started, 1) * 1000,
            "settings": {
                "loops": settings.intake_relay_loops,
                "batch": settings.intake_relay_batch_size,
                "in_flight": settings.intake_relay_concurrency,
            },
            "loadavg_1m": os.getloadavg()[0],
        }
        print(
            f"  {out['per_s']:.0f} starts/s ({out['vs_bare_loop']:.2f}x the first bare loop, "
            f"{out['vs_bare_loop_right_after']:.2f}x the bare loop right after: {again['per_s']:.0f}/s)"
            + (f"; {left} NOT STARTED" if left else ""),
            flush=True,
        )
        return out
    finally:
        await db.dispose()


async def baseline_starts(args: argparse.Namespace, url: str, temporal_port: int) -> dict[str, Any]:
    settings = Settings(env="dev", database_url=url)
    client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=data_converter(settings))
    print(f"baseline: {args.baseline} bare start_workflow calls, {args.concurrency} in flight", flush=True)
    baseline = await bare_starts(client, args.baseline, args.concurrency)
    baseline["loadavg_1m"] = os.getloadavg()[0]
    print(
        f"  {baseline['per_s']:.0f}/s, p50 {baseline['latency']['p50_ms']:.0f} ms, "
        f"p99 {baseline['latency']['p99_ms']:.0f} ms",
        flush=True,
    )
    return baseline


async def everything(args: argparse.Namespace, url: str, api_port: int, pids: dict[str, int]) -> dict[str, Any]:
    """Step 4: the API with its relay, and a worker, at once: closed loop, then (``--rate``) open loop."""
    db = Database(url)
    api = f"http://127.0.0.1:{api_port}"
    try:
        await http_intake(api, args.warmup, min(args.concurrency, 8), f"warm-{uuid.uuid4().hex[:6]}")
        print(f"everything: {args.complaints} complaints over HTTP, {args.concurrency} clients", flush=True)
        measured = await _everything_run(args, db, api, pids, rate=None)
        if args.rate:
            print(
                f"everything, open loop: {args.complaints} complaints arriving at {args.rate:.0f}/s "
                f"(at most {args.concurrency} in flight)",
                flush=True,
            )
            measured["open_loop"] = await _everything_run(args, db, api, pids, rate=args.rate)
        return measured
    finally:
        await db.dispose()


async def _everything_run(
    args: argparse.Namespace, db: Database, api: str, pids: dict[str, int], *, rate: float | None
) -> dict[str, Any]:
    """One measured run of step 4: the answers, then the relay draining what they committed, then the count."""
    marker = f"bench-{uuid.uuid4().hex[:8]}"
    samples: list[tuple[float, int, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_lag(db, samples, stop))
    load = os.getloadavg()[0]
    cpu_before = cpu_seconds(pids)
    intake, keys = await http_intake(api, args.complaints, args.concurrency, marker, rate=rate)
    answered = time.perf_counter()
    counted = await settle_and_count(db, marker, keys, wait_s=args.settle_timeout)
    # How long the relay still had work after the last answer (0 when it kept up).
    counted["drained_s_after_last_answer"] = time.perf_counter() - answered
    cpu_used = {k: v - cpu_before[k] for k, v in cpu_seconds(pids).items()}
    # Per complaint, including its relay start and the worker filing it (until the count above).
    intake["cpu_ms_per_complaint"] = {k: v / args.complaints * 1000 for k, v in cpu_used.items()}
    stop.set()
    await sampler
    print(
        f"  {intake['per_s']:.0f}/s, p50 {intake['latency']['p50_ms']:.0f} ms, "
        f"p99 {intake['latency']['p99_ms']:.0f} ms, statuses {intake['statuses']}",
        flush=True,
    )
    print(
        f"  relay: lag p50 {counted['relay_lag']['p50_ms']:.0f} ms, p99 {counted['relay_lag']['p99_ms']:.0f} "
        f"ms, max {counted['relay_lag']['max_ms']:.0f} ms; {counted['relay_per_s_over_run'] or 0:.0f} cases/s; "
        f"drained {counted['drained_s_after_last_answer']:.1f} s after the last answer",
        flush=True,
    )
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in intake["cpu_ms_per_complaint"].items())
    print(f"  CPU ms per complaint: {cpu}", flush=True)
    intake["loadavg_1m"] = [load, os.getloadavg()[0]]
    return {
        "intake": intake,
        "after": counted,
        "lag_samples": {
            "max_unstarted": max((w for _, w, _ in samples), default=0),
            "max_oldest_s": max((o for _, _, o in samples), default=0.0),
            "n": len(samples),
        },
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--complaints", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--baseline", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--api-workers", type=int, nargs="+", default=[1, 2], help="uvicorn processes, step 2")
    parser.add_argument(
        "--rate", type=float, default=None, help="steps 2 and 4 again open loop: complaints/s arriving (e.g. 100)"
    )
    parser.add_argument("--settle-timeout", type=float, default=120.0)
    parser.add_argument(
        "--relay-in",
        choices=["both", "worker"],
        default="both",
        help="step 4: where the intake relay runs (the default: in the API and the worker)",
    )
    parser.add_argument(
        "--background-nice",
        type=int,
        default=0,
        help="step 4: run the worker and Temporal at this niceness (the API answers first, the engine catches up)",
    )
    parser.add_argument(
        "--backend", choices=["postgresql", "sqlite"], default="postgresql" if postgres_listening() else "sqlite"
    )
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--out", type=Path, default=Path("bench/results/intake.json"))
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-intake-bench-"))
    group = ProcessGroup()
    measured: dict[str, Any] = {"read_model": args.backend, "loadavg_at_start": list(os.getloadavg())}
    try:
        url = asyncio.run(scratch_database(args.backend, args.pg_server, BENCH_DATABASE, tmp))
        upgrade(url)
        # Each server on a free port, and on another if a different process binds that one first.
        server, temporal_port = start_listening(
            group,
            "temporal",
            lambda p: temporal_command(db_file=tmp / "temporal.db", port=p, ui_port=None),
            log=tmp / "temporal.log",
        )
        env = {
            "RONGTUK_ENV": "dev",
            "RONGTUK_DATABASE_URL": url,
            "RONGTUK_DATA_DIR": str(tmp),
            "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "RONGTUK_TASK_QUEUE": QUEUE,
            "RONGTUK_LOG_LEVEL": "WARNING",
            "RONGTUK_DELIVERY_IN_WORKER": "false",
            "RONGTUK_RATE_INTAKE_PER_MINUTE": "0",
            "RONGTUK_RATE_TRACKING_PER_MINUTE": "0",
        }
        print(f"rongtuk intake bench, {started:%Y-%m-%d %H:%M} UTC, read model on {args.backend}", flush=True)
        measured["baseline_bare_start"] = asyncio.run(baseline_starts(args, url, temporal_port))
        alone = []
        for workers in args.api_workers:
            quiet = env | {"RONGTUK_INTAKE_RELAY_IN_API": "false", "RONGTUK_TASK_QUEUE": IDLE_QUEUE}
            api, api_port = start_listening(
                group,
                "api",
                lambda p, w=workers: _api_command(p, w),  # type: ignore[misc]
                env=quiet,
                log=tmp / f"api-{workers}.log",
                timeout=180,
            )
            alone.append(asyncio.run(api_alone(f"http://127.0.0.1:{api_port}", args, api.pid, workers)))
            group.stop("api")
        measured["api_alone"] = alone
        measured["relay_alone"] = asyncio.run(relay_alone(url, temporal_port, measured["baseline_bare_start"]))
        if args.relay_in == "worker":
            env["RONGTUK_INTAKE_RELAY_IN_API"] = "false"
        measured["relay_in"] = args.relay_in
        api, api_port = start_listening(
            group, "api", lambda p: _api_command(p, args.api_workers[0]), env=env, log=tmp / "api.log", timeout=180
        )
        worker = group.start("worker", [sys.executable, "-m", "worker"], env=env, log=tmp / "worker.log")
        pids = {"api": api.pid, "worker": worker.pid, "temporal": server.pid}
        if args.background_nice:
            for pid in (worker.pid, server.pid):
                lower_priority(pid, args.background_nice)
            measured["background_nice"] = args.background_nice
        measured |= asyncio.run(everything(args, url, api_port, pids))
        measured["everything_api_workers"] = args.api_workers[0]
    finally:
        group.stop()
        if args.backend == "postgresql":
            asyncio.run(drop_database(args.pg_server, BENCH_DATABASE))
        shutil.rmtree(tmp, ignore_errors=True)
    results = {
        "date": started.isoformat(),
        "machine": machine_info(),
        "loadavg_at_end": list(os.getloadavg()),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **measured,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return results


def lower_priority(pid: int, niceness: int) -> None:
    """Give every thread of a process (Linux schedules threads, and Go starts its own) a lower CPU priority;
    threads it starts later inherit it."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def _api_command(port: int, workers: int) -> list[str]:
    """The API as production runs it: ``rongtuk api --workers N`` (configuration from the environment)."""
    return [
        sys.executable,
        "-m",
        "cli.main",
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


if __name__ == "__main__":
    main()
