"""Benchmark the worker's memory with many open cases: RSS against the number of cases in its sticky cache.

    .venv/bin/python -m bench.memory_bench [--cases 400] [--steps 4] [--cache 2000] [--out bench/results/memory.json]

Starts ``temporal server start-dev`` (a WAL SQLite file in a temporary directory, a free port) and the real
worker as its own process (``python -m worker``, SQLite read model, ``RONGTUK_WORKER_MAX_CACHED_WORKFLOWS`` set
by ``--cache``), then opens cases in steps and samples the worker's RSS (``/proc/<pid>/status``) after each
step once it has settled. Each case is filed, screened, accepted for one agency and accepted by it, so it
holds two open workflows (the case and its agency task, both waiting days for people) as most open cases do.
The baseline is the same worker with no case (the first sample). The slope (MiB per open case while every case
fits in the cache) gives the RSS at 10,000 cases and the cache size that keeps the worker under 300 MiB; a run
with ``--cache`` below ``--cases`` shows the plateau.
"""

from __future__ import annotations

import argparse
import asyncio
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

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from bench import machine
from cli.devserver import ProcessGroup, free_port, temporal_command, wait_for_port
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


async def open_case(client: Client, case_id: str) -> None:
    handle = await client.start_workflow(
        ComplaintWorkflow.run,
        CaseInput(case_id, case_id[-10:], complaint(), CITIZEN, search_attributes=False),
        id=workflow_id_for(case_id),
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await handle.execute_update(ComplaintWorkflow.receipt)
    for k, (event, actor, payload) in enumerate(STEPS):
        await handle.execute_update(ComplaintWorkflow.act, ActionRequest(event, actor, dict(payload)), id=f"{k}")


async def settle(pid: int, *, seconds: float = 3.0, samples: int = 3) -> float:
    """RSS once the worker is idle again: the highest of a few samples a second apart."""
    await asyncio.sleep(seconds)
    values = []
    for _ in range(samples):
        values.append(rss_mib(pid))
        await asyncio.sleep(1.0)
    return max(values)


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--cache", type=int, default=2000, help="the worker's max_cached_workflows")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results/memory.json"))
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    info = machine.machine_info()
    print(
        f"rongtuk memory bench, {started:%Y-%m-%d %H:%M} UTC, {args.cases} cases, cache {args.cache}, "
        f"load {info['loadavg_at_start']}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-memory-"))
    group = ProcessGroup()
    port = free_port()
    url = f"sqlite+aiosqlite:///{tmp / 'rongtuk.db'}"
    samples: list[dict[str, float]] = []
    try:
        server = group.start(
            "temporal", temporal_command(db_file=tmp / "temporal.db", port=port, ui_port=None), log=tmp / "temporal.log"
        )
        wait_for_port(port, proc=server)
        await asyncio.to_thread(upgrade, url)
        env = {
            "RONGTUK_ENV": "test",
            "RONGTUK_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "RONGTUK_DATABASE_URL": url,
            "RONGTUK_DATA_DIR": str(tmp),
            "RONGTUK_TASK_QUEUE": TASK_QUEUE,
            "RONGTUK_SEARCH_ATTRIBUTES": "false",
            "RONGTUK_DELIVERY_IN_WORKER": "false",
            "RONGTUK_LOG_LEVEL": "WARNING",
            "RONGTUK_WORKER_MAX_CACHED_WORKFLOWS": str(args.cache),
        }
        worker = group.start("worker", [sys.executable, "-m", "worker"], env=env, log=tmp / "worker.log")
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter(Settings(env="test")))
        # One case first, so that the baseline includes the imports and the sandbox's first workflow.
        await open_case(client, f"RT-MEM-{os.getpid()}-W")
        base = await settle(worker.pid)
        samples.append({"open_cases": 0, "rss_mib": base, "seconds": 0.0})
        print(f"  {'open cases':>10} {'workflows':>10} {'RSS MiB':>9} {'MiB/case':>9}")
        print(f"  {0:>10} {0:>10} {base:>9.1f}")
        gate = asyncio.Semaphore(args.concurrency)
        done = 0
        t0 = time.perf_counter()

        async def one(n: int) -> None:
            async with gate:
                await open_case(client, f"RT-MEM-{os.getpid()}-{n:06d}")

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
    cached = [s for s in samples if 2 * s["open_cases"] <= args.cache]
    slope = (cached[-1]["rss_mib"] - base) / cached[-1]["open_cases"] if len(cached) > 1 else None
    result: dict[str, Any] = {
        "date": started.isoformat(),
        "machine": info | {"loadavg_at_end": list(os.getloadavg())},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "baseline_rss_mib": base,
        "samples": samples,
        "mib_per_open_case": slope,
        "mib_per_cached_workflow": slope / 2 if slope else None,
    }
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
