"""Intake while Temporal is away: every complaint is answered 201 (durable in the database) and trackable as
received; once the dev server is back on its SQLite file, each case is in Temporal exactly once, filed once.

The dev server and a worker (with its intake relay) are separate processes on 127.0.0.1; the API runs in this
process with its own relay. Bounded in count (6 complaints) and time.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client

from api.main import create_app
from config.settings import Settings
from config.temporal import connect, data_converter
from store import models
from store.db import Database
from tests.api.conftest import complaint
from tests.e2e.test_faults import Processes
from workflows.complaint import workflow_id_for

pytestmark = pytest.mark.e2e

DOWN = 6


async def _filed_events(db: Database, case_ids: list[str]) -> dict[str, int]:
    async with db.session() as s:
        rows = (
            await s.execute(
                select(models.CaseEvent.case_id, func.count())
                .where(models.CaseEvent.case_id.in_(case_ids), models.CaseEvent.event == "filed")
                .group_by(models.CaseEvent.case_id)
            )
        ).all()
    return {case_id: int(n) for case_id, n in rows}


async def test_intake_while_temporal_is_away_files_each_case_once_when_it_is_back(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    processes = Processes(tmp_path, database_url)
    queue = f"rongtuk-intake-{uuid.uuid4().hex[:8]}"
    processes.env |= {"RONGTUK_TASK_QUEUE": queue, "RONGTUK_INTAKE_RELAY_POLL_SECONDS": "0.5"}
    settings = Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{processes.port}",
        task_queue=queue,
        search_attributes=False,
        intake_relay_poll_seconds=0.5,
        rate_intake_per_minute=0,
        rate_tracking_per_minute=0,
    )
    try:
        processes.start_server()
        processes.start_worker()
        temporal = await connect(settings, lazy=True)
        app = create_app(settings, temporal=temporal)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as api:
            processes.kill("temporal")
            answers = [
                await api.post("/api/v1/complaints", json=complaint(), headers={"Idempotency-Key": str(uuid.uuid4())})
                for _ in range(DOWN)
            ]
            assert [r.status_code for r in answers] == [201] * DOWN, [r.text for r in answers]
            receipts = [r.json() for r in answers]
            for receipt in receipts:
                tracked = await api.get(f"/api/v1/track/{receipt['tracking_code']}")
                assert tracked.status_code == 200 and tracked.json()["status"]["code"] == "received"
            case_ids = [r["case_id"] for r in receipts]
            assert "rongtuk_intake_unstarted" in (await api.get("/metrics")).text

            processes.start_server()
            for _ in range(600):  # up to 60 s: the relays back off while the server was away
                if len(await _filed_events(db, case_ids)) == DOWN:
                    break
                await asyncio.sleep(0.1)
            assert await _filed_events(db, case_ids) == dict.fromkeys(case_ids, 1)

        client = await Client.connect(f"127.0.0.1:{processes.port}", data_converter=data_converter(settings))
        for case_id in case_ids:
            runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id_for(case_id)}'")]
            assert len(runs) == 1, f"{case_id}: {len(runs)} runs"
        async with db.session() as s:
            statuses = (
                await s.execute(select(models.IntakeOutbox.status).where(models.IntakeOutbox.case_id.in_(case_ids)))
            ).all()
        assert {status for (status,) in statuses} == {"started"}
    finally:
        processes.group.stop()
