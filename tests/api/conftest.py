"""The real app, wired to the real Temporal dev server and a worker on a fresh task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal, StaffRole, issue_access_token
from api.main import create_app
from config.settings import Settings
from store.db import Database
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


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    app_settings = settings.model_copy(update={"task_queue": task_queue})
    app = create_app(app_settings, temporal=dev_env.client)
    async with (
        build_worker(dev_env.client, app_settings, db, task_queue=task_queue),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://rongtuk"
        ) as client,
    ):
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
