"""Case work shared by the staff and citizen routes: the read model's view of a case, and running an action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.actions import action_model
from api.errors import AppError, ErrorDetail, not_found
from api.ids import normalise_tracking_code
from api.service import perform_action, refusal
from api.views import context_of
from store import models, queries
from workflows.models import ActionRequest
from workflows.process import EVENTS, SYSTEM_EVENTS, Actor, Context, State, decide

ACTIONS = sorted(EVENTS - SYSTEM_EVENTS)


async def case_by_code(session: AsyncSession, tracking_code: str) -> models.Case:
    """The case with this tracking code (spelled any way a citizen may), or 404."""
    code = normalise_tracking_code(tracking_code)
    case = await queries.case_by_tracking_code(session, code=code) if code else None
    if case is None:
        raise not_found(
            "No case has this tracking code. Check the code on your receipt (10 letters and digits).",
            "ไม่พบเรื่องที่มีรหัสติดตามนี้ กรุณาตรวจสอบรหัส 10 หลักบนใบรับเรื่อง",
        )
    return case


async def timeline_of(session: AsyncSession, case: models.Case) -> list[models.CaseEvent]:
    """The case's transitions, in order."""
    return await queries.case_timeline(session, case_id=case.case_id)


async def tasks_and_context(
    session: AsyncSession, case: models.Case, request: Request
) -> tuple[list[models.AgencyTask], Context]:
    """The case's agency tasks and the guards' context, from the read model."""
    tasks = await queries.case_tasks(session, case_id=case.case_id)
    return tasks, context_of(case, tasks, request.app.state.policy, datetime.now(UTC))


def _unknown_action(action: str) -> AppError:
    listed = ", ".join(ACTIONS)
    return AppError(
        status=422,
        code="unknown_action",
        message=f"'{action}' is not an action. Actions: {listed}.",
        message_th=f"ไม่มีการดำเนินการ '{action}' การดำเนินการที่มี: {listed}",
    )


async def run_action(
    *,
    case: models.Case,
    action: str,
    actor: Actor,
    body: dict[str, Any] | None,
    session: AsyncSession,
    client: Client,
    request: Request,
) -> None:
    """Validate ``action`` against the table and its field specs, then send it to the case's workflow."""
    if action not in EVENTS or action in SYSTEM_EVENTS:
        raise _unknown_action(action)
    _, ctx = await tasks_and_context(session, case, request)
    # The workflow's validator has the last word; this early check answers from the read model without a
    # round trip and gives the same reasons.
    early = decide(State(case.status), action, actor, None, ctx)
    if not early.allowed and early.code != "missing_fields":
        raise refusal(early.code, early.reason)
    try:
        payload = action_model(action).model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    data = payload.model_dump(mode="json", exclude_none=True)
    await _check_references(data, case, session, request)
    await perform_action(client=client, case_id=case.case_id, request=ActionRequest(action, actor, data))


def _check_classification(data: dict[str, Any], request: Request) -> None:
    """A receiving centre and an SLA class named in the payload must exist (config/centres.yaml, sla.yaml)."""
    if "centre" in data:
        data["centre"] = str(data["centre"]).upper()
    checks = (
        ("centre", request.app.state.centres.by_code, "receiving centre", "ศูนย์รับเรื่อง"),
        ("sla_class", request.app.state.policy.classes, "SLA class", "ประเภทระยะเวลาดำเนินการ (SLA class)"),
    )
    for field, known, what, what_th in checks:
        value = data.get(field)
        if value is not None and value not in known:
            sample = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
            raise AppError(
                status=422,
                code=f"unknown_{field}",
                message=f"Unknown {what} {value}.",
                message_th=f"ไม่พบ{what_th} {value}",
                details=[
                    ErrorDetail(field=field, message=f"Must be one of: {sample}.", message_th=f"ต้องเป็น: {sample}")
                ],
            )


async def _check_references(data: dict[str, Any], case: models.Case, session: AsyncSession, request: Request) -> None:
    """Agency codes and case numbers named in the payload must exist."""
    known = request.app.state.agencies
    codes = list(data.get("agencies", [])) + ([data["agency"]] if "agency" in data else [])
    if unknown := [code for code in codes if code not in known]:
        field = "agencies" if "agencies" in data else "agency"
        raise AppError(
            status=422,
            code="unknown_agency",
            message=f"Unknown agency code(s): {', '.join(unknown)}.",
            message_th=f"ไม่พบรหัสหน่วยงาน: {', '.join(unknown)}",
            details=[
                ErrorDetail(
                    field=field, message=f"Unknown: {', '.join(unknown)}.", message_th=f"ไม่พบ: {', '.join(unknown)}"
                )
            ],
        )
    if "agencies" in data:
        data["agencies"] = list(dict.fromkeys(data["agencies"]))
    _check_classification(data, request)
    original = data.get("original_case_id")
    if original is not None and (original == case.case_id or not await queries.case_exists(session, case_id=original)):
        raise AppError(
            status=422,
            code="unknown_case",
            message=f"Case {original} does not exist or is this case itself.",
            message_th=f"ไม่พบเรื่องเลขที่ {original} หรือเป็นเรื่องเดียวกัน",
            details=[
                ErrorDetail(
                    field="original_case_id", message="Name another existing case.", message_th="ระบุเลขที่เรื่องอื่นที่มีอยู่"
                )
            ],
        )
