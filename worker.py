"""The worker: composition root that wires workflows to real activities. Run any number of these."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notifications import NotificationActivities
from activities.projection import ReadModelActivities
from activities.sla import SlaActivities
from config.logging import configure_logging
from config.settings import Settings, get_settings
from config.temporal import connect
from delivery.dispatcher import start_dispatcher
from sla.policy import load_policy
from store.db import Database
from workflows.agency_task import AgencyTaskWorkflow
from workflows.complaint import ComplaintWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS = [ComplaintWorkflow, AgencyTaskWorkflow]
PASSTHROUGH_MODULES = ("workflows.process", "workflows.models", "workflows.search_attributes", "dateutil")


def build_activities(settings: Settings, db: Database, *, sla: SlaActivities | None = None) -> list[Callable[..., Any]]:
    """The activity callables this worker serves, bound to their dependencies (tests may bring their own
    calendar and policy in ``sla``)."""
    sla = sla or SlaActivities(settings.calendar(), load_policy(settings.sla_policy_file))
    read_model = ReadModelActivities(db)
    notifications = NotificationActivities(db)
    return [
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
        activities=build_activities(settings, db, sla=sla),
        max_cached_workflows=2000,
        workflow_runner=SandboxedWorkflowRunner(
            # Pure, immutable modules: importing them afresh for every workflow cost ~30% of the worker's
            # CPU (bench/README.md); passed through, the sandbox still guards the workflow code itself.
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )


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
