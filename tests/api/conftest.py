"""The real app, wired to the real Temporal dev server and a worker on a fresh task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config.settings import Settings
from store.db import Database
from worker import build_worker

OFFICER = {"X-Actor-Id": "officer-7", "X-Actor-Role": "officer"}
SUPERVISOR = {"X-Actor-Id": "sup-1", "X-Actor-Role": "supervisor"}
AUDITOR = {"X-Actor-Id": "aud-1", "X-Actor-Role": "auditor"}


def agency(code: str) -> dict[str, str]:
    return {"X-Actor-Id": f"{code.lower()}-staff", "X-Actor-Role": "agency", "X-Actor-Agency": code}


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
