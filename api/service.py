"""What the routes do with Temporal: file a complaint, perform an action. Keyword-only, one concern each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import AppError, conflict, forbidden
from api.ids import new_case_id, new_tracking_code
from api.schemas import ComplaintIn
from workflows.complaint import ACTION_NOT_ALLOWED, ComplaintWorkflow, workflow_id_for
from workflows.models import ActionRequest, CaseInput, CaseSummary
from workflows.process import Actor

log = structlog.get_logger(__name__)

_FORBIDDEN_CODES = {"role_not_allowed", "no_task"}


def temporal_unavailable() -> AppError:
    return AppError(
        status=503,
        code="temporarily_unavailable",
        message="The complaint service is busy or restarting; nothing was saved. Please try again in a minute.",
        message_th="ระบบรับเรื่องไม่พร้อมใช้งานชั่วคราว ยังไม่ได้บันทึกเรื่อง กรุณาลองใหม่อีกครั้งในอีกสักครู่",
    )


async def file_complaint(
    *,
    client: Client,
    task_queue: str,
    complaint: ComplaintIn,
    actor: Actor,
    wait_seconds: float,
    search_attributes: bool = True,
    auto_screen: bool = False,
) -> tuple[CaseSummary | None, str, str]:
    """Start the case workflow and wait for its receipt; returns (summary or None if still filing, id, code).

    Update-with-start makes the 201 mean "durable in Temporal and visible in the read model". If the workers
    are slow the workflow is still started and will be filed: the caller answers 202 with the tracking code.
    """
    case_id, tracking_code = new_case_id(datetime.now(UTC)), new_tracking_code()
    structlog.contextvars.bind_contextvars(case_id=case_id)
    start = WithStartWorkflowOperation(
        ComplaintWorkflow.run,
        CaseInput(
            case_id=case_id,
            tracking_code=tracking_code,
            complaint=complaint.to_complaint(),
            filed_by=actor,
            search_attributes=search_attributes,
            auto_screen=auto_screen,
        ),
        id=workflow_id_for(case_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    try:
        summary = await asyncio.wait_for(
            client.execute_update_with_start_workflow(ComplaintWorkflow.receipt, start_workflow_operation=start),
            timeout=wait_seconds,
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        if await _exists(client, workflow_id_for(case_id)):
            log.warning("intake_receipt_pending")
            return None, case_id, tracking_code
        raise temporal_unavailable() from None
    except RPCError as exc:
        log.error("intake_failed", status=exc.status.name)
        raise temporal_unavailable() from None
    except RuntimeError as exc:
        if not _connect_failure(exc):
            raise
        log.error("intake_failed", status="connect_failed")
        raise temporal_unavailable() from None
    log.info("complaint_filed", channel=complaint.channel.value, status=summary.status.value)
    return summary, case_id, tracking_code


def _connect_failure(exc: RuntimeError) -> bool:
    # A lazily connected client reports an unreachable server as a RuntimeError, not an RPCError.
    return str(exc).startswith("Failed client connect")


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    except RuntimeError as exc:
        if _connect_failure(exc):
            return False
        raise
    return True


def refusal(code: str, reason: str) -> AppError:
    """The HTTP answer to a refusal of the process table: 403 for who is asking, 409 for the case's state."""
    if code in _FORBIDDEN_CODES:
        return forbidden(reason, "ท่านไม่มีสิทธิ์ดำเนินการนี้กับเรื่องนี้", code=code)
    return conflict(reason, "ไม่สามารถดำเนินการนี้ได้ในสถานะปัจจุบันของเรื่อง", code=code)


async def perform_action(*, client: Client, case_id: str, request: ActionRequest) -> CaseSummary:
    """Send the action to the case workflow's ``act`` update; map refusals to 409/403 and gone cases to 404."""
    handle = client.get_workflow_handle_for(ComplaintWorkflow.run, workflow_id_for(case_id))
    try:
        return await handle.execute_update(ComplaintWorkflow.act, request)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == ACTION_NOT_ALLOWED:
            code = str(cause.details[0]) if cause.details else "not_allowed_in_state"
            raise refusal(code, cause.message) from None
        raise
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise conflict(
                "This case is no longer open for actions.",
                "เรื่องนี้ยุติแล้ว ไม่สามารถดำเนินการได้",
                code="case_finished",
            ) from None
        if exc.status in {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}:
            raise temporal_unavailable() from None
        raise
    except RuntimeError as exc:
        if _connect_failure(exc):
            raise temporal_unavailable() from None
        raise
