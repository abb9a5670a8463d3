"""GET /api/v1/cases/{id}/screening through the real app, worker and read model."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from config.settings import Settings
from screening.examples import decided_examples
from screening.service import Screener
from store.db import Database
from tests.api.conftest import AUDITOR, OFFICER, SUPERVISOR, agency, complaint


async def test_officers_and_supervisors_see_the_screening(api: httpx.AsyncClient) -> None:
    body = complaint(
        description="ถนนเป็นหลุมใหญ่ ซอยโชคชัย 4 เขตลาดพร้าว รถจักรยานยนต์ล้มไปสองคันแล้ว",
        location={"province": "Bangkok"},
    )
    first = (await api.post("/api/v1/complaints", json=body)).json()["case_id"]
    second = (await api.post("/api/v1/complaints", json=body)).json()["case_id"]

    response = await api.get(f"/api/v1/cases/{second}/screening", headers=OFFICER)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["case_id"] == second
    assert result["completeness"]["place"]["district"]["code"] == "1038"
    assert result["categories"][0]["category"] == "roads.pothole"
    assert result["agencies"][0]["code"] == "BKK-1038"
    duplicates = {d["case_id"]: d for d in result["duplicates"]}
    assert first in duplicates and second not in duplicates
    assert "same complainant (phone)" in duplicates[first]["reasons"]
    assert result["decision"]["action"] == "queue"

    # A complaint filed after the first screening is found too (the cached index is topped up).
    third = (await api.post("/api/v1/complaints", json=body)).json()["case_id"]
    again = await api.get(f"/api/v1/cases/{second}/screening", headers=SUPERVISOR)
    assert again.status_code == 200
    assert {first, third} <= {d["case_id"] for d in again.json()["duplicates"]}


async def test_others_may_not_screen(api: httpx.AsyncClient) -> None:
    case_id = (await api.post("/api/v1/complaints", json=complaint())).json()["case_id"]
    refused = await api.get(f"/api/v1/cases/{case_id}/screening", headers=AUDITOR)
    assert refused.status_code == 403 and refused.json()["error"]["message_th"]
    assert (await api.get(f"/api/v1/cases/{case_id}/screening", headers=agency("BMA"))).status_code == 404
    assert (await api.get("/api/v1/cases/RT-NOPE/screening", headers=OFFICER)).status_code == 404
    assert (await api.get(f"/api/v1/cases/{case_id}/screening")).status_code == 401


async def test_officers_decisions_become_training_examples(api: httpx.AsyncClient, db: Database) -> None:
    body = complaint(description="ไฟฟ้าดับทั้งซอยมาสองวันแล้ว เขตบางนา ตู้เย็นเสียหมด", location={"province": "Bangkok"})
    case_id = (await api.post("/api/v1/complaints", json=body)).json()["case_id"]
    assert (await api.post(f"/api/v1/cases/{case_id}/actions/screen", json={}, headers=OFFICER)).status_code == 200
    screening = (await api.get(f"/api/v1/cases/{case_id}/screening", headers=OFFICER)).json()
    # One click: the suggested accept is a ready body for the action endpoint.
    accept = next(a for a in screening["actions"] if a["action"] == "accept")
    assert accept["data"] == {"category": "utilities.power", "agencies": ["MEA"]}
    accepted = await api.post(f"/api/v1/cases/{case_id}/actions/accept", json=accept["data"], headers=OFFICER)
    assert accepted.status_code == 200, accepted.text
    async with db.sessions() as session:
        examples = {e.ref: e for e in await decided_examples(session)}
    example = examples[case_id]
    assert example.category == "utilities.power" and example.agencies == ("MEA",)
    assert example.place is not None and example.place.province_code == "10"
    assert example.text.startswith("ไฟฟ้าดับ")


async def test_the_model_loads_once_off_the_event_loop_however_many_screenings_ask(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first screenings of a process load the screening model: once, in a thread (loading is CPU work, and
    on the event loop it held up every request of the process)."""
    loads: list[int] = []
    real = Screener.from_settings

    def load(settings: Settings) -> Screener:
        loads.append(threading.get_ident())
        return real(settings)

    monkeypatch.setattr(Screener, "from_settings", staticmethod(load))  # the app is this test's own: not loaded yet
    case_id = (await api.post("/api/v1/complaints", json=complaint())).json()["case_id"]

    answers = await asyncio.gather(*(api.get(f"/api/v1/cases/{case_id}/screening", headers=OFFICER) for _ in range(3)))
    assert [a.status_code for a in answers] == [200] * 3
    assert len(loads) == 1 and loads[0] != threading.get_ident()
