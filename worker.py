"""The worker: composition root that wires workflows to real activities. Run any number of these."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notifications import NotificationActivities
from activities.projection import ReadModelActivities
from activities.rebuild import HistoryReader
from activities.screening import ScreeningActivities
from activities.sla import SlaActivities
from config.bytecode import cache_workflow_bytecode
from config.heap import after_start_up
from config.logging import configure_logging
from config.reference import category_classes
from config.settings import Settings, get_settings
from config.temporal import connect, data_converter, worker_runtime
from delivery.dispatcher import start_dispatcher
from followup.job import start as start_followups
from intake.relay import start_relay
from sla.policy import load_policy
from store.db import Database, open_database
from workflows.agency_task import AgencyTaskWorkflow
from workflows.complaint import ComplaintWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS: list[type] = [ComplaintWorkflow, AgencyTaskWorkflow]
PASSTHROUGH_MODULES = (
    "workflows.process",
    "workflows.models",
    "workflows.case_rules",
    "workflows.search_attributes",
    "domain",
    "sla.rules",
    "dateutil",
)


def build_activities(
    settings: Settings, db: Database, *, client: Client | None = None, sla: SlaActivities | None = None
) -> list[Callable[..., Any]]:
    """The activity callables this worker serves, bound to their dependencies (tests may bring their own
    calendar and policy in ``sla``). With a ``client``, the projection re-projects cases it finds behind."""
    sla = sla or SlaActivities(settings.calendar(), load_policy(settings.sla_policy_file), category_classes(settings))
    history = HistoryReader(client, WORKFLOWS).transitions if client is not None else None
    read_model = ReadModelActivities(db, history=history)
    notifications = NotificationActivities(db)
    screening = ScreeningActivities(settings)
    return [
        screening.auto_screen,
        read_model.record_transition,
        # Version 1 of the write, for cases whose histories were recorded before record_transition.
        read_model.project_event,
        notifications.notify,
        sla.sla_schedule,
        sla.working_days_left,
        sla.sla_policy,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    db: Database,
    *,
    task_queue: str | None = None,
    sla: SlaActivities | None = None,
) -> Worker:
    """A worker for the case workflows on ``task_queue`` (default: the configured one)."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings, db, client=client, sla=sla),
        max_cached_workflows=settings.worker_max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
        workflow_runner=workflow_runner(),
    )


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in, the same for workers and replayers. It imports the workflows' own
    modules afresh for every instance: their bytecode is cached first, so that each import reads it instead of
    compiling the source (config/bytecode.py)."""
    cache_workflow_bytecode(WORKFLOWS)
    # Pure, immutable modules: importing them afresh for every workflow cost ~30% of the worker's CPU
    # (bench/README.md); passed through, the sandbox still guards the workflow code itself.
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_replayer(settings: Settings) -> Replayer:
    """A replayer with exactly the workers' workflows, sandbox and payload codec (for ``rongtuk replay``)."""
    return Replayer(workflows=WORKFLOWS, data_converter=data_converter(settings), workflow_runner=workflow_runner())


async def connect_until_stopped(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Connect to Temporal, retrying with backoff while it is away; ``None`` once ``stop`` is set."""
    delay = 0.5
    runtime = worker_runtime(settings)
    for attempt in itertools.count(1):
        attempt_task = asyncio.ensure_future(connect(settings, runtime=runtime))
        stop_task = asyncio.ensure_future(stop.wait())
        await asyncio.wait({attempt_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        if stop.is_set():
            attempt_task.cancel()
            return None
        try:
            return attempt_task.result()
        except RuntimeError as exc:  # the SDK's "Failed client connect: ..." (refused, DNS, TLS)
            log.warning("temporal_unreachable", attempt=attempt, retry_in=delay, error=str(exc).splitlines()[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


async def main(settings: Settings | None = None) -> int:
    """Connect, serve until SIGINT/SIGTERM, stop within the grace period; the process's exit code."""
    settings = settings or get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    db = open_database(settings, writer=True, timeout=settings.database_timeout_seconds)
    delivery: asyncio.Task[None] | None = None
    relay: asyncio.Task[None] | None = None
    followups: asyncio.Task[None] | None = None
    try:
        client = await connect_until_stopped(settings, stop)
        if client is None:
            log.info("worker_stopped", before="connecting")
            return 0
        worker = build_worker(client, settings, db)
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
        # Notification delivery runs beside the workflows, never inside them: a gateway that is down delays
        # messages, not cases (delivery/dispatcher.py).
        delivery = start_dispatcher(settings, db) if settings.delivery_in_worker else None
        # Complaints the API committed but could not start (Temporal was away, the API stopped): this
        # worker's relay starts them (intake/relay.py); relays in many processes share the work.
        if settings.intake_relay_in_worker:
            _, relay = start_relay(db, client, settings)
        # Beside it, the "was it fixed?" questions some weeks after a closure (followup/job.py).
        followups = start_followups(db, settings) if settings.delivery_in_worker else None
        after_start_up(settings)
        running = asyncio.ensure_future(worker.run())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():  # the worker failed on its own (e.g. the namespace is missing)
            stopping.cancel()
            log.error("worker_failed", error=repr(running.exception()))
            return 1
        # The SDK's shutdown waits for its pollers, which retry for as long as Temporal is away: bound it.
        shutdown = asyncio.ensure_future(worker.shutdown())
        done, _ = await asyncio.wait({running}, timeout=settings.shutdown_grace_seconds + 2)
        shutdown.cancel()
        log.info("worker_stopped", clean=bool(done))
        if not done:
            # Leave now: cancelling the SDK's tasks on the way out of asyncio.run could wait on them again.
            await db.dispose()
            _exit_now(0)
        return 0
    finally:
        for task in (delivery, relay, followups):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await db.dispose()


def _exit_now(code: int) -> None:
    # Skip interpreter teardown: the SDK's Rust threads may still hold pollers, and they can hang or abort
    # finalisation (temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run() -> None:
    """Run a worker process until SIGINT/SIGTERM."""
    _exit_now(asyncio.run(main()))


if __name__ == "__main__":
    run()
