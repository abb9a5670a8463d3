"""Auto-screening (off by default): a complete, confidently classified complaint is screened and accepted by the
system, with its confidence on the timeline; anything else waits for an officer untouched.

Real dev server, real worker with the screening service (keyword model, reference data), real database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from domain.complaint import Complaint
from store.db import Database
from tests.workflows.paths import CITIZEN, eventually, timeline
from worker import build_worker
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.models import CaseInput, CaseSummary
from workflows.process import Role, State

POWER_CUT = {
    "channel": "web",
    "description": "ไฟฟ้าดับทั้งหมู่บ้านมาสามวันแล้ว แจ้งการไฟฟ้าส่วนภูมิภาคแล้วยังไม่มีใครมาซ่อม ไฟดับบ่อยมาก",
    "complainant": {"name": "สมศรี ใจงาม", "phone": "+66812345678", "preferred_channels": ["sms"]},
    "location": {"province": "เชียงใหม่", "district": "สันทราย"},
}


async def _worker(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, **policy: object
) -> AsyncIterator[str]:
    queue = f"tq-{uuid.uuid4()}"
    worker_settings = settings.model_copy(update={"auto_screen": True, **policy})
    async with build_worker(dev_env.client, worker_settings, db, task_queue=queue):
        yield queue


@pytest.fixture
async def lenient(dev_env: WorkflowEnvironment, settings: Settings, db: Database) -> AsyncIterator[str]:
    async for queue in _worker(
        dev_env, settings, db, auto_screen_min_confidence=0.2, auto_screen_min_agency_confidence=0.2
    ):
        yield queue


@pytest.fixture
async def strict(dev_env: WorkflowEnvironment, settings: Settings, db: Database) -> AsyncIterator[str]:
    async for queue in _worker(
        dev_env, settings, db, auto_screen_min_confidence=0.99, auto_screen_min_agency_confidence=0.99
    ):
        yield queue


async def _file(client: object, queue: str) -> tuple[str, WorkflowHandle[ComplaintWorkflow, CaseSummary]]:
    case_id = f"RT-AUTO-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(  # type: ignore[attr-defined]
        ComplaintWorkflow.run,
        CaseInput(
            case_id=case_id,
            tracking_code=uuid.uuid4().hex[:10].upper(),
            complaint=Complaint.model_validate(POWER_CUT),
            filed_by=CITIZEN,
            search_attributes=False,
            auto_screen=True,
        ),
        id=workflow_id_for(case_id),
        task_queue=queue,
    )
    await handle.execute_update(ComplaintWorkflow.receipt)
    return case_id, handle


async def test_a_confident_complaint_is_screened_and_routed_by_the_system(
    dev_env: WorkflowEnvironment, db: Database, lenient: str
) -> None:
    case_id, handle = await _file(dev_env.client, lenient)
    events = await eventually(lambda: _events_until(db, case_id, "accept"))
    _filed, screen, accept = events[:3]
    assert [e.event for e in events[:3]] == ["filed", "screen", "accept"]
    assert screen.actor_role == Role.SYSTEM.value and accept.actor_role == Role.SYSTEM.value
    assert accept.data["auto"] is True and 0.2 <= accept.data["confidence"] <= 1
    assert accept.data["category"].startswith("utilities.") and accept.data["agencies"]
    summary = await handle.query(ComplaintWorkflow.summary)
    assert summary.status is State.ASSIGNMENT and summary.agencies == accept.data["agencies"]
    if os.environ.get("RONGTUK_RECORD_HISTORIES"):
        folder = Path(os.environ["RONGTUK_RECORD_HISTORIES"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{handle.id}.json").write_text((await handle.fetch_history()).to_json())
    await handle.terminate("test over")


async def test_an_unsure_complaint_waits_for_an_officer(
    dev_env: WorkflowEnvironment, db: Database, strict: str
) -> None:
    case_id, handle = await _file(dev_env.client, strict)
    # The decision is made after the receipt; the summary query returns once the workflow has seen it.
    await eventually(lambda: _activity_done(handle))
    assert [e.event for e in await timeline(db, case_id)] == ["filed"]
    assert (await handle.query(ComplaintWorkflow.summary)).status is State.RECEIVED
    await handle.terminate("test over")


async def _events_until(db: Database, case_id: str, name: str) -> list[object] | None:
    events = await timeline(db, case_id)
    return events if any(e.event == name for e in events) else None


async def _activity_done(handle: WorkflowHandle[ComplaintWorkflow, CaseSummary]) -> bool:
    history = await handle.fetch_history()
    return any(e.HasField("activity_task_completed_event_attributes") for e in history.events)
