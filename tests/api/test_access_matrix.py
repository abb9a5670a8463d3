"""Who may do what: every role (signed in through the real login), anonymous callers and citizens with and
without the second factor, against every endpoint family, with the exact status expected of each."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.accounts import add_account
from api.auth import StaffRole
from config.settings import Settings
from store.db import Database
from tests.api.conftest import complaint, running_api
from workflows.complaint import workflow_id_for

PASSWORD = "matrix-password-123"
ROLES = ["anonymous", "officer", "supervisor", "agency", "agency_head", "other_agency", "auditor", "admin"]
ACCOUNTS = {
    "officer": (StaffRole.OFFICER, None),
    "supervisor": (StaffRole.SUPERVISOR, None),
    "agency": (StaffRole.AGENCY, "BMA"),
    "agency_head": (StaffRole.AGENCY_HEAD, "BMA"),
    "other_agency": (StaffRole.AGENCY, "DOPA"),
    "auditor": (StaffRole.AUDITOR, None),
    "admin": (StaffRole.ADMIN, None),
}

# family -> expected status for each of ROLES, in order.
EXPECTED: dict[str, list[int]] = {
    #                     anon officer sup  agency head other auditor admin
    "file_web":          [201, 201,   201, 403,   403, 403,  403,    403],
    "file_hotline":      [401, 201,   403, 403,   403, 403,  403,    403],
    "board":             [401, 200,   200, 200,   200, 200,  200,    403],
    "read_case":         [401, 200,   200, 200,   200, 404,  200,    403],
    "staff_action":      [401, 200,   200, 404,   404, 404,  403,    403],
    "agency_action":     [401, 403,   403, 200,   200, 404,  403,    403],
    "history":           [401, 403,   200, 403,   403, 404,  200,    403],
    "access_log":        [401, 403,   403, 403,   403, 403,  200,    403],
    "codec":             [401, 403,   403, 403,   403, 403,  200,    200],
    "metrics":           [401, 200,   200, 200,   200, 200,  200,    200],
    "openapi":           [401, 200,   200, 200,   200, 200,  200,    200],
    "me":                [401, 200,   200, 200,   200, 200,  200,    200],
    "track":             [200, 200,   200, 200,   200, 200,  200,    200],
}  # fmt: skip


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    # Hardened operational pages, as in prod.
    hardened = settings.model_copy(update={"docs_access": "staff", "metrics_access": "staff"})
    async with running_api(dev_env, hardened, db, task_queue) as client:
        yield client


@pytest.fixture
async def headers(api: httpx.AsyncClient, db: Database) -> dict[str, dict[str, str]]:
    """Each role signed in through POST /api/v1/auth/login."""
    tag = uuid.uuid4().hex[:6]
    out: dict[str, dict[str, str]] = {"anonymous": {}}
    for role, (staff_role, agency) in ACCOUNTS.items():
        name = f"m-{role.replace('_', '-')}-{tag}"
        await add_account(db, username=name, role=staff_role, password=PASSWORD, agency=agency)
        login = await api.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
        out[role] = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return out


async def new_case(api: httpx.AsyncClient, officer: dict[str, str], *, assign: bool = False) -> dict[str, Any]:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    if assign:
        case_id = receipt["case_id"]
        assert (await api.post(f"/api/v1/cases/{case_id}/actions/screen", json={}, headers=officer)).status_code == 200
        body = {"category": "lighting.streetlight", "agencies": ["BMA"]}
        ok = await api.post(f"/api/v1/cases/{case_id}/actions/accept", json=body, headers=officer)
        assert ok.status_code == 200, ok.text
    return receipt


async def test_access_matrix(
    api: httpx.AsyncClient, headers: dict[str, dict[str, str]], dev_env: WorkflowEnvironment
) -> None:
    officer = headers["officer"]
    shared = await new_case(api, officer, assign=True)
    started = (await dev_env.client.get_workflow_handle(workflow_id_for(shared["case_id"])).fetch_history()).events[0]
    payload = started.workflow_execution_started_event_attributes.input.payloads[0]
    codec_body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
                "data": base64.b64encode(payload.data).decode(),
            }
        ]
    }
    # A fresh case for the next caller whenever an action succeeded (it changed the case's state).
    received = {"case": await new_case(api, officer)}
    assigned = {"case": await new_case(api, officer, assign=True)}

    async def staff_action(h: dict[str, str]) -> httpx.Response:
        r = await api.post(f"/api/v1/cases/{received['case']['case_id']}/actions/screen", json={}, headers=h)
        if r.status_code == 200:
            received["case"] = await new_case(api, officer)
        return r

    async def agency_action(h: dict[str, str]) -> httpx.Response:
        r = await api.post(f"/api/v1/cases/{assigned['case']['case_id']}/actions/agency_accept", json={}, headers=h)
        if r.status_code == 200:
            assigned["case"] = await new_case(api, officer, assign=True)
        return r

    case_path = f"/api/v1/cases/{shared['case_id']}"
    calls: dict[str, Callable[[dict[str, str]], Awaitable[httpx.Response]]] = {
        "file_web": lambda h: api.post("/api/v1/complaints", json=complaint(), headers=h),
        "file_hotline": lambda h: api.post("/api/v1/complaints", json=complaint(channel="hotline"), headers=h),
        "board": lambda h: api.get("/api/v1/cases", headers=h),
        "read_case": lambda h: api.get(case_path, headers=h),
        "staff_action": staff_action,
        "agency_action": agency_action,
        "history": lambda h: api.get(f"{case_path}/history", headers=h),
        "access_log": lambda h: api.get("/api/v1/audit/access-log", headers=h),
        "codec": lambda h: api.post("/codec/decode", json=codec_body, headers=h),
        "metrics": lambda h: api.get("/metrics", headers=h),
        "openapi": lambda h: api.get("/openapi.json", headers=h),
        "me": lambda h: api.get("/api/v1/auth/me", headers=h),
        "track": lambda h: api.get(f"/api/v1/track/{shared['tracking_code']}", headers=h),
    }
    assert set(calls) == set(EXPECTED)
    got: dict[str, list[int]] = {}
    for family, call in calls.items():
        got[family] = [(await call(headers[role])).status_code for role in ROLES]
    mismatches = {f: (EXPECTED[f], got[f]) for f in EXPECTED if got[f] != EXPECTED[f]}
    assert not mismatches, "family: (expected, got) in order " + ", ".join(ROLES) + f"\n{mismatches}"


async def test_citizens_with_and_without_the_second_factor(
    api: httpx.AsyncClient, headers: dict[str, dict[str, str]]
) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    code = receipt["tracking_code"]
    plain = await api.get(f"/api/v1/track/{code}")
    assert plain.status_code == 200 and "complainant" not in plain.json()
    assert "สมหญิง" not in plain.text and "5678" not in plain.text
    wrong = await api.get(f"/api/v1/track/{code}", headers={"X-Phone-Last4": "0000"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "second_factor_failed"
    assert "5678" not in wrong.text
    proved = await api.get(f"/api/v1/track/{code}", headers={"X-Phone-Last4": "5678"})
    assert proved.status_code == 200
    assert proved.json()["complainant"]["name"] == "สมหญิง รักดี" and proved.json()["complainant"]["phone"].endswith(
        "5678"
    )
    assert proved.headers["cache-control"] == "no-store"
    # Another case's code with this phone's digits shows nothing of this case.
    other = (
        await api.post(
            "/api/v1/complaints",
            json=complaint(complainant={"name": "คนอื่น", "phone": "0899999999", "preferred_channels": ["sms"]}),
        )
    ).json()
    assert (
        await api.get(f"/api/v1/track/{other['tracking_code']}", headers={"X-Phone-Last4": "5678"})
    ).status_code == 403
    # Staff endpoints are closed to citizens whatever they hold.
    for path in (f"/api/v1/cases/{receipt['case_id']}", "/api/v1/cases", "/api/v1/audit/access-log"):
        assert (await api.get(path, headers={"X-Phone-Last4": "5678"})).status_code == 401
    # The tracking code alone is the key for the citizen's own actions.
    withdrawn = await api.post(f"/api/v1/track/{code}/actions/withdraw", json={})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"]["code"] == "withdrawn"
    # Too many wrong guesses lock the second factor of that case for a while.
    for _ in range(4):
        await api.get(f"/api/v1/track/{code}", headers={"X-Phone-Last4": "1111"})
    locked = await api.get(f"/api/v1/track/{code}", headers={"X-Phone-Last4": "5678"})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


async def test_agency_sees_no_confidential_identity_and_actors_are_the_signed_in_users(
    api: httpx.AsyncClient, headers: dict[str, dict[str, str]]
) -> None:
    body = complaint(
        complainant={
            "name": "ผู้แจ้ง ลับมาก",
            "phone": "0812345678",
            "email": "secret@example.com",
            "confidential": True,
            "preferred_channels": ["sms"],
        },
        location={"province": "Bangkok", "latitude": 13.756331, "longitude": 100.501765},
        attachments=[{"name": "หน้าบ้านผู้แจ้ง.jpg", "url_or_ref": "upload:abc"}],
    )
    receipt = (await api.post("/api/v1/complaints", json=body)).json()
    case_id = receipt["case_id"]
    officer = headers["officer"]
    await api.post(f"/api/v1/cases/{case_id}/actions/screen", json={}, headers=officer)
    await api.post(
        f"/api/v1/cases/{case_id}/actions/accept",
        json={"category": "roads.pothole", "agencies": ["BMA"]},
        headers=officer,
    )
    for role in ("agency", "agency_head"):
        seen = await api.get(f"/api/v1/cases/{case_id}", headers=headers[role])
        assert seen.status_code == 200
        text = seen.text
        for secret in (
            "ลับมาก",
            "0812345678",
            "+66812345678",
            "secret@example.com",
            "13.756331",
            "100.501765",
            "หน้าบ้าน",
            receipt["tracking_code"],
        ):
            assert secret not in text, (role, secret)
        assert seen.json()["location"]["latitude"] == 13.76
    staff = (await api.get(f"/api/v1/cases/{case_id}", headers=headers["supervisor"])).json()
    assert staff["complainant"]["name"] == "ผู้แจ้ง ลับมาก" and staff["attachments"]
    actors = [(e["event"], e["actor"]["id"]) for e in staff["timeline"]]
    officer_name = (await api.get("/api/v1/auth/me", headers=officer)).json()["username"]
    assert actors[1:3] == [("screen", officer_name), ("accept", officer_name)]
