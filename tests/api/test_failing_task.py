"""A case whose workflow task keeps failing (a bug, a worker that cannot run it): an action is answered 503
with Retry-After and a Location, saying it is recorded, never a 500 and never a hang. Real dev server."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.projection import ReadModelActivities
from config.settings import Settings
from store.db import Database
from tests.api.conftest import OFFICER, app_client
from tests.store.test_projection import request
from workflows.complaint import workflow_id_for
from workflows.process import State


@workflow.defn(name="ComplaintWorkflow")
class BrokenCase:
    """Stands in for a case workflow with a bug in its update handler: every workflow task with it fails."""

    @workflow.run
    async def run(self, _inp: Any) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update(name="act")
    async def act(self, _req: Any) -> None:
        raise RuntimeError("a bug in the handler")  # not an ApplicationError: fails the task, again and again


async def test_an_action_on_a_case_whose_task_keeps_failing_is_503_with_where_to_look(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    queue = f"tq-{uuid.uuid4()}"
    here = settings.model_copy(update={"task_queue": queue, "action_wait_seconds": 3.0})
    case_id = f"RT-BROKEN-{uuid.uuid4().hex[:8]}"
    await ReadModelActivities(db).project_event(request(case_id, 1, State.RECEIVED, intake=True))
    async with Worker(
        dev_env.client, task_queue=queue, workflows=[BrokenCase], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        handle = await dev_env.client.start_workflow(
            "ComplaintWorkflow", {"case_id": case_id}, id=workflow_id_for(case_id), task_queue=queue
        )
        try:
            async with app_client(here, temporal=dev_env.client) as api:
                response = await api.post(
                    f"/api/v1/cases/{case_id}/actions/screen",
                    json={},
                    headers=OFFICER | {"Idempotency-Key": str(uuid.uuid4())},
                )
        finally:
            await handle.terminate("test over")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "temporarily_unavailable" and "recorded" in error["message"] and error["message_th"]
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Location"].startswith(f"/api/v1/cases/{case_id}/action-requests/")
    assert "Traceback" not in response.text
