"""Officers key in hotline, walk-in, letter and social-media complaints, with their files, as the filer."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import OFFICER, SUPERVISOR, agency, complaint, until_filed
from tests.attachments.images import PDF, photo

URL = "/api/v1/intake/officer"


def _body(channel: str) -> dict[str, str]:
    return {"complaint": json.dumps(complaint(channel=channel), ensure_ascii=False)}


@pytest.mark.parametrize(
    ("channel", "files", "extra", "label"),
    [
        ("hotline", [], {}, None),
        ("walk_in", [("id-copy.png", photo("PNG"), "image/png")], {}, None),
        ("letter", [("letter-scan.pdf", PDF, "application/pdf")], {}, "letter"),
        (
            "social",
            [("post.png", photo("PNG", color=(1, 2, 3)), "image/png")],
            {"post_url": "https://www.facebook.com/somepage/posts/123"},
            "screenshot",
        ),
    ],
)
async def test_officer_files_each_channel_with_its_files(
    api: httpx.AsyncClient, channel: str, files: list[tuple[str, bytes, str]], extra: dict[str, str], label: str | None
) -> None:
    filed = await api.post(URL, data=_body(channel) | extra, files=[("files", f) for f in files], headers=OFFICER)
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["case_id"]
    await until_filed(api, filed.json()["tracking_code"])
    case = (await api.get(f"/api/v1/cases/{case_id}", headers=SUPERVISOR)).json()
    assert case["channel"] == channel
    [filed_event] = [e for e in case["timeline"] if e["event"] == "filed"]
    assert filed_event["actor"] == {"id": "officer-7", "role": "officer", "agency": None}
    stored = [a for a in case["attachments"] if "id" in a]
    assert [(a["name"], a["label"], a["uploaded_by"]) for a in stored] == [(f[0], label, "officer-7") for f in files]
    if channel == "social":
        links = [a for a in case["attachments"] if "id" not in a]
        assert [(a["name"], a["url_or_ref"]) for a in links] == [("post", extra["post_url"])]
    # Not shared with the complainant unless the officer says so.
    tracked = (await api.get(f"/api/v1/track/{filed.json()['tracking_code']}")).json()
    assert not tracked.get("attachments")


async def test_only_officers_and_only_their_channels(api: httpx.AsyncClient) -> None:
    anonymous = await api.post(URL, data=_body("hotline"))
    assert anonymous.status_code == 401
    for headers in (SUPERVISOR, agency("DOPA")):
        refused = await api.post(URL, data=_body("hotline"), headers=headers)
        assert refused.status_code == 403, refused.text
    web = await api.post(URL, data=_body("web"), headers=OFFICER)
    assert web.status_code == 422 and web.json()["error"]["message_th"]
    no_link = await api.post(URL, data=_body("social"), headers=OFFICER)
    assert no_link.status_code == 422 and no_link.json()["error"]["details"][0]["field"] == "post_url"
    bad_link = await api.post(URL, data=_body("social") | {"post_url": "javascript:alert(1)"}, headers=OFFICER)
    assert bad_link.status_code == 422
    # Citizens cannot file as social media or another officers' channel, with or without files.
    citizen_social = await api.post("/api/v1/complaints", json=complaint(channel="social"))
    assert citizen_social.status_code == 401
    with_files = await api.post("/api/v1/complaints/with-attachments", data=_body("letter"))
    assert with_files.status_code == 403


async def test_shared_files_reach_the_tracking_page(api: httpx.AsyncClient) -> None:
    filed = await api.post(
        URL,
        data=_body("walk_in") | {"share_with_complainant": "true", "label": "evidence"},
        files=[("files", ("receipt.jpg", photo(), "image/jpeg"))],
        headers=OFFICER,
    )
    assert filed.status_code == 201
    tracked = (await api.get(f"/api/v1/track/{filed.json()['tracking_code']}")).json()
    assert [(a["name"], a["label"], a["by"]) for a in tracked["attachments"]] == [
        ("receipt.jpg", "evidence", "officer")
    ]
