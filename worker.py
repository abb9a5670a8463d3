"""The worker: composition root that wires workflows to real activities. Run any number of these."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notifications import NotificationActivities
from activities.projection import ReadModelActivities
from activities.rebuild import HistoryReader
from activities.sla import SlaActivities
from config.logging import configure_logging
from config.settings import Settings, get_settings
from config.temporal import connect, data_converter
from delivery.dispatcher import start_dispatcher
from sla.policy import load_policy
from store.db import Database
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
    sla = sla or SlaActivities(settings.calendar(), load_policy(settings.sla_policy_file))
    history = HistoryReader(client, WORKFLOWS).transitions if client is not None else None
    read_model = ReadModelActivities(db, history=history)
    notifications = NotificationActivities(db)
    return [
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
        max_cached_workflows=2000,
        workflow_runner=workflow_runner(),
    )


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in, the same for workers and replayers."""
    # Pure, immutable modules: importing them afresh for every workflow cost ~30% of the worker's CPU
    # (bench/README.md); passed through, the sandbox still guards the workflow code itself.
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_replayer(settings: Settings) -> Replayer:
    """A replayer with exactly the workers' workflows, sandbox and payload codec (for ``rongtuk replay``)."""
    return Replayer(workflows=WORKFLOWS, data_converter=data_converter(settings), workflow_runner=workflow_runner())


async def main(settings: Settings | None = None) -> None:
    """Connect, serve until cancelled, and close the database cleanly."""
    settings = settings or get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    db = Database(settings.database_url, writer=True)
    client = await connect(settings)
    log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
    # Notification delivery runs beside the workflows, never inside them: a gateway that is down delays
    # messages, not cases (delivery/dispatcher.py).
    delivery = start_dispatcher(settings, db) if settings.delivery_in_worker else None
    try:
        await build_worker(client, settings, db).run()
    finally:
        if delivery is not None:
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
