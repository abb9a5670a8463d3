"""Benchmark the worker's memory with many open cases: RSS against the number of cases in its sticky cache.

    .venv/bin/python -m bench.memory_bench [--cases 400] [--steps 4] [--cache 2000] [--out bench/results/memory.json]
    .venv/bin/python -m bench.memory_bench --open 10000 [--task-share 0.1] [--cache 300]   # the target itself
    # options: --backend sqlite|postgresql  --as-deployed  --start-concurrency 50  --sample-seconds 5

Starts ``temporal server start-dev`` (a WAL SQLite file in a temporary directory, a free port) and the real
worker as its own process (``python -m worker``, ``RONGTUK_WORKER_MAX_CACHED_WORKFLOWS`` set by ``--cache``; the
read model a SQLite file, or with ``--backend postgresql`` the database ``--pg-database``, dropped and created
for the run), then opens cases in steps and samples the worker's RSS (``/proc/<pid>/status``) after each
step once it has settled. Each case is filed, screened, accepted for one agency and accepted by it, so it
holds two open workflows (the case and its agency task, both waiting days for people) as most open cases do.
Two baselines: the worker started and polling before it has run any workflow (``idle_rss_mib``: imports, the
SDK's core, the read model's driver), then the same worker after one case (``baseline_rss_mib``: the sandbox's
modules imported too). The slope (MiB per open case while every case fits in the cache) gives the RSS at 10,000
cases and the cache size that keeps the worker under 300 MiB; a run with ``--cache`` below ``--cases`` shows the
plateau.

``--open N`` measures the target itself instead of extrapolating: N cases open at once under the default sticky
cache (``--cache`` to try another size). Opening them the way people do (four updates each) would take most of
an hour here, so they are started directly with a client, ``--start-concurrency`` (50) at a time, each waiting
for its receipt (so the measured worker has run each one's first task, and the read model holds its row): the
workflow files itself and sleeps on its screening deadline, as a complaint waiting for PSC does. Once all are
filed, a share of them (``--task-share``, 0.1, spread over the set) is screened, accepted and accepted by the
agency (``--concurrency`` at a time), so that each holds an agency-task child too and the cache ends full of
cases that moved last. RSS, the worker's and the server's CPU and the load average are sampled every
``--sample-seconds`` from the first start to the end (``population.timeline``), then once settled.

The worker runs with the test environment's settings (no search attributes, WARNING logs, no delivery in the
worker) unless ``--as-deployed``: search attributes on, INFO logs as JSON, the delivery dispatcher and the
follow-up job beside the workflows (no gateway configured: messages are logged as not sent), as a deployment
runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from bench import machine
from bench.scratch import drop_database, scratch_database
from cli.devserver import ProcessGroup, start_listening, temporal_command
from config.settings import Settings
from config.temporal import data_converter
from store.migrate import upgrade
from tests.workflows.paths import CITIZEN, DOPA, OFFICER, complaint
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.models import ActionRequest, CaseInput

TASK_QUEUE = "rongtuk-memory-bench"
TARGET_MIB = 300.0
TARGET_CASES = 10_000
STEPS = [
    ("screen", OFFICER, {}),
    ("accept", OFFICER, {"category": "roads", "agencies": ["DOPA"]}),
    ("agency_accept", DOPA, {}),
]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def worker_env(*, port: int, url: str, tmp: Path, cache: int, as_deployed: bool) -> dict[str, str]:
    """The measured worker's settings: the test environment's (no search attributes, WARNING logs, no delivery),
    or with ``as_deployed`` the worker as a deployment runs it: search attributes, INFO logs as JSON, delivery
    (no gateway configured: messages are only logged) and the follow-up job beside the workflows."""
    env = {
        "RONGTUK_ENV": "test",
        "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "RONGTUK_DATABASE_URL": url,
        "RONGTUK_DATA_DIR": str(tmp),
        "RONGTUK_TASK_QUEUE": TASK_QUEUE,
        "RONGTUK_SEARCH_ATTRIBUTES": "false",
        "RONGTUK_DELIVERY_IN_WORKER": "false",
        "RONGTUK_LOG_LEVEL": "WARNING",
        "RONGTUK_WORKER_MAX_CACHED_WORKFLOWS": str(cache),
    }
    if as_deployed:
        env |= {
            "RONGTUK_SEARCH_ATTRIBUTES": "true",
            "RONGTUK_DELIVERY_IN_WORKER": "true",
            "RONGTUK_LOG_LEVEL": "INFO",
            "RONGTUK_LOG_FORMAT": "json",
        }
    return env


async def file_case(client: Client, case_id: str, *, search_attributes: bool = False) -> WorkflowHandle[Any, Any]:
    """File one case and wait for its receipt (retried: on a loaded machine a first task may time out once)."""
    handle = await client.start_workflow(
        ComplaintWorkflow.run,
        CaseInput(case_id, case_id[-10:], complaint(), CITIZEN, search_attributes=search_attributes),
        id=workflow_id_for(case_id),
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    # Waiting for the receipt is also the back-pressure: thousands of first workflow tasks at once outlast their
    # 10 s timeout in the worker; the update is refused until a timed-out task's retry.
    for attempt in range(30):
        try:
            await handle.execute_update(ComplaintWorkflow.receipt)
            return handle
        except RPCError:
            await asyncio.sleep(min(1.0 + attempt, 10.0))
    raise RuntimeError(f"{case_id} was not filed")


async def give_agency_task(handle: WorkflowHandle[Any, Any]) -> None:
    """Screen, accept for one agency and have it accept: the case then holds an agency-task child too."""
    for k, (event, actor, payload) in enumerate(STEPS):
        await handle.execute_update(ComplaintWorkflow.act, ActionRequest(event, actor, dict(payload)), id=f"{k}")


async def open_case(client: Client, case_id: str, *, search_attributes: bool = False) -> None:
    """File one case and take it to the agency (two open workflows)."""
    await give_agency_task(await file_case(client, case_id, search_attributes=search_attributes))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle(pid: int, *, limit: float = 90.0) -> float:
    """RSS of a worker that has started and polls but has run no workflow: once it has not moved for 5 s."""
    values: list[float] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        values.append(rss_mib(pid))
        if len(values) >= 6 and max(values[-6:]) - min(values[-6:]) < 0.5:
            break
        await asyncio.sleep(1.0)
    return values[-1]


async def settle(pid: int, *, seconds: float = 3.0, samples: int = 3) -> float:
    """RSS once the worker is idle again: the highest of a few samples a second apart."""
    await asyncio.sleep(seconds)
    values = []
    for _ in range(samples):
        values.append(rss_mib(pid))
        await asyncio.sleep(1.0)
    return max(values)


async def filed(url: str, prefix: str) -> int:
    """How many of this run's cases the worker has filed (their rows are in the read model)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT count(*) FROM cases WHERE case_id LIKE :p"), {"p": f"{prefix}%"})
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def populate(
    client: Client, pid: int, server_pid: int, url: str, args: argparse.Namespace, base: float
) -> dict[str, Any]:
    """Open ``args.open`` cases at once (``--task-share`` of them with an agency task) and sample RSS over time."""
    prefix = f"RT-MEMO-{os.getpid()}-"
    timeline: list[dict[str, float]] = []
    t0 = time.perf_counter()
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            n = await filed(url, prefix)
            timeline.append(
                {
                    "seconds": round(time.perf_counter() - t0, 1),
                    "filed": n,
                    "rss_mib": rss_mib(pid),
                    "worker_cpu_s": round(cpu_seconds(pid), 1),
                    "server_cpu_s": round(cpu_seconds(server_pid), 1),
                    "loadavg_1m": os.getloadavg()[0],
                }
            )
            row = timeline[-1]
            print(
                f"  {row['seconds']:>8.0f}s {n:>8} filed {row['rss_mib']:>8.1f} MiB"
                f"  cpu worker {row['worker_cpu_s']:>7.0f} s server {row['server_cpu_s']:>7.0f} s"
                f"  load {row['loadavg_1m']:.1f}",
                flush=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.sample_seconds)

    sampling = asyncio.create_task(sampler())
    gate = asyncio.Semaphore(args.start_concurrency)

    async def start(n: int) -> None:
        async with gate:
            await file_case(client, f"{prefix}{n:06d}", search_attributes=args.as_deployed)

    with_task = int(args.open * args.task_share)
    gate_steps = asyncio.Semaphore(args.concurrency)

    async def give_task(n: int) -> None:
        async with gate_steps:
            await give_agency_task(client.get_workflow_handle(workflow_id_for(f"{prefix}{n:06d}")))

    try:
        await asyncio.gather(*(start(n) for n in range(args.open)))
        started_s = time.perf_counter() - t0
        # Updates sent now would wait behind thousands of first workflow tasks: the filing goes first.
        while await filed(url, prefix) < args.open:  # noqa: ASYNC110 (the read model is polled, not awaited)
            await asyncio.sleep(args.sample_seconds)
        filed_s = time.perf_counter() - t0
        # Every n-th case gets its agency task, spread over the set so that they are not all the newest.
        every = max(1, round(args.open / with_task)) if with_task else 0
        await asyncio.gather(*(give_task(n) for n in (range(0, args.open, every)[:with_task] if every else [])))
        opened_s = time.perf_counter() - t0
    finally:
        stop.set()
        await sampling
    final = await settle(pid)
    peak = max([s["rss_mib"] for s in timeline] + [final])
    print(
        f"  {args.open:,} open cases ({with_task:,} with an agency task) in {opened_s:.0f} s, cache {args.cache}: "
        f"RSS {final:.0f} MiB settled, {peak:.0f} MiB peak (baseline {base:.0f}; target {TARGET_MIB:.0f})"
    )
    return {
        "open_cases": args.open,
        "with_agency_task": with_task,
        "open_workflows": args.open + with_task,
        "started_s": started_s,
        "filed_s": filed_s,
        "opened_s": opened_s,
        "rss_settled_mib": final,
        "rss_peak_mib": peak,
        "meets_target": peak <= TARGET_MIB,
        "timeline": timeline,
    }


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--cache", type=int, default=2000, help="the worker's max_cached_workflows")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--open", type=int, default=0, help="open this many cases at once (see above) instead")
    parser.add_argument("--task-share", type=float, default=0.1, help="with --open: the share given an agency task")
    parser.add_argument("--start-concurrency", type=int, default=50)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="the read model the worker writes"
    )
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="rongtuk_memory_bench", help="dropped and created for the run")
    parser.add_argument(
        "--as-deployed",
        action="store_true",
        help="search attributes, INFO logs as JSON and delivery in the worker, as a deployment runs it",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/memory.json"))
    args = parser.parse_args(argv)
    if args.open and "--cache" not in (argv if argv is not None else sys.argv):
        args.cache = Settings(env="test").worker_max_cached_workflows  # the default a deployment runs with
    started = datetime.now(UTC)
    info = machine.machine_info()
    print(
        f"rongtuk memory bench, {started:%Y-%m-%d %H:%M} UTC, {args.open or args.cases} cases"
        f"{' open at once' if args.open else ''}, cache {args.cache}, {args.backend}, load {info['loadavg_at_start']}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-memory-"))
    group = ProcessGroup()
    url = await scratch_database(args.backend, args.pg_server, args.pg_database, tmp)
    samples: list[dict[str, float]] = []
    population: dict[str, Any] = {}
    idle_rss = 0.0
    try:
        server, port = start_listening(
            group,
            "temporal",
            lambda p: temporal_command(db_file=tmp / "temporal.db", port=p, ui_port=None),
            log=tmp / "temporal.log",
        )
        await asyncio.to_thread(upgrade, url)
        env = worker_env(port=port, url=url, tmp=tmp, cache=args.cache, as_deployed=args.as_deployed)
        worker = group.start("worker", [sys.executable, "-m", "worker"], env=env, log=tmp / "worker.log")
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter(Settings(env="test")))
        # The worker started and polling, no workflow run yet: imports, the SDK's core, the activities' clients.
        idle_rss = await idle(worker.pid)
        print(f"  idle worker (no case run yet): {idle_rss:.1f} MiB", flush=True)
        # Then one case, so that the baseline includes the sandbox's first workflow (its modules imported).
        await open_case(client, f"RT-MEM-{os.getpid()}-W", search_attributes=args.as_deployed)
        base = await settle(worker.pid)
        samples.append({"open_cases": 0, "rss_mib": base, "seconds": 0.0})
        if args.open:
            population = await populate(client, worker.pid, server.pid, url, args, base)
            args.cases = 0
        print(f"  {'open cases':>10} {'workflows':>10} {'RSS MiB':>9} {'MiB/case':>9}")
        print(f"  {0:>10} {0:>10} {base:>9.1f}")
        gate = asyncio.Semaphore(args.concurrency)
        done = 0
        t0 = time.perf_counter()

        async def one(n: int) -> None:
            async with gate:
                await open_case(client, f"RT-MEM-{os.getpid()}-{n:06d}", search_attributes=args.as_deployed)

        per_step = max(1, args.cases // args.steps)
        while done < args.cases:
            batch = range(done, min(args.cases, done + per_step))
            await asyncio.gather(*(one(n) for n in batch))
            done = batch.stop
            rss = await settle(worker.pid)
            samples.append({"open_cases": done, "rss_mib": rss, "seconds": time.perf_counter() - t0})
            print(f"  {done:>10} {2 * done:>10} {rss:>9.1f} {(rss - base) / done:>9.4f}", flush=True)
    finally:
        group.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.backend == "postgresql":
            await drop_database(args.pg_server, args.pg_database)
    cached = [s for s in samples if 2 * s["open_cases"] <= args.cache]
    slope = (cached[-1]["rss_mib"] - base) / cached[-1]["open_cases"] if len(cached) > 1 else None
    result: dict[str, Any] = {
        "date": started.isoformat(),
        "machine": info | {"loadavg_at_end": list(os.getloadavg())},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "idle_rss_mib": idle_rss,
        "baseline_rss_mib": base,
        "samples": samples,
        "mib_per_open_case": slope,
        "mib_per_cached_workflow": slope / 2 if slope else None,
    }
    if args.open:
        result["population"] = population
    if slope:
        all_cached = base + slope * TARGET_CASES
        budget_workflows = int((TARGET_MIB - base) / (slope / 2))
        result |= {
            "rss_10k_cases_all_cached_mib": all_cached,
            "max_cached_workflows_for_300_mib": budget_workflows,
            "rss_at_configured_cache_mib": base + slope / 2 * args.cache,
        }
        print(
            f"  baseline {base:.0f} MiB; {slope * 1024:.1f} KiB per open case ({slope / 2 * 1024:.1f} KiB per "
            f"cached workflow); 10,000 cases all cached: {all_cached:.0f} MiB; cache of {args.cache} workflows: "
            f"{base + slope / 2 * args.cache:.0f} MiB; 300 MiB allows {budget_workflows:,} cached workflows"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
