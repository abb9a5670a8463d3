"""Kind, priority and receiving centre over HTTP: set at intake, shown to staff and citizens, changed with a
reason (on the timeline), refused with 422/409 where the input or the state says no. Real app, dev server,
worker and read model."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from tests.api.conftest import OFFICER, SUPERVISOR, agency, complaint
from tests.api.test_cases_api import act, assert_error, file

CHIANG_MAI = {"province": "เชียงใหม่"}


async def test_intake_with_kind_priority_and_centre_shows_everywhere(api: httpx.AsyncClient) -> None:
    normal = await file(api, location=CHIANG_MAI)
    urgent = await file(api, kind="request", priority="urgent", centre="damrong-50", location=CHIANG_MAI)
    # The urgent class's shorter allowances: the citizen is promised an earlier date.
    assert date.fromisoformat(urgent["expected_by"]) < date.fromisoformat(normal["expected_by"])

    case = (await api.get(f"/api/v1/cases/{urgent['case_id']}", headers=OFFICER)).json()
    assert case["kind"] == {"code": "request", "label_en": "Request for help", "label_th": "ขอความช่วยเหลือ"}
    assert case["priority"]["code"] == "urgent" and case["priority"]["label_th"] == "เร่งด่วน"
    assert case["centre"]["code"] == "DAMRONG-50" and case["centre"]["label_th"] == "ศูนย์ดำรงธรรมจังหวัดเชียงใหม่"
    assert case["sla_class"]["code"] == "urgent"
    assert case["region"] == {"code": "north", "label_en": "North", "label_th": "ภาคเหนือ"}

    tracked = (await api.get(f"/api/v1/track/{urgent['tracking_code']}")).json()
    assert tracked["kind"]["label_th"] == "ขอความช่วยเหลือ" and tracked["priority"]["label_th"] == "เร่งด่วน"
    assert tracked["centre"]["label_th"] == "ศูนย์ดำรงธรรมจังหวัดเชียงใหม่"
    assert "sla_class" not in tracked and "region" not in tracked

    plain = (await api.get(f"/api/v1/cases/{normal['case_id']}", headers=OFFICER)).json()
    assert (plain["kind"]["code"], plain["priority"]["code"], plain["centre"]["code"]) == (
        "complaint",
        "normal",
        "PSC-1111",
    )
    assert plain["sla_class"]["code"] == "standard"

    board = (
        await api.get("/api/v1/cases", params={"priority": "urgent", "centre": "DAMRONG-50"}, headers=SUPERVISOR)
    ).json()
    assert urgent["case_id"] in [i["case_id"] for i in board["items"]]
    assert normal["case_id"] not in [i["case_id"] for i in board["items"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "gossip"}, "kind"),
        ({"priority": "asap"}, "priority"),
        ({"centre": "NOWHERE-1"}, "centre"),
        ({"centre": ""}, "centre"),
    ],
)
async def test_bad_kind_priority_or_centre_is_422_in_thai_and_english(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await api.post("/api/v1/complaints", json=complaint(**change))
    error = assert_error(response, 422)
    (detail,) = error["details"]
    assert detail["field"] == field
    assert detail["message"] and detail["message_th"] and detail["message"] != detail["message_th"]


async def test_reclassify_with_a_reason_is_on_the_timeline_and_moves_the_dates(api: httpx.AsyncClient) -> None:
    receipt = await file(api, location=CHIANG_MAI)
    case_id = receipt["case_id"]
    assert (await act(api, case_id, "screen", OFFICER)).status_code == 200
    accepted = await act(api, case_id, "accept", OFFICER, {"category": "roads.pothole", "agencies": ["BMA"]})
    assert accepted.status_code == 200, accepted.text
    before = accepted.json()
    assert any(a["action"] == "reclassify" for a in before["allowed_actions"])

    moved = await act(
        api, case_id, "reclassify", SUPERVISOR, {"priority": "urgent", "centre": "DAMRONG-50", "reason": "น้ำท่วมบ้าน"}
    )
    assert moved.status_code == 200, moved.text
    after = moved.json()
    assert after["priority"]["code"] == "urgent" and after["centre"]["code"] == "DAMRONG-50"
    assert after["sla_class"]["code"] == "urgent"
    assert after["due_at"] < before["due_at"], "the agency's acceptance deadline follows the urgent class"
    assert after["expected_by"] < before["expected_by"]
    row = after["timeline"][-1]
    assert row["event"] == "reclassify" and row["actor"]["role"] == "supervisor"
    assert row["data"]["reason"] == "น้ำท่วมบ้าน"
    assert row["data"]["before"] == {"priority": "normal", "centre": "PSC-1111", "sla_class": "standard"}
    assert row["data"]["after"] == {"priority": "urgent", "centre": "DAMRONG-50", "sla_class": "urgent"}
    # Internal: the citizen's timeline does not show it.
    tracked = (await api.get(f"/api/v1/track/{receipt['tracking_code']}")).json()
    assert "reclassify" not in [e["event"] for e in tracked["timeline"]]
    assert tracked["priority"]["code"] == "urgent"

    same = await act(api, case_id, "reclassify", OFFICER, {"priority": "urgent", "reason": "ซ้ำ"})
    # Refused by the workflow's validator (the early check has no payload to judge), in Thai as well.
    assert assert_error(same, 409, "nothing_changes")["message_th"] == "เรื่องนี้มีค่าเหล่านี้อยู่แล้ว"
    assert_error(await act(api, case_id, "reclassify", OFFICER, {"kind": "request"}), 422)  # no reason
    assert_error(await act(api, case_id, "reclassify", OFFICER, {"centre": "MARS-1", "reason": "x"}), 422)
    assert_error(await act(api, case_id, "reclassify", OFFICER, {"sla_class": "slow", "reason": "x"}), 422)
    assert_error(await act(api, case_id, "reclassify", OFFICER, {"kind": "gossip", "reason": "x"}), 422)
    refused = await act(api, case_id, "reclassify", agency("BMA"), {"kind": "request", "reason": "x"})
    assert refused.status_code in (403, 409) and refused.json()["error"]["code"] == "role_not_allowed"


async def test_a_class_chosen_at_screening_needs_a_reason(api: httpx.AsyncClient) -> None:
    case_id = (await file(api))["case_id"]
    error = assert_error(await act(api, case_id, "screen", OFFICER, {"sla_class": "complex"}), 409, "reason_needed")
    assert error["message_th"] == "การเลือกประเภทระยะเวลา (SLA) ต้องระบุเหตุผล"
    screened = await act(api, case_id, "screen", OFFICER, {"sla_class": "complex", "reason": "ต้องตรวจพื้นที่"})
    assert screened.status_code == 200, screened.text
    body = screened.json()
    assert body["sla_class"]["code"] == "complex"
    assert body["timeline"][-1]["data"]["reason"] == "ต้องตรวจพื้นที่"


async def test_reclassify_is_refused_with_409_once_the_case_is_over(api: httpx.AsyncClient) -> None:
    case_id = (await file(api))["case_id"]
    withdrawn = await act(api, case_id, "withdraw", OFFICER, {"reason": "ผู้ร้องขอถอน"})
    assert withdrawn.status_code == 200, withdrawn.text
    error = assert_error(await act(api, case_id, "reclassify", OFFICER, {"kind": "request", "reason": "x"}), 409)
    assert error["code"] == "not_allowed_in_state"
