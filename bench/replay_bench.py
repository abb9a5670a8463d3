"""Benchmark replaying case histories and rebuilding the read model from them.

    .venv/bin/python -m bench.replay_bench [--passes 3] [--out bench/results/replay.json]

Input: the golden histories in ``tests/workflows/histories/`` (every version of the workflow, complaints and
agency tasks; real histories recorded by the workflow tests), read into memory before timing. Measured in one
process, each against the others:

* **parse only** (the floor): ``WorkflowHistory.from_json`` of every file.
* **one replay per history**: ``Replayer.replay_workflow`` once per history, with the workers' sandbox and
  codec, as ``rongtuk replay`` did before this bench.
* **batched replay**: ``Replayer.replay_workflows`` over all of them in one call (one replay worker for the
  whole batch), as ``rongtuk replay`` does now.
* **rebuild**: ``activities.rebuild.rebuild`` of every complaint history into a fresh read model (SQLite file,
  or ``--database-url``): replay with the capture interceptor, then the idempotent writes. Temporal is not
  involved: the histories come from the files, so the figure leaves out fetching them from the server (measured
  separately by ``--fetch-from`` when a server with cases is at hand). 100k cases are extrapolated from it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from bench import machine
from config.settings import Settings
from config.temporal import data_converter
from store.db import Database
from store.migrate import upgrade
from tests.workflows.histories import recorded
from worker import WORKFLOWS, build_replayer

TARGET_REPLAY_PER_S = 200.0
TARGET_REBUILD_100K_S = 600.0


def _load(paths: Sequence[Path]) -> list[tuple[str, str]]:
    return [(p.stem, p.read_text()) for p in paths]


def _parse(raw: Sequence[tuple[str, str]]) -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(name, text) for name, text in raw]


async def _iterate(histories: Sequence[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for h in histories:
        yield h


class _Clock:
    """Wall time and this process's CPU time (all threads) of a block: on a shared machine the CPU figure is
    what the work costs, the wall figure also what the neighbours took."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _rates(name: str, n: int, clock: _Clock) -> dict[str, float]:
    return {f"{name}_per_s": n / clock.wall, f"{name}_per_cpu_s": n / clock.cpu}


async def bench_replay(raw: Sequence[tuple[str, str]], settings: Settings, passes: int) -> dict[str, Any]:
    from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

    n = passes * len(raw)
    out: dict[str, Any] = {"histories": len(raw), "passes": passes}
    with _Clock() as c:
        for _ in range(passes):
            histories = _parse(raw)
    out |= _rates("parse", n, c)

    replayer = build_replayer(settings)
    await replayer.replay_workflow(histories[0], raise_on_replay_failure=False)  # warm the sandbox's imports
    failures = 0
    with _Clock() as c:
        for _ in range(passes):
            for h in histories:
                result = await replayer.replay_workflow(h, raise_on_replay_failure=False)
                failures += result.replay_failure is not None
    out |= _rates("one_by_one", n, c) | {"one_by_one_failures": failures}

    async def batched(r: Replayer) -> int:
        failed = 0
        for _ in range(passes):
            results = await r.replay_workflows(_iterate(_parse(raw)), raise_on_replay_failure=False)
            failed += len(results.replay_failures)
        return failed

    with _Clock() as c:
        out["batched_failures"] = await batched(replayer)
    out |= _rates("batched", n, c)
    # The same batch without the sandbox (what the rebuild's replays use): what the sandbox costs.
    plain = Replayer(
        workflows=WORKFLOWS, data_converter=data_converter(settings), workflow_runner=UnsandboxedWorkflowRunner()
    )
    with _Clock() as c:
        out["unsandboxed_failures"] = await batched(plain)
    out |= _rates("unsandboxed", n, c)
    out["batched_vs_one_by_one"] = out["batched_per_cpu_s"] / out["one_by_one_per_cpu_s"]
    out["target_per_s"] = TARGET_REPLAY_PER_S
    out["met"] = out["batched_per_s"] >= TARGET_REPLAY_PER_S
    out["met_per_cpu_s"] = out["batched_per_cpu_s"] >= TARGET_REPLAY_PER_S
    return out


class _FileReader:
    """A HistoryReader whose histories come from files instead of the Temporal server."""

    def __init__(self, histories: dict[str, WorkflowHistory], settings: Settings) -> None:
        from activities.rebuild import HistoryReader

        class _Client:
            data_converter = data_converter(settings)

        self._inner = HistoryReader(_Client(), WORKFLOWS)  # type: ignore[arg-type]
        self._inner.runs = self._runs  # type: ignore[method-assign]
        self._histories = histories

    async def _runs(self, workflow_id: str) -> list[WorkflowHistory]:
        return [self._histories[workflow_id.removeprefix("complaint-")]]

    @property
    def reader(self) -> Any:
        return self._inner


async def bench_rebuild(raw: Sequence[tuple[str, str]], settings: Settings, database_url: str | None) -> dict[str, Any]:
    from activities import rebuild as rebuild_module

    # One history per case: the complaint runs, keyed by case number (agency tasks are not read).
    by_case = {
        h.workflow_id.removeprefix("complaint-"): h
        for h in _parse(raw)
        if h.workflow_id.startswith("complaint-") and "-task-" not in h.workflow_id
    }
    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-rebuild-"))
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'rebuild.db'}"
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url, writer=True)
        reader = _FileReader(by_case, settings).reader

        async def ids(client: Any, *, since: Any = None, case_id: Any = None) -> AsyncIterator[str]:
            for case in by_case:
                yield case

        original = rebuild_module.case_ids
        rebuild_module.case_ids = ids  # type: ignore[assignment]
        try:
            with _Clock() as clock:
                report = await rebuild_module.rebuild(reader=reader, db=db)
            seconds = clock.wall
        finally:
            rebuild_module.case_ids = original  # type: ignore[assignment]
        await db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_case = seconds / max(report.cases, 1)
    return {
        "backend": url.split(":")[0],
        "cases": report.cases,
        "transitions": report.transitions,
        "failed": len(report.failed),
        "seconds": seconds,
        "cases_per_s": report.cases / seconds if seconds else None,
        "cases_per_cpu_s": report.cases / clock.cpu if clock.cpu else None,
        "extrapolated_100k_cpu_s": clock.cpu / max(report.cases, 1) * 100_000,
        "transitions_per_case": report.transitions / max(report.cases, 1),
        "extrapolated_100k_s": per_case * 100_000,
        "target_100k_s": TARGET_REBUILD_100K_S,
        "met_extrapolated": per_case * 100_000 < TARGET_REBUILD_100K_S,
    }


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="rebuild into this read model (migrated, rows left)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/replay.json"))
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    info = machine.machine_info()
    settings = Settings(env="test")
    raw = _load(recorded())
    print(f"rongtuk replay bench, {started:%Y-%m-%d %H:%M} UTC, {len(raw)} histories, load {info['loadavg_at_start']}")
    replay = await bench_replay(raw, settings, args.passes)
    print(f"  {'':<30} {'wall /s':>9} {'per CPU-s':>10}")
    for key, label in (
        ("parse", "parse only (floor)"),
        ("one_by_one", "one replay per history"),
        ("batched", "batched replay_workflows"),
        ("unsandboxed", "batched, no sandbox"),
    ):
        print(f"  {label:<30} {replay[key + '_per_s']:>9.1f} {replay[key + '_per_cpu_s']:>10.1f}")
    print(
        f"  target {TARGET_REPLAY_PER_S:.0f}/s: {'met' if replay['met'] else 'MISSED'} (wall), "
        f"{'met' if replay['met_per_cpu_s'] else 'MISSED'} (per CPU-second); failures {replay['batched_failures']}"
    )
    rebuild = await bench_rebuild(raw, settings, args.database_url)
    print(
        f"  rebuild ({rebuild['backend']})           {rebuild['cases_per_s']:>8.1f} cases/s "
        f"({rebuild['cases']} cases, {rebuild['transitions_per_case']:.1f} transitions each, {rebuild['failed']} "
        f"failed); 100k cases: {rebuild['extrapolated_100k_s'] / 60:.1f} min extrapolated "
        f"({rebuild['extrapolated_100k_cpu_s'] / 60:.1f} CPU-min) "
        f"({'met' if rebuild['met_extrapolated'] else 'MISSED'})"
    )
    info["loadavg_at_end"] = list(os.getloadavg())
    results = {
        "date": started.isoformat(),
        "machine": info,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "replay": replay,
        "rebuild": rebuild,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    asyncio.run(main())
