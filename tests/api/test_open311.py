"""Open311 GeoReport v2 used the way an existing client uses it: form-encoded POSTs, answers parsed as XML
and as JSON, the spec's filters and error shapes, and no personal data in what anyone can GET."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from cli.devserver import free_port
from config.settings import Settings
from store import models
from store.db import Database
from tests.api.conftest import app_client, running_api

BASE = "/open311/v2"
KEY = "traffy-app-key-0123456789"
NAME, EMAIL, STREET = "มานี มีนา", "manee@example.org", "ซอยสุขุมวิท 71 หน้าร้านก๋วยเตี๋ยว"
DESCRIPTION = "ถนนหน้าซอยเป็นหลุมลึก รถจักรยานยนต์ตกหลุมเกือบทุกคืน ขอให้ซ่อมด่วน"


@pytest.fixture
def open311_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"open311_api_keys": {"traffy-app": KEY}, "open311_jurisdiction_id": "th.psc"})


@pytest.fixture
async def offline(open311_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    away = open311_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with app_client(away) as client:
        yield client


def xml(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.content)


def form(**overrides: str) -> dict[str, str]:
    body = {
        "api_key": KEY,
        "jurisdiction_id": "th.psc",
        "service_code": "roads.pothole",
        "lat": "13.7246",
        "long": "100.5927",
        "address_string": STREET,
        "description": DESCRIPTION,
        "first_name": "มานี",
        "last_name": "มีนา",
        "email": EMAIL,
        "media_url": "https://photos.example.org/pothole.jpg",
        "attribute[district]": "วัฒนา",
        "attribute[province]": "กรุงเทพมหานคร",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v != ""}


async def test_discovery_and_services_in_json_and_xml(offline: httpx.AsyncClient) -> None:
    discovery = (await offline.get(f"{BASE}/discovery.json")).json()
    assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert "text/xml" in discovery["endpoints"][0]["formats"]
    assert xml(await offline.get(f"{BASE}/discovery.xml")).find("endpoints/endpoint/url") is not None

    listed = (await offline.get(f"{BASE}/services.json")).json()
    pothole = next(s for s in listed if s["service_code"] == "roads.pothole")
    assert pothole["service_name"] == "ถนนชำรุด หลุมบ่อ" and pothole["metadata"] is True and pothole["type"] == "realtime"
    english = (await offline.get(f"{BASE}/services.json", params={"locale": "en"})).json()
    assert (
        next(s for s in english if s["service_code"] == "roads.pothole")["service_name"] == "Damaged roads and potholes"
    )
    root = xml(await offline.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    codes = [s.findtext("service_code") for s in root.findall("service")]
    assert "roads.pothole" in codes and len(codes) == len(listed)

    definition = xml(await offline.get(f"{BASE}/services/roads.pothole.xml"))
    assert definition.tag == "service_definition" and definition.findtext("service_code") == "roads.pothole"
    attributes = {a.findtext("code"): a for a in definition.findall("attributes/attribute")}
    assert {"province", "district"} <= set(attributes)
    assert attributes["district"].findtext("variable") == "true"
    assert attributes["district"].findtext("datatype") == "string"
    as_json = (await offline.get(f"{BASE}/services/roads.pothole.json")).json()
    assert [a["code"] for a in as_json["attributes"]] == list(attributes)


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/services/no.such.json", 404, "service_code not found"),
        ("/services.json?jurisdiction_id=elsewhere", 404, "jurisdiction_id"),
        ("/services.yaml", 404, ".json or .xml"),
        ("/requests/RT-19990101-NOPE00.json", 404, "service_request_id not found"),
        ("/tokens/RT-19990101-NOPE00.json", 404, "token"),
        ("/requests.json?status=pending", 422, "status"),
        ("/requests.json?start_date=yesterday", 422, "start_date"),
    ],
)
async def test_get_errors_have_the_spec_shape(
    offline: httpx.AsyncClient, path: str, status: int, fragment: str
) -> None:
    response = await offline.get(BASE + path)
    assert response.status_code == status
    errors = response.json()
    assert isinstance(errors, list) and errors[0]["code"] == status and fragment in errors[0]["description"]
    as_xml = await offline.get(BASE + path.replace(".json", ".xml"))
    if path.endswith(".yaml"):
        return
    root = xml(as_xml)
    assert root.tag == "errors" and root.findtext("error/code") == str(status)


@pytest.mark.parametrize(
    ("overrides", "status", "fragment"),
    [
        ({"api_key": ""}, 403, "api_key"),
        ({"api_key": "guessed-key"}, 403, "api_key"),
        ({"jurisdiction_id": "elsewhere"}, 404, "jurisdiction_id"),
        ({"service_code": ""}, 400, "service_code was not provided"),
        ({"service_code": "no.such"}, 404, "service_code not found"),
        (
            {"lat": "", "long": "", "address_string": "", "attribute[district]": "", "attribute[province]": ""},
            400,
            "lat",
        ),
        ({"description": "หลุม"}, 422, "description"),
        ({"lat": "north"}, 422, "lat"),
        ({"lat": "35.6", "long": "139.7"}, 422, "outside Thailand"),
        ({"email": "not-an-address"}, 422, "email"),
        ({"attribute[district]": "ไม่มีเขตนี้"}, 422, "attribute[district]"),
        ({"media_url": "javascript:alert(1)"}, 422, "media_url"),
        ({"description": "ถนนเป็นหลุม\x00ลึกมากจริง ๆ"}, 422, "control characters"),
    ],
)
async def test_post_errors_have_the_spec_shape_and_file_nothing(
    offline: httpx.AsyncClient, overrides: dict[str, str], status: int, fragment: str
) -> None:
    response = await offline.post(f"{BASE}/requests.xml", data=form(**overrides))
    assert response.status_code == status, response.text
    root = xml(response)
    assert root.tag == "errors" and root.findtext("error/code") == str(status)
    descriptions = " ".join(e.findtext("description") or "" for e in root.findall("error"))
    assert fragment in descriptions
    assert EMAIL not in response.text and "javascript" not in response.text


async def add_case(db: Database, **fields: Any) -> models.Case:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "case_id": f"RT-20261201-{uuid.uuid4().hex[:6].upper()}",
        "tracking_code": uuid.uuid4().hex[:5].upper() + "-" + uuid.uuid4().hex[:5].upper(),
        "workflow_id": f"wf-{uuid.uuid4().hex[:8]}",
        "status": "stage1",
        "channel": "web",
        "description": "ไฟถนนดับทั้งซอย",
        "category": "roads.pothole",
        "complainant_name": NAME,
        "preferred_channels": ["web"],
        "received_at": now,
        "expected_by": now + timedelta(days=7),
        "updated_at": now,
        "latitude": 13.72461,
        "longitude": 100.59271,
        **fields,
    }
    case = models.Case(**values)
    async with db.session() as s:
        s.add(case)
    return case


async def test_get_requests_filters_and_hides_personal_data(offline: httpx.AsyncClient, db: Database) -> None:
    closed = await add_case(db, status="closed", closed_at=datetime.now(UTC), outcome="resolved", agencies=["BMA"])
    open_case = await add_case(db, category="water.flooding", address=STREET)
    secret = await add_case(db, confidential=True)
    old = await add_case(db, received_at=datetime.now(UTC) - timedelta(days=200))

    both = (
        await offline.get(
            f"{BASE}/requests.json", params={"service_request_id": f"{closed.case_id},{open_case.case_id}"}
        )
    ).json()
    assert {r["service_request_id"] for r in both} == {closed.case_id, open_case.case_id}
    by_id = {r["service_request_id"]: r for r in both}
    assert by_id[closed.case_id]["status"] == "closed" and "resolved" in by_id[closed.case_id]["status_notes"]
    assert by_id[open_case.case_id]["status"] == "open" and by_id[open_case.case_id]["expected_datetime"]
    assert by_id[open_case.case_id]["lat"] == 13.725 and by_id[open_case.case_id]["address"] is None

    recent = {r["service_request_id"] for r in (await offline.get(f"{BASE}/requests.json")).json()}
    assert {closed.case_id, open_case.case_id} <= recent
    assert secret.case_id not in recent and old.case_id not in recent, "confidential and >90 days old are not listed"
    start = (datetime.now(UTC) - timedelta(days=365)).isoformat()
    with_old = (await offline.get(f"{BASE}/requests.json", params={"start_date": start})).json()
    assert old.case_id in {r["service_request_id"] for r in with_old}

    only_closed = (await offline.get(f"{BASE}/requests.json", params={"status": "closed"})).json()
    assert {r["status"] for r in only_closed} == {"closed"} and closed.case_id in {
        r["service_request_id"] for r in only_closed
    }
    flooding = (await offline.get(f"{BASE}/requests.json", params={"service_code": "water.flooding"})).json()
    assert {r["service_code"] for r in flooding} == {"water.flooding"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    # Only what was requested since then (the session's time-skipped workflow tests file cases dated ahead).
    ahead = (await offline.get(f"{BASE}/requests.json", params={"start_date": future})).json()
    assert all(datetime.fromisoformat(r["requested_datetime"]) >= datetime.fromisoformat(future) for r in ahead)
    assert not {closed.case_id, open_case.case_id} & {r["service_request_id"] for r in ahead}

    root = xml(await offline.get(f"{BASE}/requests.xml", params={"service_request_id": open_case.case_id}))
    assert root.tag == "service_requests" and root.findtext("request/status") == "open"
    assert (await offline.get(f"{BASE}/requests/{secret.case_id}.json")).status_code == 404
    everything = (await offline.get(f"{BASE}/requests.json", params={"start_date": start})).text
    for personal in (NAME, STREET, "ไฟถนนดับทั้งซอย", open_case.tracking_code):
        assert personal not in everything


async def test_an_open311_client_files_and_follows_a_request(
    dev_env: WorkflowEnvironment, open311_settings: Settings, db: Database, task_queue: str
) -> None:
    async with running_api(dev_env, open311_settings, db, task_queue) as api:
        posted = await api.post(f"{BASE}/requests.xml", data=form())
        assert posted.status_code == 200, posted.text
        root = xml(posted)
        request_id = root.findtext("request/service_request_id")
        notice = root.findtext("request/service_notice") or ""
        assert request_id and request_id.startswith("RT-") and "รหัสติดตาม" in notice

        async with db.sessions() as s:
            case = await s.get(models.Case, request_id)
        assert case is not None and case.channel == "app" and case.category == "roads.pothole"
        assert case.complainant_name == NAME and case.complainant_email == EMAIL
        assert case.district == "เขตวัฒนา" and case.address == STREET
        assert case.attachments[0]["url_or_ref"] == "https://photos.example.org/pothole.jpg"
        assert case.tracking_code in notice

        one = (await api.get(f"{BASE}/requests/{request_id}.json")).json()
        assert len(one) == 1 and one[0]["service_request_id"] == request_id
        assert one[0]["status"] == "open" and one[0]["service_code"] == "roads.pothole"
        assert one[0]["expected_datetime"] and one[0]["requested_datetime"]
        assert one[0]["address"] == "เขตวัฒนา, กรุงเทพมหานคร", "the area, not the street address"
        as_xml = xml(await api.get(f"{BASE}/requests/{request_id}.xml"))
        assert as_xml.findtext("request/expected_datetime") == one[0]["expected_datetime"]
        token = (await api.get(f"{BASE}/tokens/{request_id}.json")).json()
        assert token == [{"service_request_id": request_id, "token": request_id}]
        text = (await api.get(f"{BASE}/requests/{request_id}.json")).text
        for personal in (NAME, "มานี", EMAIL, STREET, DESCRIPTION, "pothole.jpg", case.tracking_code):
            assert personal not in text

        as_json = await api.post(f"{BASE}/requests.json", data=form(email="", first_name="", last_name=""))
        answer = as_json.json()
        assert as_json.status_code == 200 and answer[0]["service_request_id"].startswith("RT-")
        async with db.sessions() as s:
            anonymous = await s.get(models.Case, answer[0]["service_request_id"])
        assert anonymous is not None and anonymous.complainant_name is None


def test_web_links_are_accepted_as_media() -> None:
    # Regression: the scheme check once read "://..." after "https" and refused every web link.
    from api.schemas import Attachment

    assert Attachment(name="media", url_or_ref="https://photos.example.org/p.jpg").url_or_ref.startswith("https://")
    with pytest.raises(ValueError):
        Attachment(name="media", url_or_ref="https:evil")


async def test_posting_is_limited_per_client_key_and_key_guesses_per_address(open311_settings: Settings) -> None:
    limited = open311_settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{free_port()}",
            "rate_open311_client_per_minute": 2,
            "rate_intake_per_minute": 2,
        }
    )
    async with app_client(limited) as client:
        short = [
            (await client.post(f"{BASE}/requests.json", data=form(description="สั้น"))).status_code for _ in range(3)
        ]
        assert short == [422, 422, 429]
        refused = await client.post(f"{BASE}/requests.json", data=form(description="สั้น"))
        assert refused.json()[0]["code"] == 429 and int(refused.headers["retry-after"]) >= 1
        guesses = [
            (await client.post(f"{BASE}/requests.json", data=form(api_key=f"k{n}"))).status_code for n in range(3)
        ]
        assert guesses == [403, 403, 429]
