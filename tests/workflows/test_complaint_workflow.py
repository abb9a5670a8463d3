"""ComplaintWorkflow in the time-skipping environment, with the real activities and read model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from store import models
from store.db import Database
from tests.workflows.paths import CITIZEN, DOPA, OFFICER, act, file
from workflows.complaint import ComplaintWorkflow
from workflows.process import Actor, Role, State


async def case_history(handle: Any) -> list[int]:
    """History event types other than workflow tasks: a refused update is validated in a workflow task (which
    the real server drops, the test server keeps) but must add no update, activity or marker event."""
    history = await handle.fetch_history()
    return [e.event_type for e in history.events if e.event_type not in (5, 6, 7)]


async def drive_to_closure(handle: Any) -> None:
    await act(handle, "screen", OFFICER)
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA"])
    await act(handle, "agency_accept", DOPA)
    await act(handle, "respond", DOPA, outcome="resolved", response="ซ่อมถนนเรียบร้อยแล้ว")
    await act(handle, "close", OFFICER)


async def test_main_path_reaches_closed_and_projects_every_transition(
    time_worker: Client, task_queue: str, db: Database
) -> None:
    case_id, handle = await file(time_worker, task_queue)
    summary = await handle.query(ComplaintWorkflow.summary)
    assert summary.status is State.RECEIVED and summary.expected_by is not None

    await drive_to_closure(handle)
    result = await handle.result()
    assert result.status is State.CLOSED

    async with db.session() as s:
        case = await s.get(models.Case, case_id)
        events = (
            (
                await s.execute(
                    select(models.CaseEvent).where(models.CaseEvent.case_id == case_id).order_by(models.CaseEvent.seq)
                )
            )
            .scalars()
            .all()
        )
        per_seq = dict(
            (
                await s.execute(
                    select(models.Notification.seq, func.count())
                    .where(models.Notification.case_id == case_id)
                    .group_by(models.Notification.seq)
                )
            ).all()
        )
    assert case is not None and case.status == "closed" and case.outcome == "resolved"
    assert [e.event for e in events] == ["filed", "screen", "accept", "agency_accept", "respond", "close"]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[3].actor_agency == "DOPA" and events[3].actor_role == "agency"
    # Every transition notified someone: the complainant on sms and web, plus agency and supervisor when due.
    assert set(per_seq) == {1, 2, 3, 4, 5, 6}
    assert per_seq[1] == 2 and per_seq[3] == 4


@pytest.mark.parametrize(
    ("event", "actor", "code"),
    [
        ("close", OFFICER, "not_allowed_in_state"),
        ("screen", DOPA, "role_not_allowed"),
        ("fly", OFFICER, "unknown_event"),
    ],
)
async def test_refused_action_leaves_no_trace(
    time_worker: Client, task_queue: str, db: Database, event: str, actor: Actor, code: str
) -> None:
    case_id, handle = await file(time_worker, task_queue)
    history_before = await case_history(handle)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await act(handle, event, actor)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ActionNotAllowed"
    assert cause.details[0] == code
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in str(cause.details[1])), "the reason in Thai as well"
    assert await case_history(handle) == history_before
    async with db.session() as s:
        count = await s.scalar(select(func.count()).where(models.CaseEvent.case_id == case_id))
    assert count == 1


async def test_agency_without_task_cannot_accept(time_worker: Client, task_queue: str) -> None:
    _, handle = await file(time_worker, task_queue)
    await act(handle, "screen", OFFICER)
    await act(handle, "accept", OFFICER, category="roads", agencies=["DOPA", "BMA"])
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await act(handle, "agency_accept", Actor("x", Role.AGENCY, "RTP"))
    assert isinstance(info.value.cause, ApplicationError) and info.value.cause.details[0] == "no_task"
    # With two agencies the case waits in assignment until both have accepted.
    first = await act(handle, "agency_accept", DOPA)
    assert first.status is State.ASSIGNMENT
    second = await act(handle, "agency_accept", Actor("bma-1", Role.AGENCY, "BMA"))
    assert second.status is State.STAGE1


async def test_withdraw_ends_the_workflow(time_worker: Client, task_queue: str) -> None:
    _, handle = await file(time_worker, task_queue)
    await act(handle, "withdraw", CITIZEN, reason="แก้ไขได้แล้ว")
    assert (await handle.result()).status is State.WITHDRAWN


async def test_personal_data_never_reaches_temporal_in_clear(time_worker: Client, task_queue: str) -> None:
    _, handle = await file(time_worker, task_queue)
    await act(handle, "screen", OFFICER)
    history = await handle.fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert b"ComplaintWorkflow" in raw  # the bytes searched are the real history
    for secret in ("สมชาย", "+66812345678", "ถนนหน้าบ้าน"):
        assert secret.encode() not in raw
        assert json.dumps(secret).strip('"').encode() not in raw  # nor as JSON \u escapes
    description = await handle.describe()
    assert "สมชาย" not in str(description.search_attributes)
