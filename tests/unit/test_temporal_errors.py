"""Every error Temporal can answer with maps to a clear HTTP status with Retry-After, never a 500."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.service import temporal_error


def _rpc(status: RPCStatusCode, message: str = "x") -> RPCError:
    return RPCError(message, status, b"")


def test_resource_exhausted_is_429_with_retry_after() -> None:
    error = temporal_error(_rpc(RPCStatusCode.RESOURCE_EXHAUSTED, "limit on number of concurrent in-flight updates"))
    assert error is not None and error.status == 429 and error.code == "too_busy"
    assert int(error.headers["Retry-After"]) > 0 and error.message_th


@pytest.mark.parametrize(
    "status",
    [
        s
        for s in RPCStatusCode
        if s not in (RPCStatusCode.OK, RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.NOT_FOUND)
    ],
)
def test_every_other_rpc_status_is_503_with_retry_after(status: RPCStatusCode) -> None:
    error = temporal_error(_rpc(status))
    assert error is not None and error.status == 503, status
    assert int(error.headers["Retry-After"]) > 0 and error.message and error.message_th


def test_a_workflow_that_is_gone_is_a_finished_case() -> None:
    error = temporal_error(_rpc(RPCStatusCode.NOT_FOUND))
    assert error is not None and error.status == 409 and error.code == "case_finished"


def test_timeouts_and_an_unreachable_server_are_503() -> None:
    for exc in (
        TimeoutError(),
        WorkflowUpdateRPCTimeoutOrCancelledError(),
        RuntimeError("Failed client connect: Server connection error"),
    ):
        error = temporal_error(exc)
        assert error is not None and error.status == 503


def test_the_answer_says_truthfully_what_was_saved() -> None:
    unavailable = _rpc(RPCStatusCode.UNAVAILABLE)
    saved, unknown, nothing = (temporal_error(unavailable, saved=s) for s in (True, None, False))
    assert saved is not None and "recorded" in saved.message and "nothing" not in saved.message
    assert unknown is not None and "same Idempotency-Key" in unknown.message and "nothing" not in unknown.message
    assert nothing is not None and "nothing was changed" in nothing.message


def test_other_errors_are_not_temporal_s() -> None:
    assert temporal_error(ValueError("x")) is None
    assert temporal_error(RuntimeError("something else")) is None


class _OlderServer:
    """A client of a Temporal server without update-with-start, on which this update was never sent."""

    def get_workflow_handle(self, workflow_id: str) -> _OlderServer:
        return self

    def get_workflow_handle_for(self, run: object, workflow_id: str) -> _OlderServer:
        return self

    def get_update_handle_for(self, update: object, update_id: str) -> _OlderServer:
        return self

    async def result(self) -> None:
        raise _rpc(RPCStatusCode.NOT_FOUND, "update not found")

    async def execute_update_with_start_workflow(self, *args: object, **kwargs: object) -> None:
        raise _rpc(RPCStatusCode.UNIMPLEMENTED, "unknown method ExecuteMultiOperation")


async def test_a_server_without_update_with_start_is_told_apart_and_a_pending_action_stays_pending() -> None:
    from datetime import UTC, datetime

    from api.service import WithStartUnavailable, action_result, perform_action
    from intake.relay import CaseStart
    from tests.workflows.paths import OFFICER, complaint
    from workflows.models import ActionRequest, CaseInput

    start = CaseStart(CaseInput("RT-1", "AAAAA-BBBBB", complaint(), OFFICER, received_at=datetime.now(UTC)), "tq")
    call = {"case_id": "RT-1", "request": ActionRequest("screen", OFFICER, {}), "update_id": "u", "wait_seconds": 1}
    with pytest.raises(WithStartUnavailable):
        await perform_action(client=_OlderServer(), start=start, **call)  # type: ignore[arg-type]
    # Where a 202's result is asked for: not started yet, so still pending (never a 500).
    assert await action_result(client=_OlderServer(), start=start, **call) is None  # type: ignore[arg-type]
