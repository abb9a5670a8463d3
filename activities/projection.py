"""Read-model writes: one transaction per transition, idempotent under retries and replays."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from store import models
from store.db import Database
from workflows.models import CaseState, ProjectionRequest
from workflows.process import ACTIVE_TASK, OPEN_TASK

log = structlog.get_logger(__name__)


def _insert(session: AsyncSession, table: Any, rows: dict[str, Any] | list[dict[str, Any]]) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(rows)


def insert_ignoring_duplicates(
    session: AsyncSession, table: Any, rows: dict[str, Any] | list[dict[str, Any]], keys: list[str]
) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for whichever backend the session is on."""
    return _insert(session, table, rows).on_conflict_do_nothing(index_elements=keys)


def upsert(session: AsyncSession, table: Any, row: dict[str, Any], keys: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` of every column but the keys, in one statement."""
    values = {k: v for k, v in row.items() if k not in keys}
    return _insert(session, table, row).on_conflict_do_update(index_elements=keys, set_=values)


def _case_snapshot(case: CaseState) -> dict[str, Any]:
    current = case.current_deadline()
    return {
        "status": case.status.value,
        "category": case.category,
        "agencies": list(dict.fromkeys(t.agency for t in case.tasks if t.status in ACTIVE_TASK)),
        "handler_id": case.handler,
        "outcome": case.outcome,
        "expected_by": case.expected_by,
        "closed_at": case.closed_at,
        "last_seq": case.seq,
        "due_at": current.due_at if current else None,
        "due_rule": current.rule if current else None,
        "breached_at": case.breached_at,
        "escalation_level": case.escalation_level,
        "stage": case.stage,
        "closure_reason": case.closure_reason,
        "duplicate_of": case.duplicate_of,
        "root_cause": case.root_cause,
        "action_taken": case.action_taken,
        "stage1_closed_at": case.stage1_closed_at,
        "stage2_started_at": case.stage2_started_at,
        "stage2_closed_at": case.stage2_closed_at,
        "rating": case.rating,
        "rating_comment": case.rating_comment,
        "rejections": case.rejections,
        "review_deadline": case.review_deadline,
        "late_review_allowed": case.late_review_allowed,
    }


def _intake_row(req: ProjectionRequest) -> dict[str, Any]:
    complaint = req.complaint or {}
    person = complaint.get("complainant") or {}
    place = complaint.get("location") or {}
    case = req.case
    return {
        "case_id": case.case_id,
        "tracking_code": case.tracking_code,
        "workflow_id": f"complaint-{case.case_id}",
        "channel": case.channel,
        "subject": complaint.get("subject"),
        "description": complaint.get("description", ""),
        "complainant_name": person.get("name"),
        "complainant_citizen_id": person.get("citizen_id"),
        "complainant_phone": person.get("phone"),
        "complainant_email": person.get("email"),
        "complainant_line_user_id": person.get("line_user_id"),
        "preferred_channels": person.get("preferred_channels") or ["web"],
        "confidential": bool(person.get("confidential")),
        "province": place.get("province"),
        "district": place.get("district"),
        "subdistrict": place.get("subdistrict"),
        "address": place.get("address"),
        "latitude": place.get("latitude"),
        "longitude": place.get("longitude"),
        "attachments": complaint.get("attachments") or [],
        "received_at": case.received_at,
        "updated_at": req.event.at,
        **_case_snapshot(case),
    }


class ReadModelActivities:
    """Activities that project workflow transitions into the SQL read model."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="project_event")
    async def project_event(self, req: ProjectionRequest) -> None:
        """Write the case snapshot, the timeline row and the agency tasks of one transition."""
        event, case = req.event, req.case
        async with self.db.session() as session:
            if req.complaint is not None:
                await session.execute(insert_ignoring_duplicates(session, models.Case, _intake_row(req), ["case_id"]))
            # ``last_seq < seq`` makes the write idempotent and keeps an older retry from undoing a newer one.
            await session.execute(
                update(models.Case)
                .where(models.Case.case_id == case.case_id, models.Case.last_seq < case.seq)
                .values(updated_at=event.at, **_case_snapshot(case))
            )
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    models.CaseEvent,
                    {
                        "case_id": event.case_id,
                        "seq": event.seq,
                        "event": event.event,
                        "from_state": event.from_state.value if event.from_state else None,
                        "to_state": event.to_state.value,
                        "actor_id": event.actor.id,
                        "actor_role": event.actor.role.value,
                        "actor_agency": event.actor.agency,
                        "at": event.at,
                        "public": event.public,
                        "data": event.data,
                    },
                    ["case_id", "seq"],
                )
            )
            for task in case.tasks:
                values = {
                    "status": task.status.value,
                    "assigned_at": task.assigned_at,
                    "accepted_at": task.accepted_at,
                    "responded_at": task.responded_at,
                    "outcome": task.outcome,
                    "due_at": task.deadline.due_at if task.deadline and task.status in OPEN_TASK else None,
                    "breached_at": task.breached_at,
                    "escalation_level": task.escalation_level,
                    "reason": task.reason,
                    "extension_pending": task.extension_pending,
                    "extended_by": task.extended_by,
                }
                row = {"case_id": case.case_id, "agency": task.agency, **values}
                await session.execute(upsert(session, models.AgencyTask, row, ["case_id", "agency"]))
        log.info("projected", case_id=case.case_id, seq=event.seq, event_name=event.event, state=case.status.value)
