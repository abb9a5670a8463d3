"""The JSON API end to end through the real app, the dev server and the real activities."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.projection import ReadModelActivities
from api.main import create_app
from config.settings import Settings
from store import models
from store.db import Database
from tests.api.conftest import AUDITOR, OFFICER, SUPERVISOR, agency, complaint, until_filed
from tests.store.test_projection import request
from worker import build_worker
from workflows.process import State

TRACKING = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")


async def file(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """File a complaint and wait until its workflow has filed it (the 201 comes before that)."""
    response = await api.post("/api/v1/complaints", json=complaint(**overrides))
    assert response.status_code == 201, response.text
    await until_filed(api, response.json()["tracking_code"])
    return response.json()


async def act(
    api: httpx.AsyncClient, case_id: str, action: str, headers: dict[str, str], body: dict[str, Any] | None = None
) -> httpx.Response:
    return await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body or {}, headers=headers)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["message_th"]
    if code:
        assert error["code"] == code
    assert "Traceback" not in response.text
    return error


async def test_file_track_and_close_over_http(api: httpx.AsyncClient, db: Database) -> None:
    receipt = await file(api)
    assert TRACKING.match(receipt["tracking_code"])
    assert receipt["case_id"].startswith("RT-")
    assert receipt["status"]["code"] == "received"
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", receipt["expected_by"])
    case_id, code = receipt["case_id"], receipt["tracking_code"]

    tracked = (await api.get(f"/api/v1/track/{code.lower().replace('-', ' ')}")).json()
    assert tracked["status"]["code"] == "received" and tracked["expected_by"] == receipt["expected_by"]
    assert [e["event"] for e in tracked["timeline"]] == ["filed"]
    assert "สมหญิง" not in str(tracked) and "+66812345678" not in str(tracked)

    case = (await api.get(f"/api/v1/cases/{case_id}", headers=OFFICER)).json()
    assert case["complainant"]["phone"] == "+66812345678"
    assert [a["action"] for a in case["allowed_actions"]] == ["screen", "withdraw", "reclassify"]

    assert (await act(api, case_id, "screen", OFFICER)).status_code == 200
    accepted = await act(api, case_id, "accept", OFFICER, {"category": "lighting.streetlight", "agencies": ["BMA"]})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"]["code"] == "assignment"

    bma = agency("BMA")
    seen_by_agency = (await api.get(f"/api/v1/cases/{case_id}", headers=bma)).json()
    assert [a["action"] for a in seen_by_agency["allowed_actions"]] == ["agency_accept", "agency_reject"]
    assert (await act(api, case_id, "agency_accept", bma)).status_code == 200
    responded = await act(api, case_id, "respond", bma, {"outcome": "resolved", "response": "เปลี่ยนหลอดไฟเรียบร้อยแล้ว"})
    assert responded.status_code == 200, responded.text
    closed = await act(api, case_id, "close", SUPERVISOR)
    assert closed.json()["status"]["code"] == "closed"
    # Settled, not finished: the complainant may still ask for a review, a supervisor may reopen.
    assert [a["action"] for a in closed.json()["allowed_actions"]] == ["request_review", "allow_late_review", "reopen"]

    tracked = (await api.get(f"/api/v1/track/{code}")).json()
    assert tracked["status"]["code"] == "closed" and tracked["outcome"] == "resolved"
    assert tracked["handled_by"] == [
        {"code": "BMA", "name_th": "กรุงเทพมหานคร", "name_en": "Bangkok Metropolitan Administration", "phone": "1555"}
    ]
    assert [e["event"] for e in tracked["timeline"]] == [
        "filed",
        "screen",
        "accept",
        "agency_accept",
        "respond",
        "close",
    ]
    async with db.session() as s:
        rows = await s.scalar(select(func.count()).where(models.CaseEvent.case_id == case_id))
    assert rows == 6


async def test_confidential_identity_hidden_from_agency(api: httpx.AsyncClient) -> None:
    receipt = await file(
        api, complainant={"name": "ผู้แจ้ง ลับ", "phone": "0812345678", "confidential": True, "preferred_channels": ["sms"]}
    )
    case_id = receipt["case_id"]
    await act(api, case_id, "screen", OFFICER)
    await act(api, case_id, "accept", OFFICER, {"category": "police.misconduct", "agencies": ["RTP"]})
    seen = (await api.get(f"/api/v1/cases/{case_id}", headers=agency("RTP"))).json()
    assert seen["complainant"] == {"confidential": True}
    assert "0812345678" not in str(seen) and "+66812345678" not in str(seen) and seen["tracking_code"] is None


async def test_action_in_wrong_state_is_409_and_leaves_no_trace(api: httpx.AsyncClient, db: Database) -> None:
    case_id = (await file(api))["case_id"]
    error = assert_error(await act(api, case_id, "close", OFFICER), 409, "not_allowed_in_state")
    # In words the officer knows, in both languages: the action and the state by their labels, and the
    # officer's own next steps (their buttons), also as codes for a program.
    assert "“Close the case”" in error["message"] and "“Received”" in error["message"]
    assert "“ยุติเรื่อง”" in error["message_th"] and "“รับเรื่องแล้ว”" in error["message_th"]
    assert "“Start screening”" in error["message"] and "“เริ่มตรวจสอบเรื่อง”" in error["message_th"]
    assert "screen" in error["details"][0]["allowed_actions"]
    async with db.session() as s:
        assert await s.scalar(select(func.count()).where(models.CaseEvent.case_id == case_id)) == 1


async def test_a_citizen_refused_by_the_state_is_told_what_they_can_do_not_what_staff_can(
    api: httpx.AsyncClient,
) -> None:
    receipt = await file(api)
    await act(api, receipt["case_id"], "screen", OFFICER)
    refused = await api.post(f"/api/v1/track/{receipt['tracking_code']}/actions/request_review", json={})
    error = assert_error(refused, 409, "not_allowed_in_state")
    assert error["details"][0]["allowed_actions"] == ["withdraw"]
    assert error["message"] == (
        "“Ask for a review (stage 2)” is not possible now: the case is “Being screened”. "
        "What you can do now: “Withdraw the complaint”."
    )
    assert "“ถอนเรื่อง”" in error["message_th"] and "“กำลังตรวจสอบเรื่อง”" in error["message_th"]
    for staff_only in ("accept", "need_info", "reclassify", "escalate"):
        assert staff_only not in error["message"]


async def test_bad_requests_get_clear_errors(api: httpx.AsyncClient) -> None:
    case_id = (await file(api))["case_id"]
    body = complaint()
    del body["description"]
    error = assert_error(await api.post("/api/v1/complaints", json=body), 422, "validation_failed")
    assert error["details"][0]["field"] == "description"

    huge = await api.post("/api/v1/complaints", json=complaint(description="ก" * 1_000_000))
    assert_error(huge, 413, "body_too_large")  # 3 MB of Thai text: over the body limit
    assert len(huge.content) < 5000
    long = await api.post("/api/v1/complaints", json=complaint(description="ก" * 100_000))
    assert_error(long, 422)
    assert len(long.content) < 5000

    assert_error(await api.post("/api/v1/complaints", json=complaint(channel=5)), 422)
    assert_error(
        await api.post("/api/v1/complaints", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert_error(await act(api, case_id, "teleport", OFFICER), 422, "unknown_action")
    assert_error(await api.get("/api/v1/cases/RT-20260101-NOPE00", headers=OFFICER), 404)
    assert_error(await act(api, "RT-20260101-NOPE00", "screen", OFFICER), 404)
    assert_error(await api.get("/api/v1/track/AAAAA-AAAAA"), 404)
    assert_error(await api.get("/api/v1/track/not-a-code"), 404)
    assert_error(await api.get(f"/api/v1/cases/{case_id}"), 401)
    # The old self-declared identity headers count for nothing now.
    assert_error(await api.get(f"/api/v1/cases/{case_id}", headers={"X-Actor-Id": "x", "X-Actor-Role": "auditor"}), 401)
    # An agency with no task on the case cannot even see that it exists.
    assert_error(await api.get(f"/api/v1/cases/{case_id}", headers=agency("DOL")), 404)
    assert_error(await act(api, case_id, "screen", AUDITOR), 403, "role_not_allowed")
    # A complainant who tries a staff action is told whose it is, with its label, not the table's role codes.
    code = (await api.get(f"/api/v1/cases/{case_id}", headers=OFFICER)).json()["tracking_code"]
    refused = assert_error(await api.post(f"/api/v1/track/{code}/actions/screen", json={}), 403, "role_not_allowed")
    assert (
        refused["message"] == "“Start screening” is for the centre's officers or the centre's supervisors, not for you."
    )
    assert refused["message_th"] == "รายการ “เริ่มตรวจสอบเรื่อง” เป็นของเจ้าหน้าที่ศูนย์ หรือหัวหน้าศูนย์ ท่านจึงทำรายการนี้ไม่ได้"

    await act(api, case_id, "screen", OFFICER)
    error = assert_error(await act(api, case_id, "accept", OFFICER, {"category": "roads.pothole"}), 422)
    assert error["details"][0]["field"] == "agencies"
    error = assert_error(
        await act(api, case_id, "accept", OFFICER, {"category": "roads.pothole", "agencies": ["NOPE"]}),
        422,
        "unknown_agency",
    )
    assert_error(
        await act(api, case_id, "accept", OFFICER, {"category": "roads.pothole", "agencies": ["DOL"], "colour": "red"}),
        422,
    )
    assert_error(await act(api, case_id, "accept", OFFICER, {"category": ["x"], "agencies": "DOL"}), 422)
    made_up = await act(api, case_id, "accept", OFFICER, {"category": "street-lights", "agencies": ["DOL"]})
    error = assert_error(made_up, 422, "unknown_category")
    assert (
        error["message"] == "Unknown complaint category street-lights." and error["details"][0]["field"] == "category"
    )
    # Nothing of the refused attempts reached the case.
    case = (await api.get(f"/api/v1/cases/{case_id}", headers=OFFICER)).json()
    assert case["status"]["code"] == "screening" and [e["event"] for e in case["timeline"]] == ["filed", "screen"]


async def test_the_categories_a_complaint_may_name_are_listed_without_sign_in(api: httpx.AsyncClient) -> None:
    groups = (await api.get("/api/v1/categories")).json()
    roads = next(g for g in groups if g["code"] == "roads")
    assert roads["name_th"] == "ถนนและทางเท้า" and {"code", "name_th", "name_en"} <= set(roads["categories"][0])
    listed = [c["code"] for g in groups for c in g["categories"]]
    assert "lighting.streetlight" in listed and len(listed) == len(set(listed)) > 50
    for code in (listed[0], listed[-1]):  # what the list offers is what filing takes
        filed = await api.post("/api/v1/complaints", json=complaint(category=code))
        assert filed.status_code == 201, filed.text


async def test_docs_and_openapi_are_served(api: httpx.AsyncClient) -> None:
    assert (await api.get("/docs")).status_code == 200
    spec = (await api.get("/openapi.json")).json()
    assert "/api/v1/complaints" in spec["paths"] and "/api/v1/track/{tracking_code}" in spec["paths"]


async def test_intake_answers_201_when_no_worker_is_there_and_the_case_is_filed_later(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    queue = f"tq-{uuid.uuid4()}"
    slow = settings.model_copy(update={"task_queue": queue})
    app = create_app(slow, temporal=dev_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rongtuk") as client,
    ):
        response = await client.post("/api/v1/complaints", json=complaint())
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert TRACKING.match(receipt["tracking_code"]) and receipt["expected_by"]
        # Durable and trackable at once, as received, before any worker has run the case.
        early = await client.get(f"/api/v1/track/{receipt['tracking_code']}")
        assert early.status_code == 200 and early.json()["status"]["code"] == "received"
        assert early.json()["expected_by"] == receipt["expected_by"]
        async with build_worker(dev_env.client, slow, db, task_queue=queue):
            tracked = await until_filed(client, receipt["tracking_code"])
        assert tracked["status"]["code"] == "received" and [e["event"] for e in tracked["timeline"]] == ["filed"]
        # The workflow computed the same date the receipt promised.
        assert tracked["expected_by"] == receipt["expected_by"]


@asynccontextmanager
async def _app_without_relay(
    dev_env: WorkflowEnvironment, here: Settings, db: Database, temporal: Client
) -> AsyncIterator[httpx.AsyncClient]:
    """The app (its own relay off, as ``here`` says) talking to Temporal through ``temporal``, and a worker."""
    app = create_app(here, temporal=temporal)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rongtuk") as http,
        build_worker(dev_env.client, here, db, task_queue=here.task_queue),
    ):
        yield http


async def test_an_action_on_a_case_no_relay_has_started_starts_it(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    """The officer acts on a case filed a moment ago, before any relay got to it (relays off here): the action
    starts the workflow itself (update-with-start) instead of waiting for the relay or answering 503."""
    from intake.relay import STARTED, IntakeRelay

    here = settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}", "intake_relay_in_api": False})
    async with _app_without_relay(dev_env, here, db, dev_env.client) as http:
        filed = await http.post("/api/v1/complaints", json=complaint())
        assert filed.status_code == 201, filed.text
        receipt = filed.json()
        with pytest.raises(RPCError):  # nobody started it
            await dev_env.client.get_workflow_handle(f"complaint-{receipt['case_id']}").describe()
        # The citizen's page says the complaint was received before the process has recorded it.
        page = await http.get(f"/track/{receipt['tracking_code']}")
        assert page.status_code == 200 and 'id="receipt-entry"' in page.text and "ได้รับเรื่องร้องทุกข์" in page.text
        key = {"Idempotency-Key": f"screen-{uuid.uuid4()}"}
        screened = await act(http, receipt["case_id"], "screen", OFFICER | key)
        assert screened.status_code == 200, screened.text
        assert screened.json()["status"]["code"] == "screening"
        # The same request again is the same answer, acted once.
        again = await act(http, receipt["case_id"], "screen", OFFICER | key)
        assert again.status_code == 200 and again.json() == screened.json()
        tracked = (await http.get(f"/api/v1/track/{receipt['tracking_code']}")).json()
        assert [e["event"] for e in tracked["timeline"]] == ["filed", "screen"]
        # The receipt's promise holds: the workflow filed it with the time and dates the API committed.
        assert tracked["expected_by"] == receipt["expected_by"]
        # A relay that gets there later finds it started and starts nothing twice (what else it starts are
        # rows other tests left pending).
        relay = IntakeRelay(db, dev_env.client, here)
        await relay.drain()
        assert relay.found_started >= 1
        async with db.session() as s:
            row = (
                await s.execute(select(models.IntakeOutbox).where(models.IntakeOutbox.case_id == receipt["case_id"]))
            ).scalar_one()
        assert row.status == STARTED


class _WithoutUpdateWithStart:
    """The dev server's client, as an older Temporal server answers update-with-start: UNIMPLEMENTED."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def execute_update_with_start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        raise RPCError("ExecuteMultiOperation is not implemented", RPCStatusCode.UNIMPLEMENTED, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def test_on_a_server_without_update_with_start_an_action_waits_for_the_relay(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database
) -> None:
    from intake.relay import IntakeRelay

    here = settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}", "intake_relay_in_api": False})

    async def relay_later() -> int:
        await asyncio.sleep(0.5)  # the action finds the case unstarted, is refused the start, and waits
        return await IntakeRelay(db, dev_env.client, here).drain()

    refusing = _WithoutUpdateWithStart(dev_env.client)
    async with _app_without_relay(dev_env, here, db, refusing) as http:  # type: ignore[arg-type]
        filed = await http.post("/api/v1/complaints", json=complaint())
        assert filed.status_code == 201, filed.text
        relay = asyncio.create_task(relay_later())
        screened = await act(http, filed.json()["case_id"], "screen", OFFICER)
        # The action was not lost to the refusal: it waited for the relay and acted.
        assert screened.status_code == 200, screened.text
        assert await relay >= 1
        tracked = (await http.get(f"/api/v1/track/{filed.json()['tracking_code']}")).json()
        assert [e["event"] for e in tracked["timeline"]] == ["filed", "screen"]


async def test_without_temporal_intake_answers_201_and_actions_503(settings: Settings, db: Database) -> None:
    from cli.devserver import free_port
    from config.temporal import connect

    away = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{free_port()}", "task_queue": f"tq-{uuid.uuid4()}"}
    )
    client = await connect(away, lazy=True)
    app = create_app(away, temporal=client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://rongtuk"
        ) as http,
    ):
        filed = await http.post("/api/v1/complaints", json=complaint())
        assert filed.status_code == 201, filed.text
        receipt = filed.json()
        tracked = await http.get(f"/api/v1/track/{receipt['tracking_code']}")
        assert tracked.status_code == 200 and tracked.json()["status"]["code"] == "received"
        assert (await http.get("/healthz")).status_code == 200
        # Its workflow cannot be started yet: an action says so, truthfully, and when to try again.
        refused = await act(http, receipt["case_id"], "screen", OFFICER)
        assert_error(refused, 503, "temporarily_unavailable")
        assert refused.headers["Retry-After"]
        metrics = (await http.get("/metrics")).text
        assert "rongtuk_intake_unstarted" in metrics and "rongtuk_intake_relay_lag_seconds" in metrics
        case_id = f"RT-DOWN-{uuid.uuid4().hex[:8]}"
        await ReadModelActivities(db).project_event(request(case_id, 1, State.RECEIVED, intake=True))
        assert (await http.get(f"/api/v1/cases/{case_id}", headers=OFFICER)).status_code == 200
        down = await act(http, case_id, "screen", OFFICER)
        error = assert_error(down, 503, "temporarily_unavailable")
        assert "nothing was saved" not in error["message"]
        assert down.headers["Retry-After"]
