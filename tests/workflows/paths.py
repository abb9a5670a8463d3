"""Helpers shared by the workflow tests: file a case, act on it, drive it to any state, read its timeline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle

from domain.complaint import Complaint
from store import models
from store.db import Database
from workflows.complaint import ComplaintWorkflow, workflow_id_for
from workflows.models import ActionRequest, CaseInput, CaseSummary
from workflows.process import Actor, Role, State

# Every case these tests file has this prefix; the edge-coverage test reads their timelines.
CASE_PREFIX = "RT-TEST-"
OFFICER = Actor("officer-1", Role.OFFICER)
SUPERVISOR = Actor("sup-1", Role.SUPERVISOR)
CITIZEN = Actor("citizen:web", Role.CITIZEN)
DOPA = Actor("dopa-1", Role.AGENCY, "DOPA")
BMA = Actor("bma-1", Role.AGENCY, "BMA")
RTP = Actor("rtp-1", Role.AGENCY, "RTP")
DOL = Actor("dol-1", Role.AGENCY, "DOL")

Handle = WorkflowHandle[ComplaintWorkflow, CaseSummary]
# Cases started by the running test; the workflow tests' conftest ends them afterwards.
STARTED: list[Handle] = []


def complaint(**extra: Any) -> Complaint:
    return Complaint.model_validate(
        {
            "channel": "web",
            "description": "ถนนหน้าบ้านเป็นหลุมลึก รถจักรยานยนต์ล้มหลายครั้ง",
            "complainant": {
                "name": "สมชาย ใจดี",
                "phone": "+66812345678",
                "preferred_channels": ["sms", "web"],
                "confidential": False,
            },
            "location": {"province": "กรุงเทพมหานคร"},
            **extra,
        }
    )


async def file(client: Client, task_queue: str, **extra: Any) -> tuple[str, Handle]:
    case_id = f"{CASE_PREFIX}{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        ComplaintWorkflow.run,
        CaseInput(
            case_id=case_id,
            tracking_code=uuid.uuid4().hex[:10].upper(),
            complaint=complaint(**extra),
            filed_by=CITIZEN,
            search_attributes=False,
        ),
        id=workflow_id_for(case_id),
        task_queue=task_queue,
    )
    STARTED.append(handle)
    await handle.execute_update(ComplaintWorkflow.receipt)
    return case_id, handle


async def act(handle: Handle, event: str, actor: Actor, **payload: Any) -> CaseSummary:
    return await handle.execute_update(ComplaintWorkflow.act, ActionRequest(event, actor, payload))


RESPONSE = {
    "outcome": "resolved",
    "response": "ซ่อมถนนเรียบร้อยแล้ว",
    "root_cause": "ท่อประปารั่ว",
    "action_taken": "ซ่อมท่อและปูถนนใหม่",
}

# The shortest path of human actions from intake to each state.
PATHS: dict[State, list[tuple[str, Actor, dict[str, Any]]]] = {
    State.RECEIVED: [],
    State.SCREENING: [("screen", OFFICER, {})],
    State.AWAITING_INFO: [("screen", OFFICER, {}), ("need_info", OFFICER, {"question": "ซอยอะไร"})],
    State.ASSIGNMENT: [
        ("screen", OFFICER, {}),
        ("accept", OFFICER, {"category": "roads.pothole", "agencies": ["DOPA"]}),
    ],
}
PATHS[State.STAGE1] = [*PATHS[State.ASSIGNMENT], ("agency_accept", DOPA, {})]
PATHS[State.RESPONDED] = [*PATHS[State.STAGE1], ("respond", DOPA, RESPONSE)]
PATHS[State.CLOSED] = [*PATHS[State.RESPONDED], ("close", OFFICER, {})]
PATHS[State.STAGE2] = [*PATHS[State.CLOSED], ("request_review", CITIZEN, {"reason": "ยังไม่ได้ซ่อม"})]
PATHS[State.STAGE2_INVESTIGATION] = [
    *PATHS[State.STAGE2],
    ("acknowledge", OFFICER, {"points": "คุณภาพงานซ่อม", "outcome_wanted": "ซ่อมใหม่"}),
]
FINDINGS = {"findings": "ตรวจสอบแล้ว งานซ่อมไม่ได้มาตรฐาน", "root_cause": "ผู้รับเหมา", "action_taken": "สั่งซ่อมใหม่"}
PATHS[State.CLOSED_STAGE2] = [
    *PATHS[State.STAGE2_INVESTIGATION],
    ("report_findings", DOPA, FINDINGS),
    ("respond_stage2", SUPERVISOR, RESPONSE),
]
PATHS[State.REFERRED] = [*PATHS[State.CLOSED_STAGE2], ("refer", CITIZEN, {})]
PATHS[State.WITHDRAWN] = [("withdraw", CITIZEN, {})]


async def reach(client: Client, task_queue: str, state: State, **extra: Any) -> tuple[str, Handle]:
    """A new case driven to ``state`` by the shortest human path."""
    case_id, handle = await file(client, task_queue, **extra)
    for event, actor, payload in PATHS[state]:
        await act(handle, event, actor, **payload)
    return case_id, handle


async def timeline(db: Database, case_id: str) -> list[models.CaseEvent]:
    async with db.session() as s:
        rows = await s.execute(
            select(models.CaseEvent).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
        )
        return list(rows.scalars().all())


async def case_row(db: Database, case_id: str) -> models.Case:
    async with db.session() as s:
        case = await s.get(models.Case, case_id)
    assert case is not None
    return case


async def tasks_of(db: Database, case_id: str) -> dict[str, models.AgencyTask]:
    async with db.session() as s:
        rows = await s.execute(select(models.AgencyTask).where(models.AgencyTask.case_id == case_id))
        return {t.agency: t for t in rows.scalars().all()}


async def eventually(check: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy: timers fire asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def events_named(db: Database, case_id: str, *names: str) -> list[models.CaseEvent]:
    return [e for e in await timeline(db, case_id) if e.event in names]
