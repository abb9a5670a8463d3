"""Readiness for orchestrators (``/readyz``) and a status page for operators: is each piece reachable now?

Every check has its own timeout, so a hung dependency makes the answer "not ready", never a hung probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from api.auth import StaffRole
from api.deps import OptionalPrincipal, SessionDep, SettingsDep
from api.routes.pages import render_page
from api.routes.staff import gate
from store.db import release
from store.queries import open_cases_by_state
from workflows.process import STATE_LABELS, State

router = APIRouter(tags=["ops"])
pages_router = APIRouter(tags=["pages"], include_in_schema=False)
TIMEOUT = 3.0
OPERATORS = frozenset({StaffRole.ADMIN, StaffRole.SUPERVISOR, StaffRole.AUDITOR})


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def _run(name: str, probe: Awaitable[str]) -> Check:
    try:
        return Check(name, True, await asyncio.wait_for(probe, TIMEOUT))
    except TimeoutError:
        return Check(name, False, f"no answer within {TIMEOUT:.0f} s")
    except LookupError as exc:  # our own finding, e.g. no worker polls the queue
        return Check(name, False, str(exc))
    except Exception as exc:
        return Check(name, False, type(exc).__name__)


async def _database(request: Request) -> str:
    async with request.app.state.db.sessions() as session:
        await session.execute(text("SELECT 1"))
    return "SELECT 1 answered"


async def _temporal(request: Request) -> str:
    await request.app.state.temporal.service_client.check_health(timeout=timedelta(seconds=TIMEOUT))
    return "frontend healthy"


async def _worker(request: Request) -> str:
    client = request.app.state.temporal
    queue = request.app.state.settings.task_queue
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        timeout=timedelta(seconds=TIMEOUT),
    )
    if not answer.pollers:
        raise LookupError(f"no worker polls {queue}")
    return f"{len(answer.pollers)} worker(s) polling {queue}"


async def checks(request: Request) -> list[Check]:
    """The database, the Temporal frontend and a worker on the task queue, checked at once."""
    return list(
        await asyncio.gather(
            _run("database", _database(request)),
            _run("temporal", _temporal(request)),
            _run("worker", _worker(request)),
        )
    )


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database, Temporal and a worker answer, 503 with what failed otherwise."""
    found = await checks(request)
    ready = all(c.ok for c in found)
    body: dict[str, Any] = {
        "status": "ready" if ready else "not_ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in found},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@pages_router.get("/status", response_class=HTMLResponse)
async def status_page(
    request: Request, session: SessionDep, settings: SettingsDep, principal: OptionalPrincipal
) -> Response:
    """The operators' page: readiness of each piece and the open cases by state."""
    if (refused := gate(request, principal, OPERATORS)) is not None:
        return refused
    await release(session)  # the checks take a connection of their own, and wait on Temporal
    found = await checks(request)
    # In the process's order (received, screening, ... stage 2), each with its board (supervisors).
    labels = {state.value: label for state, label in STATE_LABELS.items()}
    order = {state.value: i for i, state in enumerate(State)}
    counted = sorted((await open_cases_by_state(session)).items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    open_cases = [(state, labels.get(state, (state, state)), n) for state, n in counted]
    ready = all(c.ok for c in found)
    # A page for people: it answers 200 and says what is wrong; /readyz is the probe that answers 503.
    return render_page(request, settings, "status.html", checks=found, ready=ready, open_cases=open_cases)
