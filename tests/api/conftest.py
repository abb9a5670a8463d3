"""The real app, wired to the real Temporal dev server and a worker on a fresh task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal, StaffRole, issue_access_token
from api.main import create_app
from config.settings import Settings
from store import models
from store.audit import chain_row
from store.chain import event_hash
from store.db import Database
from tests.connection_guard import Guard
from worker import build_worker

# Long enough for the whole suite: these headers are built once, at import.
_TOKENS = Settings(env="test", access_token_minutes=120)


def bearer(subject: str, role: str, agency: str | None = None) -> dict[str, str]:
    """An Authorization header as the app issues it at sign-in (the tests share the app's dev secret)."""
    principal = Principal(subject=subject, role=StaffRole(role), agency=agency)
    token, _ = issue_access_token(_TOKENS, principal, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


OFFICER = bearer("officer-7", "officer")
SUPERVISOR = bearer("sup-1", "supervisor")
AUDITOR = bearer("aud-1", "auditor")


def agency(code: str, *, head: bool = False) -> dict[str, str]:
    return bearer(f"{code.lower()}-{'head' if head else 'staff'}", "agency_head" if head else "agency", code)


@asynccontextmanager
async def app_client(
    settings: Settings, *, temporal: Client | None = None, address: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in this process, called over ASGI from client ``address``. Every request is checked to hold
    one database connection at a time and none while it calls Temporal (tests/connection_guard.py)."""
    guard = Guard()
    app = create_app(settings, temporal=guard.watched_client(temporal) if temporal is not None else None)
    transport = httpx.ASGITransport(app=guard.guarded(app), raise_app_exceptions=False, client=(address, 40000))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://rongtuk") as c:
        guard.watch_app(app)
        yield c
    guard.check()


@asynccontextmanager
async def running_api(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app and a worker on ``task_queue``, both on the dev server."""
    app_settings = settings.model_copy(update={"task_queue": task_queue})
    async with (
        build_worker(dev_env.client, app_settings, db, task_queue=task_queue),
        app_client(app_settings, temporal=dev_env.client) as client,
    ):
        yield client


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(dev_env, settings, db, task_queue) as client:
        yield client


def complaint(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "channel": "web",
        "description": "ไฟถนนในซอยดับมาสองสัปดาห์ ตอนกลางคืนมืดมากและอันตราย",
        "complainant": {
            "name": "สมหญิง รักดี",
            "phone": "081-234-5678",
            "preferred_channels": ["sms", "web"],
        },
        "location": {"province": "Bangkok"},
    }
    body.update(overrides)
    return body


async def file_and_assign(api: httpx.AsyncClient) -> dict[str, Any]:
    """A complaint filed, screened and sent to BMA as roads by an officer; its receipt."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id = receipt["case_id"]
    assert (await api.post(f"/api/v1/cases/{case_id}/actions/screen", json={}, headers=OFFICER)).status_code == 200
    accepted = await api.post(
        f"/api/v1/cases/{case_id}/actions/accept",
        json={"category": "roads.pothole", "agencies": ["BMA"]},
        headers=OFFICER,
    )
    assert accepted.status_code == 200, accepted.text
    return receipt


async def until_filed(api: httpx.AsyncClient, tracking_code: str, *, seconds: float = 30.0) -> dict[str, object]:
    """Intake answers once the complaint is in the database; the relay then starts its workflow, which writes
    the ``filed`` step. Waits (bounded) for that step on the tracking page and returns the page."""
    import asyncio

    tracked: dict[str, object] = {}
    for _ in range(int(seconds * 10)):
        response = await api.get(f"/api/v1/track/{tracking_code}")
        tracked = response.json()
        if response.status_code == 200 and tracked.get("timeline"):
            return tracked
        await asyncio.sleep(0.1)
    raise AssertionError(f"case {tracking_code} was not filed in Temporal within {seconds} s")


async def first_in_queue(api: httpx.AsyncClient, db: Database, receipt: dict[str, str]) -> None:
    """Put this test's case at the head of the officer's queue, whose first page is all it shows.

    The database is shared with other tests (and, on CI's PostgreSQL, with earlier runs), so many received
    cases may sort before a new one. Once its workflow has written the case (so nothing overwrites it), only
    this case's row is touched: urgent, with a deadline long past, which the queue puts first.
    """
    from sqlalchemy import update

    from store import models

    await until_filed(api, receipt["tracking_code"])
    async with db.session() as s:
        await s.execute(
            update(models.Case)
            .where(models.Case.case_id == receipt["case_id"])
            .values(priority="urgent", due_at=datetime(2000, 1, 3, tzinfo=UTC))
        )


async def rewrite_and_rechain(db: Database, case_id: str, seq: int, **changes: Any) -> list[models.CaseEvent]:
    """Rewrite one row of the case's timeline and recompute every hash after it, as a careful forger would."""
    async with db.session() as s:
        rows = list(
            (
                await s.execute(
                    select(models.CaseEvent).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
                )
            ).scalars()
        )
        prev = None
        for row in rows:
            if row.seq == seq:
                for name, value in changes.items():
                    assert getattr(row, name) != value
                    setattr(row, name, value)
            row.prev_hash, row.hash = prev, event_hash(prev, chain_row(row))
            prev = row.hash
    return rows
