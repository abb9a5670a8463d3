"""Attachments over HTTP against the real app: upload with a complaint and later, limits, GPS as the place,
stripped copies for everyone but the centre's staff, and who may download what."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from attachments.storage import DiskStorage, content_key
from config.settings import Settings
from store.db import Database
from tests.api.conftest import AUDITOR, OFFICER, SUPERVISOR, agency, complaint, running_api, until_filed
from tests.attachments.images import LATITUDE, LONGITUDE, PDF, SCRIPT, gps_in, photo
from tests.attachments.s3 import S3_FIELDS, bucket_objects, s3_endpoint, s3_settings

__all__ = ["s3_endpoint"]  # the fixture

DOPA = agency("DOPA")
MOI = agency("MOI")


def _form(body: dict[str, Any]) -> dict[str, str]:
    return {"complaint": json.dumps(body, ensure_ascii=False)}


async def _file_with(
    api: httpx.AsyncClient, body: dict[str, Any], files: list[tuple[str, bytes, str]]
) -> httpx.Response:
    return await api.post(
        "/api/v1/complaints/with-attachments",
        data=_form(body),
        files=[("files", f) for f in files],
    )


async def _to_agency(api: httpx.AsyncClient, case_id: str, code: str = "DOPA") -> None:
    for action, body in (("screen", {}), ("accept", {"category": "roads.pothole", "agencies": [code]})):
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=OFFICER)
        assert done.status_code == 200, done.text


async def test_a_photo_with_gps_becomes_the_place_and_is_served_without_it(api: httpx.AsyncClient) -> None:
    body = complaint()
    del body["location"]
    filed = await _file_with(api, body, [("IMG_1.jpg", photo(), "image/jpeg"), ("letter.pdf", PDF, "application/pdf")])
    assert filed.status_code == 201, filed.text
    receipt = filed.json()
    await until_filed(api, receipt["tracking_code"])
    case = (await api.get(f"/api/v1/cases/{receipt['case_id']}", headers=SUPERVISOR)).json()
    assert case["location"]["latitude"] == pytest.approx(LATITUDE, abs=1e-4)
    assert case["location"]["longitude"] == pytest.approx(LONGITUDE, abs=1e-4)
    listed = {a["name"]: a for a in case["attachments"]}
    assert set(listed) == {"IMG_1.jpg", "letter.pdf"}
    assert listed["IMG_1.jpg"]["gps"]["latitude"] == pytest.approx(LATITUDE, abs=1e-4)
    assert "attachment_added" in [e["event"] for e in case["timeline"]]

    tracked = (await api.get(f"/api/v1/track/{receipt['tracking_code']}")).json()
    mine = {a["name"]: a for a in tracked["attachments"]}
    assert set(mine) == {"IMG_1.jpg", "letter.pdf"} and "gps" not in mine["IMG_1.jpg"]
    served = await api.get(mine["IMG_1.jpg"]["download"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.headers["content-disposition"].startswith("attachment")
    assert gps_in(served.content) == {}
    staff_copy = await api.get(listed["IMG_1.jpg"]["download"], headers=OFFICER)
    assert gps_in(staff_copy.content) == {}
    original = await api.get(listed["IMG_1.jpg"]["original"], headers=SUPERVISOR)
    assert original.status_code == 200 and gps_in(original.content)


async def test_photos_are_decoded_off_the_event_loop(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turning a photo upright and stripping its metadata is a third of a second of CPU for a phone's 12
    megapixels: on the event loop it held up every other request of the process."""
    from attachments import service

    loop_thread = threading.get_ident()
    decoded_in: list[int] = []
    real = service.prepare

    def watched(*args: Any, **kwargs: Any) -> Any:
        decoded_in.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "prepare", watched)
    filed = await _file_with(api, complaint(), [("IMG_1.jpg", photo(), "image/jpeg")])
    assert filed.status_code == 201, filed.text
    assert len(decoded_in) == 1 and loop_thread not in decoded_in


async def test_mistyped_and_oversized_files_are_refused_and_nothing_is_filed(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str
) -> None:
    small = settings.model_copy(update={"attachment_max_bytes": 4096, "attachment_max_files": 2})
    async with running_api(dev_env, small, db, task_queue) as api:
        script = await _file_with(api, complaint(), [("photo.jpg", SCRIPT, "image/jpeg")])
        assert script.status_code == 415, script.text
        error = script.json()["error"]
        assert error["code"] == "attachment_type_not_allowed" and error["message_th"]
        png_as_pdf = await _file_with(api, complaint(), [("scan.pdf", photo("PNG"), "application/pdf")])
        assert png_as_pdf.status_code == 201, png_as_pdf.text
        case_id = png_as_pdf.json()["case_id"]
        case = (await api.get(f"/api/v1/cases/{case_id}", headers=OFFICER)).json()
        assert case["attachments"][0]["content_type"] == "image/png"
        big = await _file_with(api, complaint(), [("big.jpg", b"\xff\xd8\xff" + b"0" * 5000, "image/jpeg")])
        assert big.status_code == 413 and big.json()["error"]["message_th"]
        three = [(f"p{i}.png", photo("PNG", color=(i, 0, 0)), "image/png") for i in range(3)]
        too_many = await _file_with(api, complaint(), three)
        assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "too_many_attachments"
        whole_body = await api.post(
            f"/api/v1/track/{png_as_pdf.json()['tracking_code']}/attachments",
            files=[("files", ("x.jpg", b"0" * (3 * 4096 + small.max_body_bytes), "image/jpeg"))],
        )
        assert whole_body.status_code == 413
        bad_json = await api.post("/api/v1/complaints/with-attachments", data={"complaint": "{}"})
        assert bad_json.status_code == 422


async def test_who_may_see_and_download_what(api: httpx.AsyncClient) -> None:
    mine = (await _file_with(api, complaint(), [("pothole.jpg", photo(), "image/jpeg")])).json()
    other = (await _file_with(api, complaint(), [("other.jpg", photo(color=(0, 200, 0)), "image/jpeg")])).json()
    await _to_agency(api, mine["case_id"])
    code, case_id = mine["tracking_code"], mine["case_id"]

    # The agency's before/after photos: the public one reaches the complainant, the internal one does not.
    after = await api.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[("files", ("after.jpg", photo(color=(0, 0, 250)), "image/jpeg"))],
        data={"label": "after", "public": "true"},
        headers=DOPA,
    )
    assert after.status_code == 201, after.text
    internal = await api.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[("files", ("memo.pdf", PDF, "application/pdf"))],
        headers=DOPA,
    )
    assert internal.status_code == 201
    later = await api.post(
        f"/api/v1/track/{code}/attachments", files=[("files", ("more.png", photo("PNG", color=(9, 9, 9)), "image/png"))]
    )
    assert later.status_code == 201, later.text

    tracked = {a["name"]: a for a in (await api.get(f"/api/v1/track/{code}/attachments")).json()["items"]}
    assert set(tracked) == {"pothole.jpg", "after.jpg", "more.png"}
    assert tracked["after.jpg"]["by"] == "DOPA" and tracked["after.jpg"]["label"] == "after"
    seen = (await api.get(f"/api/v1/cases/{case_id}/attachments", headers=DOPA)).json()["items"]
    staff = {a["name"]: a for a in seen}
    assert set(staff) == {"pothole.jpg", "after.jpg", "memo.pdf", "more.png"}
    # Agencies get the copies without metadata.
    assert all(a.get("original") is None and a.get("gps") is None for a in staff.values())

    memo_id = staff["memo.pdf"]["id"]
    assert (await api.get(f"/api/v1/track/{code}/attachments/{memo_id}")).status_code == 404
    # Another complainant's code does not open this case's files.
    pothole_id = tracked["pothole.jpg"]["id"]
    assert (await api.get(f"/api/v1/track/{other['tracking_code']}/attachments/{pothole_id}")).status_code == 404
    # An agency without a task on the case cannot see it, list it or upload to it.
    assert (await api.get(f"/api/v1/cases/{case_id}/attachments/{pothole_id}", headers=MOI)).status_code == 404
    assert (await api.get(f"/api/v1/cases/{case_id}/attachments", headers=MOI)).status_code == 404
    assert (await api.get(f"/api/v1/cases/{case_id}/attachments/{pothole_id}", headers=DOPA)).status_code == 200
    original = await api.get(f"/api/v1/cases/{case_id}/attachments/{pothole_id}?original=true", headers=DOPA)
    assert original.status_code == 403
    audited = await api.get(f"/api/v1/cases/{case_id}/attachments/{pothole_id}?original=true", headers=AUDITOR)
    assert audited.status_code == 200
    refused = await api.post(
        f"/api/v1/cases/{case_id}/attachments", files=[("files", ("a.png", photo("PNG"), "image/png"))], headers=AUDITOR
    )
    assert refused.status_code == 403
    # No static path serves them.
    assert (await api.get(f"/static/{pothole_id}")).status_code == 404


async def test_a_confidential_complainants_files_are_hidden_from_agencies(api: httpx.AsyncClient) -> None:
    body = complaint()
    body["complainant"] = {**body["complainant"], "confidential": True}  # type: ignore[dict-item]
    filed = (await _file_with(api, body, [("face.jpg", photo(), "image/jpeg")])).json()
    await _to_agency(api, filed["case_id"])
    listed = (await api.get(f"/api/v1/cases/{filed['case_id']}/attachments", headers=DOPA)).json()["items"]
    assert listed == []
    staff = (await api.get(f"/api/v1/cases/{filed['case_id']}/attachments", headers=OFFICER)).json()["items"]
    assert [a["name"] for a in staff] == ["face.jpg"]
    refused = await api.get(f"/api/v1/cases/{filed['case_id']}/attachments/{staff[0]['id']}", headers=DOPA)
    assert refused.status_code == 404


async def test_uploads_land_in_s3_storage_when_configured(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str, s3_endpoint: str
) -> None:
    s3 = settings.model_copy(update=s3_settings(s3_endpoint).model_dump(include=S3_FIELDS))
    async with running_api(dev_env, s3, db, task_queue) as api:
        data = photo(color=(3, 4, 5))
        filed = await _file_with(api, complaint(), [("s3.jpg", data, "image/jpeg")])
        assert filed.status_code == 201, filed.text
        [item] = (await api.get(f"/api/v1/track/{filed.json()['tracking_code']}/attachments")).json()["items"]
        served = await api.get(item["download"])
        assert served.status_code == 200 and gps_in(served.content) == {}
    keys = [o["Key"] for o in bucket_objects(s3_endpoint)]
    sha = hashlib.sha256(data).hexdigest()
    assert {f"attachments/{content_key('original', sha)}", f"attachments/{content_key('public', sha)}"} <= set(keys)


async def test_the_same_idempotency_key_files_one_case_with_its_files(api: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": f"upload-{uuid.uuid4()}"}
    files = [("files", ("again.jpg", photo(color=(7, 7, 7)), "image/jpeg"))]
    first = await api.post("/api/v1/complaints/with-attachments", data=_form(complaint()), files=files, headers=key)
    again = await api.post("/api/v1/complaints/with-attachments", data=_form(complaint()), files=files, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json() == again.json()
    listed = (await api.get(f"/api/v1/track/{first.json()['tracking_code']}/attachments")).json()["items"]
    assert [a["name"] for a in listed] == ["again.jpg"]


async def test_a_file_lost_between_its_write_and_its_row_is_written_again(
    api: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are named by content, so an upload may send the bytes an ended case had. ``rongtuk db archive
    --delete`` deletes such a file once no row refers to it (tests/integration/test_archive.py): if that
    happens between this upload's write and its row, the upload writes it again after its row."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    code = receipt["tracking_code"]
    await until_filed(api, code)
    real_put = DiskStorage.put
    lost: list[str] = []

    async def put_then_archived(self: DiskStorage, key: str, data: bytes, content_type: str) -> None:
        await real_put(self, key, data, content_type)
        if key not in lost:  # the archive's deletion, right after the upload's write
            lost.append(key)
            await self.delete(key)

    monkeypatch.setattr(DiskStorage, "put", put_then_archived)
    shade = uuid.uuid4().bytes
    image = photo(color=(shade[0], shade[1], shade[2]))
    sent = await api.post(f"/api/v1/track/{code}/attachments", files=[("files", ("road.jpg", image, "image/jpeg"))])
    assert sent.status_code == 201, sent.text
    sha = hashlib.sha256(image).hexdigest()
    assert sorted(lost) == sorted(content_key(kind, sha) for kind in ("original", "public"))  # both were lost
    for key in lost:
        assert (settings.attachment_root / key).is_file(), key
    served = await api.get(sent.json()["items"][0]["download"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
