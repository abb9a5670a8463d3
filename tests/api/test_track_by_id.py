"""Tracking without the code: citizen ID + the phone's last 4 digits find the person's cases; every miss
looks the same; bad IDs are 422 in Thai and English; guesses are limited per address and per ID."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from stdnum.th import pin

from cli.devserver import free_port
from config.settings import Settings
from store import models
from store.db import Database
from tests.api.conftest import app_client

PATH = "/api/v1/track/by-citizen-id"


def citizen_id() -> str:
    body = str(random.randint(1, 8)) + "".join(random.choices("0123456789", k=11))
    return body + pin.calc_check_digit(body)


@asynccontextmanager
async def client_for(
    settings: Settings, address: str = "203.0.113.50", **limits: int
) -> AsyncIterator[httpx.AsyncClient]:
    away = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{free_port()}", "rate_track_by_id_per_minute": 0, **limits}
    )
    async with app_client(away, address=address) as client:
        yield client


async def add_case(db: Database, *, citizen: str | None, phone: str | None, status: str = "screening") -> models.Case:
    now = datetime.now(UTC)
    case = models.Case(
        case_id=f"RT-TID-{uuid.uuid4().hex[:8]}",
        tracking_code=uuid.uuid4().hex[:5].upper() + "-" + uuid.uuid4().hex[:5].upper(),
        workflow_id=f"wf-{uuid.uuid4().hex[:8]}",
        status=status,
        channel="web",
        description="ถนนหน้าบ้านเป็นหลุมบ่อ",
        complainant_name="สมชาย ใจดี",
        complainant_citizen_id=citizen,
        complainant_phone=phone,
        preferred_channels=["web"],
        received_at=now,
        expected_by=now + timedelta(days=7),
        updated_at=now,
        closed_at=now if status == "closed" else None,
    )
    async with db.session() as s:
        s.add(case)
    return case


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(settings) as c:
        yield c


async def test_the_right_pair_finds_the_persons_cases_with_their_codes(client: httpx.AsyncClient, db: Database) -> None:
    person = citizen_id()
    first = await add_case(db, citizen=person, phone="+66812345678")
    second = await add_case(db, citizen=person, phone="+66812345678", status="closed")
    other_phone = await add_case(db, citizen=person, phone="+66899990000")
    await add_case(db, citizen=citizen_id(), phone="+66812345678")  # someone else, same phone digits
    dashed = f"{person[0]}-{person[1:5]}-{person[5:10]}-{person[10:12]}-{person[12]}"
    response = await client.post(PATH, json={"citizen_id": dashed, "phone_last4": "5678"})
    assert response.status_code == 200
    cases = response.json()["cases"]
    assert {c["tracking_code"] for c in cases} == {first.tracking_code, second.tracking_code}
    assert other_phone.tracking_code not in str(cases)
    by_code = {c["tracking_code"]: c for c in cases}
    assert by_code[first.tracking_code]["status"]["code"] == "screening"
    assert by_code[first.tracking_code]["expected_by"] is not None
    assert by_code[second.tracking_code]["closed_at"] is not None
    # No personal data comes back, only codes and where the cases stand.
    assert "สมชาย" not in response.text and person not in response.text and "5678" not in response.text
    thai = await client.post(PATH, json={"citizen_id": person, "phone_last4": "๕๖๗๘"})
    assert len(thai.json()["cases"]) == 2


async def test_wrong_digits_and_unknown_ids_get_the_same_empty_answer(client: httpx.AsyncClient, db: Database) -> None:
    person = citizen_id()
    await add_case(db, citizen=person, phone="+66812345678")
    await add_case(db, citizen=citizen_id(), phone=None)
    wrong_phone = await client.post(PATH, json={"citizen_id": person, "phone_last4": "0000"})
    unknown_id = await client.post(PATH, json={"citizen_id": citizen_id(), "phone_last4": "5678"})
    assert wrong_phone.status_code == unknown_id.status_code == 200
    assert wrong_phone.json() == unknown_id.json()
    assert wrong_phone.json()["cases"] == [] and wrong_phone.json()["message_th"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"citizen_id": "1234567890120", "phone_last4": "5678"}, "citizen_id", "check digit"),
        ({"citizen_id": "12345", "phone_last4": "5678"}, "citizen_id", "13 digits"),
        ({"citizen_id": "0123456789012", "phone_last4": "5678"}, "citizen_id", "cannot start with 0"),
        ({"citizen_id": "1101700230708", "phone_last4": "56"}, "phone_last4", "last 4 digits"),
        ({"citizen_id": "1101700230708", "phone_last4": "١٢٣٤"}, "phone_last4", "last 4 digits"),
        ({"citizen_id": "1101700230708"}, "phone_last4", "required"),
    ],
)
async def test_bad_input_is_422_in_thai_and_english_without_echoing_it(
    client: httpx.AsyncClient, body: dict[str, str], field: str, fragment: str
) -> None:
    response = await client.post(PATH, json=body)
    assert response.status_code == 422
    detail = next(d for d in response.json()["error"]["details"] if d["field"] == field)
    assert fragment in detail["message"] and detail["message_th"]
    assert body["citizen_id"] not in response.text


async def test_the_id_never_goes_in_a_url(client: httpx.AsyncClient) -> None:
    # GET reads "by-citizen-id" as a tracking code, which it is not.
    response = await client.get(PATH, params={"citizen_id": "1101700230708", "phone_last4": "5678"})
    assert response.status_code in {404, 405} and "cases" not in response.json()


async def test_guesses_are_limited_per_address(settings: Settings) -> None:
    async with client_for(settings, rate_track_by_id_per_minute=3) as client:
        answers = [
            (await client.post(PATH, json={"citizen_id": citizen_id(), "phone_last4": f"{n:04d}"})).status_code
            for n in range(4)
        ]
    assert answers == [200, 200, 200, 429]


async def test_guesses_at_one_id_are_limited_from_every_address(settings: Settings, db: Database) -> None:
    person = citizen_id()
    await add_case(db, citizen=person, phone="+66812345678")
    app_settings = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{free_port()}", "rate_track_by_id_per_minute": 0}
    )
    # One app (one limiter), callers from many addresses: the per-ID count still stops the guessing.
    from api.main import create_app

    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        answers = []
        for n in range(6):
            transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{n + 1}", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://rongtuk") as c:
                answers.append((await c.post(PATH, json={"citizen_id": person, "phone_last4": f"{n:04d}"})).status_code)
    assert answers == [200] * 5 + [429]
