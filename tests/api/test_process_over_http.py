"""The process through the HTTP API: 409 for what a state does not allow, search attributes, citizen actions."""

from __future__ import annotations

import json
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import OFFICER, SUPERVISOR, agency, complaint, until_filed
from workflows import search_attributes as sa
from workflows.complaint import workflow_id_for
from workflows.process import EVENTS, SYSTEM_EVENTS, State, events_from

DOPA = agency("DOPA")
RESPONSE = {"outcome": "resolved", "response": "ดำเนินการแก้ไขแล้ว"}
# (who, action, body) from intake to each state; "citizen" acts through the tracking code.
STEPS: list[tuple[State, str, str, dict[str, Any]]] = [
    (State.SCREENING, "officer", "screen", {}),
    (State.ASSIGNMENT, "officer", "accept", {"category": "roads.pothole", "agencies": ["DOPA"]}),
    (State.STAGE1, "dopa", "agency_accept", {}),
    (State.RESPONDED, "dopa", "respond", RESPONSE),
    (State.CLOSED, "supervisor", "close", {}),
    (State.STAGE2, "citizen", "request_review", {"reason": "ยังไม่ได้รับการแก้ไข"}),
    (State.STAGE2_INVESTIGATION, "officer", "acknowledge", {"points": "งานซ่อม", "outcome_wanted": "ซ่อมใหม่"}),
    (State.STAGE2_INVESTIGATION, "dopa", "report_findings", {"findings": "ตรวจสอบแล้ว งานซ่อมไม่ได้มาตรฐาน"}),
    (State.CLOSED_STAGE2, "supervisor", "respond_stage2", RESPONSE),
    (State.REFERRED, "citizen", "refer", {}),
]
HEADERS = {"officer": OFFICER, "supervisor": SUPERVISOR, "dopa": DOPA}


async def do(
    api: httpx.AsyncClient, receipt: dict[str, Any], who: str, action: str, body: dict[str, Any]
) -> httpx.Response:
    if who == "citizen":
        return await api.post(f"/api/v1/track/{receipt['tracking_code']}/actions/{action}", json=body)
    return await api.post(f"/api/v1/cases/{receipt['case_id']}/actions/{action}", json=body, headers=HEADERS[who])


async def timeline(api: httpx.AsyncClient, case_id: str) -> list[int]:
    case = (await api.get(f"/api/v1/cases/{case_id}", headers=SUPERVISOR)).json()
    return [e["seq"] for e in case["timeline"]]


async def test_every_state_refuses_what_the_table_does_not_allow_with_409(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    case_id = receipt["case_id"]
    state = State.RECEIVED
    for next_state, who, action, body in [(State.RECEIVED, "", "", {}), *STEPS]:
        if action:
            response = await do(api, receipt, who, action, body)
            assert response.status_code == 200, response.text
            state = next_state
        before = await timeline(api, case_id)
        for event in sorted(EVENTS - SYSTEM_EVENTS - {t.event for t in events_from(state)}):
            refused = await api.post(f"/api/v1/cases/{case_id}/actions/{event}", json={}, headers=SUPERVISOR)
            assert refused.status_code == 409, (state, event, refused.text)
            assert refused.json()["error"]["message_th"]
        assert await timeline(api, case_id) == before, f"a refused action left a trace in {state}"


async def test_citizen_tracks_replies_and_rates_with_the_tracking_code(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    code = receipt["tracking_code"]
    await do(api, receipt, "officer", "screen", {})
    await do(api, receipt, "officer", "need_info", {"question": "เกิดเหตุที่ซอยอะไร"})
    tracked = (await api.get(f"/api/v1/track/{code}")).json()
    assert tracked["status"]["code"] == "awaiting_info"
    assert tracked["timeline"][-1]["question"] == "เกิดเหตุที่ซอยอะไร"
    assert [a["action"] for a in tracked["allowed_actions"]] == ["reply", "withdraw"]
    bad = await api.post(f"/api/v1/track/{code}/actions/reply", json={"answer": ""})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "answer"
    replied = await api.post(f"/api/v1/track/{code}/actions/reply", json={"answer": "ซอยสุขุมวิท 101"})
    assert replied.status_code == 200 and replied.json()["status"]["code"] == "screening"
    wrong = await api.post(f"/api/v1/track/{code}/actions/close", json={})
    assert wrong.status_code == 409
    not_mine = await api.post(f"/api/v1/track/{code}/actions/accept", json={})
    assert not_mine.status_code == 403
    again = await api.post(f"/api/v1/track/{code}/actions/reply", json={"answer": "อีกครั้ง"})
    assert again.status_code == 409  # no longer waiting for information


async def test_duplicate_must_name_an_existing_other_case(api: httpx.AsyncClient) -> None:
    first = (await api.post("/api/v1/complaints", json=complaint())).json()
    second = (await api.post("/api/v1/complaints", json=complaint())).json()
    await do(api, second, "officer", "screen", {})
    for original in ("RT-19990101-XXXXXX", second["case_id"]):
        response = await do(api, second, "officer", "duplicate", {"original_case_id": original})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "original_case_id"
    ok = await do(api, second, "officer", "duplicate", {"original_case_id": first["case_id"]})
    assert ok.status_code == 200
    tracked = (await api.get(f"/api/v1/track/{second['tracking_code']}")).json()
    assert tracked["duplicate_of"] == first["case_id"] and tracked["closure_reason"] == "duplicate"


async def test_search_attributes_show_state_agency_and_deadline_without_personal_data(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await do(api, receipt, "officer", "screen", {})
    await do(api, receipt, "officer", "accept", {"category": "roads.pothole", "agencies": ["DOPA"]})
    described = await dev_env.client.get_workflow_handle(workflow_id_for(receipt["case_id"])).describe()
    attrs = described.typed_search_attributes
    assert attrs.get(sa.STATUS) == "assignment"
    assert attrs.get(sa.AGENCY) == ["DOPA"]
    assert attrs.get(sa.DUE_AT) is not None and attrs.get(sa.OVERDUE) is False
    raw = str(described.raw_description)
    assert "812345678" not in raw
    # The attributes' values are JSON payloads (a Thai name escaped in them), which the text form above shows
    # only as octal bytes: look in each payload for the name either way.
    indexed = described.raw_description.workflow_execution_info.search_attributes.indexed_fields
    values = b"".join(payload.data for payload in indexed.values())
    assert b'"assignment"' in values  # the status, as the payloads hold it: these are the values
    assert "สมหญิง".encode() not in values and json.dumps("สมหญิง")[1:-1].encode() not in values


async def test_every_field_kind_of_the_table_is_accepted_and_checked(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    for who, action, body in [
        ("officer", "screen", {}),
        ("officer", "accept", {"category": "roads.pothole", "agencies": ["DOPA"]}),
        ("dopa", "agency_accept", {}),
    ]:
        assert (await do(api, receipt, who, action, body)).status_code == 200
    too_long = await do(api, receipt, "dopa", "request_extension", {"reason": "งบประมาณ", "working_days": 99})
    assert too_long.status_code == 422 and too_long.json()["error"]["details"][0]["field"] == "working_days"
    as_text = await do(api, receipt, "dopa", "request_extension", {"reason": "งบประมาณ", "working_days": "3"})
    assert as_text.status_code == 422
    asked = await do(api, receipt, "dopa", "request_extension", {"reason": "งบประมาณ", "working_days": 3})
    assert asked.status_code == 200, asked.text
    case = (await api.get(f"/api/v1/cases/{receipt['case_id']}", headers=SUPERVISOR)).json()
    approve = next(a for a in case["allowed_actions"] if a["action"] == "approve_extension")
    assert {f["name"]: f["kind"] for f in approve["fields"]} == {"agency": "agency", "note": "text"}
    bad_agency = await do(api, receipt, "supervisor", "approve_extension", {"agency": "NOPE"})
    assert bad_agency.status_code == 422
    assert (await do(api, receipt, "supervisor", "approve_extension", {"agency": "DOPA"})).status_code == 200
    for who, action, body in [("dopa", "respond", RESPONSE), ("officer", "close", {})]:
        assert (await do(api, receipt, who, action, body)).status_code == 200
    for rating in (0, 6, "5"):
        assert (await do(api, receipt, "citizen", "rate", {"rating": rating})).status_code == 422
    rated = await do(api, receipt, "citizen", "rate", {"rating": 5, "comment": "ขอบคุณค่ะ"})
    assert rated.status_code == 200, rated.text


async def test_an_agency_asks_the_complainant_who_answers_through_tracking(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    code, case_id = receipt["tracking_code"], receipt["case_id"]
    await do(api, receipt, "officer", "screen", {})
    await do(api, receipt, "officer", "accept", {"category": "roads.pothole", "agencies": ["DOPA"]})
    early = await do(api, receipt, "dopa", "agency_ask_info", {"question": "เสาไฟต้นไหน"})
    assert early.status_code == 409, "the agency asks once it has accepted the case"
    await do(api, receipt, "dopa", "agency_accept", {})
    before = (await api.get(f"/api/v1/cases/{case_id}", headers=DOPA)).json()["agencies"][0]["task"]
    for body in ({}, {"question": ""}, {"question": "x" * 2001}, {"question": "ok", "extra": 1}):
        bad = await do(api, receipt, "dopa", "agency_ask_info", body)
        assert bad.status_code == 422, body
        assert bad.json()["error"]["message"] and bad.json()["error"]["message_th"]
    asked = await do(api, receipt, "dopa", "agency_ask_info", {"question": "เสาไฟต้นไหน มีหมายเลขไหม"})
    assert asked.status_code == 200, asked.text
    task = asked.json()["agencies"][0]["task"]
    assert task["waiting_for_complainant_since"] and task["due_at"] != before["due_at"]
    again = await do(api, receipt, "dopa", "agency_ask_info", {"question": "อีกข้อ"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "question_pending"

    tracked = (await api.get(f"/api/v1/track/{code}")).json()
    assert tracked["status"]["code"] == "stage1"
    assert tracked["timeline"][-1]["event"] == "agency_ask_info"
    assert tracked["timeline"][-1]["question"] == "เสาไฟต้นไหน มีหมายเลขไหม"
    assert [a["action"] for a in tracked["allowed_actions"]] == ["answer_agency", "withdraw"]
    empty = await api.post(f"/api/v1/track/{code}/actions/answer_agency", json={"answer": ""})
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["field"] == "answer"
    assert empty.json()["error"]["message_th"]
    unknown = await api.post(f"/api/v1/track/{code}/actions/answer_agency", json={"answer": "ต้นที่ 12", "agency": "NOPE"})
    assert unknown.status_code == 422
    other = await api.post(f"/api/v1/track/{code}/actions/answer_agency", json={"answer": "ต้นที่ 12", "agency": "BMA"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "no_question_pending"
    answered = await api.post(f"/api/v1/track/{code}/actions/answer_agency", json={"answer": "ต้นที่ 12 หน้าร้านค้า"})
    assert answered.status_code == 200, answered.text
    assert [a["action"] for a in answered.json()["allowed_actions"]] == ["withdraw"]
    twice = await api.post(f"/api/v1/track/{code}/actions/answer_agency", json={"answer": "อีกครั้ง"})
    assert twice.status_code == 409
    after = (await api.get(f"/api/v1/cases/{case_id}", headers=DOPA)).json()
    assert after["agencies"][0]["task"]["waiting_for_complainant_since"] is None
    assert [e["event"] for e in after["timeline"]][-2:] == ["agency_ask_info", "answer_agency"]
    assert after["timeline"][-1]["data"]["answer"] == "ต้นที่ 12 หน้าร้านค้า"


async def test_agency_led_stage2_over_http(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id = receipt["case_id"]
    for next_state, who, action, body in STEPS[:6]:  # up to the review request (stage 2)
        assert (await do(api, receipt, who, action, body)).status_code == 200, (next_state, action)
    ack = {"points": "งานซ่อม", "outcome_wanted": "ซ่อมใหม่"}
    unknown = await do(api, receipt, "supervisor", "acknowledge", ack | {"agencies": ["NOPE"]})
    assert unknown.status_code == 422 and unknown.json()["error"]["message_th"]
    officer_names = await do(api, receipt, "officer", "acknowledge", ack | {"agencies": ["BMA"]})
    assert officer_names.status_code == 409 and officer_names.json()["error"]["code"] == "needs_supervisor"
    early = await do(api, receipt, "dopa", "report_findings", {"findings": "ตรวจแล้ว"})
    assert early.status_code == 409, "no investigation before the acknowledgement"
    acknowledged = await do(api, receipt, "officer", "acknowledge", ack)
    assert acknowledged.status_code == 200, acknowledged.text
    task = acknowledged.json()["agencies"][0]["task"]
    assert task["stage"] == 2 and task["status"] == "accepted" and task["due_at"]
    dopa_view = (await api.get(f"/api/v1/cases/{case_id}", headers=DOPA)).json()
    assert [a["action"] for a in dopa_view["allowed_actions"]] == ["report_findings"]
    pending = await do(api, receipt, "supervisor", "respond_stage2", RESPONSE)
    assert pending.status_code == 409 and pending.json()["error"]["code"] == "findings_pending"
    assert pending.json()["error"]["message_th"]
    for body in ({}, {"findings": ""}, {"findings": "x" * 5001}, {"findings": "ok", "outcome": "upheld"}):
        bad = await do(api, receipt, "dopa", "report_findings", body)
        assert bad.status_code == 422, body
        assert bad.json()["error"]["message"] and bad.json()["error"]["message_th"]
    reported = await do(api, receipt, "dopa", "report_findings", {"findings": "ผู้รับเหมาซ่อมไม่ได้มาตรฐาน"})
    assert reported.status_code == 200, reported.text
    assert reported.json()["status"]["code"] == "stage2_investigation"
    twice = await do(api, receipt, "dopa", "report_findings", {"findings": "อีกครั้ง"})
    assert twice.status_code == 409
    final = await do(api, receipt, "officer", "respond_stage2", RESPONSE)
    assert final.status_code == 200 and final.json()["status"]["code"] == "closed_stage2"
