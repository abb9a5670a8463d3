"""The console pages over HTTP: who may open each, CSRF on every form, no one else's personal data on a
citizen's page, searches in the access log, and readiness."""

from __future__ import annotations

import asyncio
import contextvars
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from api.accounts import add_account
from api.auth import StaffRole
from api.history import fetch_runs
from api.routes import audit_pages
from config.settings import Settings
from delivery.templates import format_date
from store import audit, models, queries
from store.db import Database
from tests.api.conftest import (
    OFFICER,
    SUPERVISOR,
    agency,
    app_client,
    complaint,
    file_and_assign,
    first_in_queue,
    rewrite_and_rechain,
    running_api,
    until_filed,
)
from tests.attachments.images import LATITUDE, photo
from tests.query_plans import query_plan
from workflows.process import State

DOPA = agency("DOPA")

PASSWORD = "correct horse battery"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, db: Database, role: StaffRole, agency: str | None = None) -> str:
    name = f"{role.value}-{uuid.uuid4().hex[:6]}"
    await add_account(db, username=name, role=role, password=PASSWORD, agency=agency)
    token = csrf_of(await client.get("/login"))
    done = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
    assert done.status_code == 303
    return name


@pytest.fixture
async def anon(api: httpx.AsyncClient) -> httpx.AsyncClient:
    return api


async def file_by_form(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    form = await client.get("/file")
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', form.text)
    data = {
        "csrf_token": csrf_of(form),
        "form_key": key.group(1) if key else "",  # as a browser sends the form it was given
        "description": "ถนนหน้าโรงเรียนเป็นหลุมลึก รถจักรยานยนต์ล้มบ่อยมาก ขอให้ซ่อมด่วน",
        "province_code": "10",
        "district_code": "1001",
        "name": "มานี มีนา",
        "phone": "0899999999",
        "preferred_channels": "web",
    } | fields
    return await client.post("/file", data=data)


async def test_the_same_form_sent_twice_files_one_complaint(api: httpx.AsyncClient, db: Database) -> None:
    """A double tap, or sending again after "could not confirm": the form's own key files it once, and both
    answers lead to the same tracking page. The form changed and sent again is another complaint."""
    description = f"ไฟฟ้าดับทั้งหมู่บ้านตั้งแต่เมื่อคืน ยังไม่มีใครมาซ่อม {uuid.uuid4().hex[:8]}"
    form = await api.get("/file")
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', form.text)
    assert key, "the form carries its own key"
    data = {
        "csrf_token": csrf_of(form),
        "form_key": key.group(1),
        "description": description,
        "name": "มานี มีนา",
        "phone": "0899999999",
        "preferred_channels": "web",
    }
    first, second = [await api.post("/file", data=data) for _ in range(2)]
    assert first.status_code == second.status_code == 303, first.text[:300]
    assert first.headers["location"] == second.headers["location"]
    changed = await api.post("/file", data=data | {"description": description + " ด่วนมาก"})
    assert changed.status_code == 303 and changed.headers["location"] != first.headers["location"]
    async with db.session() as s:
        filed = select(func.count()).where(models.Case.description.like(f"{description}%"))
        assert (await s.execute(filed)).scalar_one() == 2
    # A form shown again (here: a field to correct) keeps its key, so the corrected form is still the one complaint.
    again = await api.post("/file", data=data | {"phone": "12345"})
    assert again.status_code == 422 and f'value="{key.group(1)}"' in again.text


async def test_citizen_files_by_form_and_tracks_without_anyone_elses_data(api: httpx.AsyncClient) -> None:
    page = await api.get("/file")
    assert page.status_code == 200 and 'lang="th"' in page.text and "ยื่นเรื่องร้องทุกข์" in page.text
    assert "https://" not in page.text and "เชียงใหม่" in page.text, "provinces from geothai"
    assert 'for="description"' in page.text and 'id="description"' in page.text, "every field has a label"

    forged = await api.post("/file", data={"csrf_token": "forged", "description": "x" * 20})
    assert forged.status_code == 403
    short = await file_by_form(api, description="สั้น")
    assert short.status_code == 422 and "description" in short.text and "มานี มีนา" in short.text, "kept the input"
    assert '<strong class="field">รายละเอียด</strong>:' in short.text, "the field as the form labels it, not its path"
    bad_phone = await file_by_form(api, phone="12345")
    assert '<strong class="field">โทรศัพท์</strong>:' in bad_phone.text and "complainant.phone" not in bad_phone.text

    filed = await file_by_form(api)
    assert filed.status_code == 303, filed.text[:300]
    mine = await api.get(filed.headers["location"])
    assert mine.status_code == 200 and "ได้รับเรื่องของท่านแล้ว" in mine.text
    assert "มานี มีนา" not in mine.text and "0899999999" not in mine.text and "+66899999999" not in mine.text

    other = await api.post("/api/v1/complaints", json=complaint())
    theirs = await api.get(f"/track/{other.json()['tracking_code']}")
    assert theirs.status_code == 200 and "สมหญิง" not in theirs.text and "5678" not in theirs.text
    assert "มานี" not in theirs.text
    missing = await api.get("/track/AAAAA-AAAAA")
    assert missing.status_code == 404 and "ไม่พบเรื่อง" in missing.text

    code = filed.headers["location"].split("/")[2].split("?")[0]
    withdraw = await api.post(f"/track/{code}/act/withdraw", data={"csrf_token": "nope"})
    assert withdraw.status_code == 403
    token = csrf_of(mine)
    done = await api.post(f"/track/{code}/act/withdraw", data={"csrf_token": token, "reason": "แก้ได้แล้ว"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=withdraw")
    again = await api.post(f"/track/{code}/act/withdraw", data={"csrf_token": token})
    assert again.status_code == 409 and 'role="alert"' in again.text
    # Told in words what happened and why, not asked to correct a form, and shown no codes.
    alert = again.text.split('role="alert"')[1].split("</div>")[0]
    assert "ทำรายการนี้ไม่ได้" in alert and "กรุณาแก้ไขข้อมูล" not in alert
    assert "“ถอนเรื่อง”" in alert and "“ผู้ร้องถอนเรื่อง”" in alert
    assert "withdraw" not in alert and "ไม่มี<" not in alert


@pytest.mark.parametrize(
    ("path", "allowed", "refused"),
    [
        ("/officer", StaffRole.OFFICER, StaffRole.AGENCY),
        ("/officer/intake", StaffRole.OFFICER, StaffRole.AUDITOR),
        ("/agency", StaffRole.AGENCY, StaffRole.OFFICER),
        ("/board", StaffRole.SUPERVISOR, StaffRole.AGENCY),
        ("/audit", StaffRole.AUDITOR, StaffRole.OFFICER),
        ("/search", StaffRole.OFFICER, StaffRole.AGENCY),
        ("/status", StaffRole.SUPERVISOR, StaffRole.OFFICER),
    ],
)
async def test_staff_pages_need_sign_in_and_the_right_role(
    api: httpx.AsyncClient, db: Database, path: str, allowed: StaffRole, refused: StaffRole
) -> None:
    anonymous = await api.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/login?next={path}"
    agency = "BMA" if refused in {StaffRole.AGENCY, StaffRole.AGENCY_HEAD} else None
    await sign_in(api, db, refused, agency)
    assert (await api.get(path)).status_code == 403
    api.cookies.clear()
    agency = "BMA" if allowed in {StaffRole.AGENCY, StaffRole.AGENCY_HEAD} else None
    await sign_in(api, db, allowed, agency)
    assert (await api.get(path)).status_code == 200


async def test_case_page_actions_need_csrf_and_agencies_see_only_their_cases(
    api: httpx.AsyncClient, db: Database
) -> None:
    filed = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id = filed["case_id"]
    await sign_in(api, db, StaffRole.OFFICER)
    page = await api.get(f"/case/{case_id}")
    assert page.status_code == 200 and "สมหญิง รักดี" in page.text and "<svg" in page.text
    assert '<a href="tel:+66812345678">081 234 5678</a>' in page.text, "the number as dialled, one tap to call"
    assert 'data-state="received" data-current="true"' in page.text
    # The reclassify form names its fields and choices in Thai (from the domain's labels), not by code.
    assert ">ลักษณะเรื่อง" in page.text and ">เร่งด่วน</option>" in page.text and ">urgent</option>" not in page.text
    forged = await api.post(f"/case/{case_id}/act/screen", data={"csrf_token": "x"})
    assert forged.status_code == 403
    done = await api.post(f"/case/{case_id}/act/screen", data={"csrf_token": csrf_of(page)})
    assert done.status_code == 303
    page = await api.get(f"/case/{case_id}")
    assert 'id="screening"' in page.text, "the officer sees the screening suggestions"
    bad = await api.post(f"/case/{case_id}/act/accept", data={"csrf_token": csrf_of(page), "agencies": "NOPE"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text

    api.cookies.clear()
    await sign_in(api, db, StaffRole.AGENCY, "BMA")
    assert (await api.get(f"/case/{case_id}")).status_code == 404, "no task for this agency: no case"


async def test_search_finds_by_phone_and_is_access_logged(api: httpx.AsyncClient, db: Database) -> None:
    phone = f"08{uuid.uuid4().int % 10**8:08d}"
    body = complaint(complainant={"name": "ค้นหา ทดสอบ", "phone": phone, "preferred_channels": ["web"]})
    case_id = (await api.post("/api/v1/complaints", json=body)).json()["case_id"]
    name = await sign_in(api, db, StaffRole.OFFICER)
    found = await api.get("/search", params={"q": phone})
    assert found.status_code == 200 and case_id in found.text
    row = re.search(rf'<tr data-case="{case_id}">(.*?)</tr>', found.text, re.S)
    assert row and "ไฟถนนในซอยดับมาสองสัปดาห์" in row.group(1), "each result says what the complaint is about"
    async with db.sessions() as session:
        rows, _ = await audit.access_log(session, case_id=case_id, actor_id=name, since=None, page=1, page_size=10)
    assert [r.what for r in rows] == ["search"]
    api.cookies.clear()
    await sign_in(api, db, StaffRole.AUDITOR)
    log = (await api.get("/audit", params={"case_id": case_id})).text
    row = re.search(rf"<td>{name} · (.*?)</td>\s*<td>.*?</td>\s*<td>(.*?)</td>", log, re.S)
    assert row and row.groups() == ("เจ้าหน้าที่รับเรื่อง", "พบในผลการค้นหา"), "the role and the read by their names"


async def test_the_access_log_page_names_an_action_s_answer_by_its_button(api: httpx.AsyncClient, db: Database) -> None:
    # An action's answer shows the case, so it is access-logged; the auditor reads it as the action it was,
    # by the button's words, not as "opened the case" nor as the action's code.
    case_id = (await file_and_assign(api))["case_id"]
    await sign_in(api, db, StaffRole.AUDITOR)
    log = (await api.get("/audit", params={"case_id": case_id})).text
    rows = re.findall(r"<td>officer-7 · (.*?)</td>\s*<td>.*?</td>\s*<td>(.*?)</td>", log, re.S)
    assert rows == [
        ("เจ้าหน้าที่รับเรื่อง", "ดำเนินการกับเรื่อง (คำตอบแสดงข้อมูลเรื่อง): รับเรื่องและส่งต่อหน่วยงาน"),
        ("เจ้าหน้าที่รับเรื่อง", "ดำเนินการกับเรื่อง (คำตอบแสดงข้อมูลเรื่อง): เริ่มตรวจสอบเรื่อง"),
    ], rows
    english = (await api.get("/audit", params={"case_id": case_id, "lang": "en"})).text
    assert "acted on the case (the answer shows it): Start screening" in english


@pytest.fixture
async def no_worker(dev_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    lonely = settings.model_copy(update={"task_queue": f"tq-nobody-{uuid.uuid4()}"})
    async with app_client(lonely, temporal=dev_env.client) as client:
        yield client


async def test_readyz_checks_database_temporal_and_a_worker(
    api: httpx.AsyncClient, no_worker: httpx.AsyncClient
) -> None:
    # A worker shows once it has polled: a probe is asked again until then, as an orchestrator does.
    for _ in range(100):
        ready = await api.get("/readyz")
        if ready.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert ready.status_code == 200, ready.text
    assert {k: v["ok"] for k, v in ready.json()["checks"].items()} == {
        "database": True,
        "temporal": True,
        "worker": True,
    }
    alone = await no_worker.get("/readyz")
    assert alone.status_code == 503 and alone.json()["checks"]["worker"]["ok"] is False
    assert "no worker polls" in alone.json()["checks"]["worker"]["detail"]
    assert alone.json()["checks"]["database"]["ok"] is True


async def test_officers_claim_and_release_queue_cases_with_workload(api: httpx.AsyncClient, db: Database) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id = receipt["case_id"]
    await first_in_queue(api, db, receipt)
    first = await sign_in(api, db, StaffRole.OFFICER)
    queue = await api.get("/officer")
    assert case_id in queue.text
    assert (await api.post(f"/officer/claim/{case_id}", data={"csrf_token": "x"})).status_code == 403
    taken = await api.post(f"/officer/claim/{case_id}", data={"csrf_token": csrf_of(queue)})
    assert taken.status_code == 303
    queue = await api.get("/officer")
    workload = queue.text.split('id="workload"')[1]
    assert f"<td>{first}</td><td>1</td>" in workload

    api.cookies.clear()
    await sign_in(api, db, StaffRole.OFFICER)
    queue = await api.get("/officer")
    stolen = await api.post(f"/officer/claim/{case_id}", data={"csrf_token": csrf_of(queue)})
    assert stolen.status_code == 409 and first in stolen.text
    ignored = await api.post(f"/officer/claim/{case_id}", data={"csrf_token": csrf_of(queue), "release": "1"})
    assert ignored.status_code == 303 and first in (await api.get("/officer")).text.split('id="workload"')[1]

    api.cookies.clear()
    await sign_in(api, db, StaffRole.SUPERVISOR)
    queue = await api.get("/officer")
    freed = await api.post(f"/officer/claim/{case_id}", data={"csrf_token": csrf_of(queue), "release": "1"})
    assert freed.status_code == 303 and first not in (await api.get("/officer")).text.split('id="workload"')[1]


async def test_the_queue_pages_and_shows_what_an_officer_holds(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.routes import staff

    monkeypatch.setattr(staff, "_QUEUE_SIZE", 1)
    receipts = [(await api.post("/api/v1/complaints", json=complaint())).json() for _ in range(2)]
    for receipt in receipts:
        await first_in_queue(api, db, receipt)
    held = {r["case_id"] for r in receipts}
    await sign_in(api, db, StaffRole.OFFICER)
    queue = await api.get("/officer")
    title = re.search(r"<title>(.*?)</title>", queue.text, re.S)
    assert title and "<" not in title.group(1) and "คิวคัดกรอง" in title.group(1), "a plain page title"
    assert 'href="/officer?page=2"' in queue.text and 'rel="prev"' not in queue.text
    for case_id in sorted(held):  # claimed from page 2 of the whole queue: back to page 2 afterwards
        taken = await api.post(f"/officer/claim/{case_id}", data={"csrf_token": csrf_of(queue), "page": "2"})
        assert taken.status_code == 303 and taken.headers["location"] == "/officer?page=2"
    odd = await api.post(f"/officer/claim/{sorted(held)[0]}", data={"csrf_token": csrf_of(queue), "page": "x<"})
    assert odd.headers["location"] == "/officer", "a page number is checked, not echoed"

    shown = []
    for page in (1, 2):
        mine = await api.get(f"/officer?mine=1&page={page}")
        assert mine.status_code == 200 and 'aria-current="page">' in mine.text
        shown += re.findall(r'<tr class="[^"]*" data-case="([^"]+)"', mine.text)
        assert ('href="/officer?page=2&amp;mine=1"' in mine.text) is (page == 1)
        assert ('href="/officer?page=1&amp;mine=1"' in mine.text) is (page == 2)
    assert sorted(shown) == sorted(held), "the cases this officer holds, one a page, and nobody else's"
    beyond = await api.get("/officer?mine=1&page=3")
    assert beyond.status_code == 200 and 'data-case="' not in beyond.text
    assert (await api.get("/officer?page=0")).status_code == 422


async def test_a_longer_page_of_the_queue_or_the_inbox_asks_the_database_nothing_more(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The officer's queue and the agency's inbox read a page's cases, tasks and screenings in a fixed number of
    statements: they read each row's case and tasks one by one, and screened each row against the duplicate
    index with a search of every past case, 1.6 s for a page of 27 on this machine."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from api.routes import staff

    asked: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("asked", default=None)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if (seen := asked.get()) is not None:  # this request's statements, not the worker's
            seen.append(statement)

    async def statements(path: str) -> tuple[int, str]:
        seen: list[str] = []
        token = asked.set(seen)
        try:
            page = await api.get(path)
        finally:
            asked.reset(token)
        assert page.status_code == 200, page.text[:500]
        return len(seen), page.text

    receipts = [(await api.post("/api/v1/complaints", json=complaint())).json() for _ in range(4)]
    for receipt in receipts:
        await first_in_queue(api, db, receipt)
    for receipt in receipts[:2]:
        for action, body in (("screen", {}), ("accept", {"category": "traffic.public_transport", "agencies": ["SRT"]})):
            done = await api.post(f"/api/v1/cases/{receipt['case_id']}/actions/{action}", json=body, headers=OFFICER)
            assert done.status_code == 200, done.text
    for receipt in receipts[2:]:
        await first_in_queue(api, db, receipt)  # still at the head of the queue after the others' writes

    event.listen(Engine, "before_cursor_execute", count)
    try:
        await sign_in(api, db, StaffRole.OFFICER)
        await statements("/officer")  # the first screening builds the duplicate index, later ones top it up
        counts = {}
        for size in (1, 2):
            monkeypatch.setattr(staff, "_QUEUE_SIZE", size)
            counts[size], text = await statements("/officer")
            rows = re.findall(r'<tr class="[^"]*" data-case="([^"]+)"', text)
            assert len(rows) == size and text.count('class="suggested-category"') == size, "each row screened"
        assert counts[1] == counts[2], f"statements for a page of one and of two: {counts}"

        await sign_in(api, db, StaffRole.AGENCY, "SRT")
        for size in (1, 2):
            monkeypatch.setattr(staff, "INBOX_PAGE", size)
            counts[size], text = await statements("/agency")
            assert len(re.findall(r'<tr class="[^"]*" data-case="([^"]+)"', text)) == size
        assert counts[1] == counts[2], f"statements for a page of one and of two: {counts}"
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def test_the_case_page_says_why_a_category_is_suggested_and_what_was_decided_for_cases_like_it(
    dev_env: WorkflowEnvironment, settings: Settings, db: Database, task_queue: str, tmp_path: Path
) -> None:
    """The screening aids an officer had only through the API: the words behind each suggested category, and
    the past cases most like this one with the category and the agencies they were given."""
    from config.reference import load_reference
    from screening.classifier import CategoryModel
    from screening.examples import Example, keyword_examples
    from tests.screening.conftest import fixture_examples

    own = settings.model_copy(update={"data_dir": tmp_path})
    async with running_api(dev_env, own, db, task_queue) as client:
        earlier = (await client.post("/api/v1/complaints", json=complaint(description=f"{'ไฟถนนดับ' * 3} มืดมาก"))).json()
        past = [
            Example(
                "ไฟถนนดับทั้งซอย กลางคืนมืดมาก ไฟฟ้าส่องสว่างเสีย",
                "lighting.streetlight",
                ("BMA",),
                ref=earlier["case_id"],
                source="case",
            ),
            Example(
                "ไฟถนนดับหน้าตลาด มืดมาก", "lighting.streetlight", ("BKK-1038",), ref="traffy:2022-AB12", source="traffy"
            ),
        ]
        model = CategoryModel.train(fixture_examples() + past + keyword_examples(load_reference()), load_reference())
        model.save(tmp_path / "screening" / "model.pickle")

        receipt = (
            await client.post("/api/v1/complaints", json=complaint(description="ไฟถนนดับทั้งซอย มืดมากตอนกลางคืน"))
        ).json()
        await first_in_queue(client, db, receipt)
        await sign_in(client, db, StaffRole.OFFICER)
        client.cookies.set("rongtuk_lang", "en")
        page = (await client.get(f"/case/{receipt['case_id']}")).text
    found = re.search(r'<ul id="similar-cases">(.*?)</ul>', page, re.S)
    assert found, page[page.find('id="screening"') :][:3000]
    similar = found.group(1)
    assert f'<a href="/case/{earlier["case_id"]}">' in similar, "a past case of ours links to it"
    assert 'Traffy Fondue <span class="mono">2022-AB12</span>' in similar, "an outside example by its source"
    assert "Street lights out or broken → Bangkok Metropolitan Administration" in similar, similar
    assert "Lat Phrao District Office, Bangkok" in similar, "agencies by name"
    because = re.search(r'<small class="why">Because of the words: ([^<]+)</small>', page)
    assert because and "ไฟถนน" in because.group(1), page[page.find('id="screening"') :][:2000]


async def test_citizen_answers_rates_and_asks_for_review_from_the_tracking_page(api: httpx.AsyncClient) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id, code = receipt["case_id"], receipt["tracking_code"]

    async def staff(action: str, body: dict[str, object], headers: dict[str, str]) -> None:
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=headers)
        assert done.status_code == 200, done.text

    async def citizen(action: str, **fields: str) -> httpx.Response:
        page = await api.get(f"/track/{code}")
        assert f'id="form-{action}"' in page.text, page.text[:2000]
        return await api.post(f"/track/{code}/act/{action}", data={"csrf_token": csrf_of(page), **fields})

    await until_filed(api, code)
    page = await api.get(f"/track/{code}")
    # Before an agency has it, the centre handles it, and the page says what happens next.
    assert re.search(r'<dd id="handled-by">ศูนย์บริการประชาชน[^<]*1111\)</dd>', page.text), page.text[:3000]
    assert '<p class="next-step" id="next-step">ศูนย์จะตรวจสอบเรื่องของท่าน' in page.text
    await staff("screen", {}, OFFICER)
    await staff("need_info", {"question": "ซอยไหน บ้านเลขที่เท่าไร"}, OFFICER)
    page = await api.get(f"/track/{code}")
    assert "ซอยไหน บ้านเลขที่เท่าไร" in page.text, "the question is on the page"
    tracked = (await api.get(f"/api/v1/track/{code}")).json()
    assert tracked["next_step"]["code"] == "awaiting_info" and "โปรดตอบ" in tracked["next_step"]["label_th"]
    assert (await citizen("reply", answer="ซอยลาดพร้าว 71 หน้าบ้านเลขที่ 12")).status_code == 303
    await staff("accept", {"category": "roads.pothole", "agencies": ["DOPA"]}, OFFICER)
    await staff("agency_accept", {}, DOPA)
    # Who has the case now, and the public hotline to call them on (config/agencies.yaml).
    page = await api.get(f"/track/{code}")
    handler = '<dd id="handled-by">กรมการปกครอง <small class="inline nowrap">· สายด่วน <a href="tel:1548">1548</a>'
    assert handler in page.text
    await staff("respond", {"outcome": "resolved", "response": "ซ่อมแล้วเรียบร้อย"}, DOPA)
    page = await api.get(f"/track/{code}")
    assert "ซ่อมแล้วเรียบร้อย" in page.text, "the agency's answer is on the timeline"
    page = await api.get(f"/track/{code}")
    assert "ศูนย์จะตรวจคำตอบและยุติเรื่อง" in page.text, "responded: what the citizen waits for, and what then"
    assert "หากไม่พอใจ ขอให้ทบทวนได้เมื่อยุติเรื่อง" in page.text, "the response's message says when a review opens"
    await staff("close", {}, SUPERVISOR)
    page = await api.get(f"/track/{code}")
    assert re.search(r'<dt>ขอให้ทบทวนได้ถึง</dt><dd id="review-until">\d', page.text), "until when a review may be asked"
    radios = re.findall(r'<input type="radio" name="rating" value="(\d)" required> \d · ([^<]+)</label>', page.text)
    assert radios == [("1", "ไม่พอใจมาก"), ("2", "ไม่พอใจ"), ("3", "พอใช้"), ("4", "พอใจ"), ("5", "พอใจมาก")]
    bad = await citizen("rate", rating="9")
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert (await citizen("rate", rating="2", comment="ช้าไป")).status_code == 303
    assert (await citizen("request_review", reason="ยังไม่ได้รับการแก้ไขจริง")).status_code == 303
    page = await api.get(f"/track/{code}")
    assert 'id="status"' in page.text and "ขั้นที่ 2" in page.text


async def test_officer_keys_in_a_hotline_complaint(api: httpx.AsyncClient, db: Database) -> None:
    await sign_in(api, db, StaffRole.OFFICER)
    form = await api.get("/officer/intake")
    assert form.status_code == 200 and 'name="channel"' in form.text and "สายด่วน 1111" in form.text
    # The officer is not the complainant: the form speaks of them, where the citizen's form says "you".
    assert "<legend>ข้อมูลผู้ร้อง (ไม่บังคับ ผู้ร้องไม่ระบุชื่อได้)</legend>" in form.text
    assert "ปกปิดตัวตนของข้าพเจ้า" not in form.text and "ท่านร้องเรียน" not in form.text
    english = (await api.get("/officer/intake", params={"lang": "en"})).text
    assert "The complainant (optional: they may stay anonymous)" in english and "About you" not in english
    assert "Hide my identity" not in english and "what you want done" not in english
    citizen = (await api.get("/file", params={"lang": "en"})).text
    assert "About you (optional: you may complain anonymously)" in citizen, "the citizen's own form keeps 'you'"
    api.cookies.set("rongtuk_lang", "th")
    refused = await api.post("/officer/intake", data={"csrf_token": csrf_of(form), "description": "สั้น"})
    assert refused.status_code == 422 and "ข้อมูลผู้ร้อง (ไม่บังคับ ผู้ร้องไม่ระบุชื่อได้)" in refused.text
    data = {
        "csrf_token": csrf_of(form),
        "channel": "hotline",
        "description": "ผู้โทรแจ้งว่าน้ำประปาไม่ไหลมาสามวันแล้วทั้งหมู่บ้าน",
        "province_code": "50",
        "name": "ผู้โทร ทดสอบ",
        "preferred_channels": "sms",
        "phone": "0811111111",
    }
    done = await api.post("/officer/intake", data=data)
    assert done.status_code == 303 and done.headers["location"].startswith("/case/"), done.text[:300]
    case = await api.get(done.headers["location"])
    assert case.status_code == 200 and "สายด่วน 1111" in case.text and 'id="tracking-code"' in case.text


async def test_auditor_reads_a_history_as_of_a_moment(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id = receipt["case_id"]
    moved = await api.post(f"/api/v1/cases/{case_id}/actions/screen", json={}, headers=OFFICER)
    assert moved.status_code == 200
    received_at = moved.json()["received_at"]
    await sign_in(api, db, StaffRole.AUDITOR)
    fetched: list[str] = []

    async def counting(client: Any, *, case_id: str) -> Any:
        fetched.append(case_id)
        return await fetch_runs(client, case_id=case_id)

    monkeypatch.setattr(audit_pages, "fetch_runs", counting)
    page = await api.get(f"/audit/case/{case_id}")
    assert page.status_code == 200 and 'id="verify" ' in page.text.replace('id="verify">', 'id="verify" >')
    assert 'data-kind="action_completed"' in page.text and 'class="pass" id="verify"' in page.text
    assert fetched == [case_id], "the table and the check against the event log share one fetch of the history"
    then = await api.get(f"/audit/case/{case_id}", params={"as_of": datetime.now(UTC).isoformat()})
    screening = "<strong>กำลังตรวจสอบเรื่อง</strong>"  # the state by its name
    assert 'id="state-then"' in then.text and then.text.count(screening) == 2, "per Temporal and per the event log"
    before = await api.get(f"/audit/case/{case_id}", params={"as_of": received_at})
    assert screening not in before.text
    log = await api.get("/audit", params={"case_id": case_id})
    assert "ดูประวัติจาก Temporal" in log.text, "the read of the history, by its name"
    # A forger rewrites who filed and recomputes every hash: the chain holds, the history does not.
    await rewrite_and_rechain(db, case_id, 1, actor_id="someone-else")
    forged = await api.get(f"/audit/case/{case_id}")
    assert 'class="fail" id="verify"' in forged.text
    assert "seq 1 · actor_id differs from what Temporal&#39;s history records" in forged.text, forged.text[:2000]


async def test_the_auditors_history_reads_in_words(api: httpx.AsyncClient, db: Database) -> None:
    """Each entry says what it was in words: the step and who took it, the states it went between, the
    fields an action sent, the day a deadline falls due. The engine's own steps are folded away until asked
    for, a time that cannot be read is said to be so, and the moment's field holds Bangkok's wall clock."""
    receipt = await file_and_assign(api)
    case_id = receipt["case_id"]
    await sign_in(api, db, StaffRole.AUDITOR)

    page = (await api.get(f"/audit/case/{case_id}")).text
    rows = dict(re.findall(r'<tr class="[a-z_]+" data-kind="([a-z_]+)">(.*?)</tr>', page, re.S))
    assert {"filed", "transition", "action_accepted", "action_completed", "deadline_set"} <= set(rows)
    assert "local_activity" not in rows, "the engine's own steps are folded away"
    assert "ขั้นตอนภายในของระบบ" in page and 'href="?engine=true"' in page
    shown = re.findall(r'<tr class="[a-z_]+" data-kind="([a-z_]+)">(.*?)</tr>', page, re.S)
    accept = next(body for kind, body in shown if kind == "transition" and "รับเรื่องและส่งต่อหน่วยงาน" in body)
    assert "กำลังตรวจสอบเรื่อง → ส่งเรื่องให้หน่วยงานที่รับผิดชอบ" in accept and "เจ้าหน้าที่รับเรื่อง" in accept
    sent = next(body for kind, body in shown if kind == "action_accepted" and "ข้อมูลที่ส่งมา: หน่วยงาน" in body)
    assert "ข้อมูลที่ส่งมา: หน่วยงาน, ประเภท" in sent
    due = datetime.fromisoformat(receipt["due_at"]).astimezone(audit_pages.BANGKOK) - timedelta(seconds=1)
    day = format_date(due.date(), "th")
    first_timer = next(body for kind, body in shown if kind == "deadline_set")
    assert f"ครบกำหนด ภายใน {day}" in first_timer, first_timer
    assert re.search(r"<td>\d+ [^<]+ \d{4} \d\d:\d\d:\d\d</td>", page), "times to the second"
    assert "deadline_set" in page, "the raw entry is there to be opened"

    everything = (await api.get(f"/audit/case/{case_id}", params={"engine": "true"})).text
    assert 'data-kind="local_activity"' in everything and 'href="?engine=false"' in everything

    bad = (await api.get(f"/audit/case/{case_id}", params={"as_of": "yesterday"})).text
    assert 'id="bad-as-of"' in bad and 'id="state-then"' not in bad
    assert bad.count("data-kind=") == page.count("data-kind="), "the whole history, as without a moment"

    moment = "2026-12-01T10:00:00+00:00"  # 17:00 in Bangkok
    held = (await api.get(f"/audit/case/{case_id}", params={"as_of": moment})).text
    assert 'type="datetime-local" step="1" value="2026-12-01T17:00:00"' in held


class _Fields(HTMLParser):
    """Form controls and the labels that name them (a control inside a <label> is named by it)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.depth += 1
            if a.get("for"):
                self.labelled.add(a["for"] or "")
        elif tag in {"input", "select", "textarea"} and a.get("type") not in {"hidden", "submit"}:
            if self.depth:
                return
            self.controls.append(a.get("id") or f"<{tag} name={a.get('name')}> without id")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.depth -= 1


async def test_every_form_control_has_a_label(api: httpx.AsyncClient, db: Database) -> None:
    await sign_in(api, db, StaffRole.OFFICER)
    for path in ("/file", "/track", "/officer/intake", "/search"):
        fields = _Fields()
        fields.feed((await api.get(path)).text)
        unlabelled = [c for c in fields.controls if c not in fields.labelled]
        assert fields.controls and unlabelled == [], (path, unlabelled)


async def test_board_filters_and_english(api: httpx.AsyncClient, db: Database) -> None:
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    assigned = await file_and_assign(api)
    taken = await api.post(f"/api/v1/cases/{assigned['case_id']}/actions/agency_accept", json={}, headers=agency("BMA"))
    assert taken.status_code == 200, taken.text
    await sign_in(api, db, StaffRole.SUPERVISOR)
    board = await api.get("/board", params={"status": "received", "province": "กรุงเทพมหานคร"})
    assert board.status_code == 200 and receipt["case_id"] in board.text
    assert '<option value="received" selected>' in board.text, "the form shows the filter in force"
    assert 'id="f-priority"' in board.text and 'id="f-region"' in board.text and 'id="f-centre"' in board.text
    normal = await api.get("/board", params={"priority": "normal", "status": "received"})
    assert receipt["case_id"] in normal.text
    urgent = await api.get("/board", params={"priority": "urgent", "status": "received"})
    assert receipt["case_id"] not in urgent.text
    closed = await api.get("/board", params={"status": "closed"})
    assert receipt["case_id"] not in closed.text
    english = await api.get(f"/case/{receipt['case_id']}", params={"lang": "en"})
    assert 'lang="en"' in english.text and "Process diagram" in english.text and "Received" in english.text
    tracking = await api.get(f"/track/{receipt['tracking_code']}")
    assert 'lang="en"' in tracking.text and "Expected by" in tracking.text, "the language choice sticks"

    # The province is chosen from a list, by its name in the page's language; a name typed into the address
    # in English (or as people write it) means the same province, on the page and in the API.
    by_name = await api.get("/board", params={"status": "received", "province": "Bangkok"})
    assert receipt["case_id"] in by_name.text
    assert '<option value="กรุงเทพมหานคร" selected>Bangkok</option>' in by_name.text
    for name in ("bkk", "10", "กทม"):
        listed = await api.get("/api/v1/cases", params={"status": "received", "province": name}, headers=SUPERVISOR)
        assert receipt["case_id"] in {i["case_id"] for i in listed.json()["items"]}, name
    nowhere = await api.get("/api/v1/cases", params={"province": "Atlantis"}, headers=SUPERVISOR)
    assert nowhere.status_code == 422 and nowhere.json()["error"]["details"][0]["field"] == "query.province"

    # A filter value the board does not know is said, not dropped: the board showed every case for it.
    for params in ({"status": "zzz"}, {"province": "Atlantis"}, {"stage": "3"}, {"overdue": "maybe"}):
        stale = await api.get("/board", params=params, headers={"accept": "text/html"})
        name, value = next(iter(params.items()))
        assert stale.status_code == 422 and f"{name} “{value}”" in stale.text, (params, stale.text[:300])
        assert '<a href="/board" id="error-plain">' in stale.text, "the way on: the board without the filter"
        assert receipt["case_id"] not in stale.text
    both = await api.get("/board", params={"status": "zzz", "agency": "NOPE", "priority": "normal"})
    assert both.status_code == 422 and "agency “NOPE”, status “zzz”" in both.json()["error"]["message"]
    assert (await api.get("/board", params={"overdue": "no", "status": "received"})).status_code == 200

    # The agency is typed, not scrolled for among 1,220: its code in any case, or its name, as the list offers.
    for typed in ("BMA", "bma", "กรุงเทพมหานคร", "Bangkok Metropolitan Administration"):
        by_agency = await api.get("/board", params={"agency": typed})
        assert by_agency.status_code == 200 and assigned["case_id"] in by_agency.text, typed
        assert receipt["case_id"] not in by_agency.text, "only the cases the agency owes an answer"
        assert 'list="f-agency-list"' in by_agency.text and 'value="BMA" placeholder=' in by_agency.text, typed
    assert '<option value="BKK-1038">Lat Phrao District Office, Bangkok</option>' in by_agency.text
    assert '<small class="inline chosen">· Bangkok Metropolitan Administration</small>' in by_agency.text
    # Part of a name only one agency has is that agency; part of many is asked again, not guessed.
    lat_phrao = await api.get("/board", params={"agency": "ลาดพร้าว"})
    assert lat_phrao.status_code == 200 and 'value="BKK-1038" placeholder=' in lat_phrao.text
    several = await api.get("/board", params={"agency": "เชียงใหม่"}, headers={"accept": "text/html"})
    assert several.status_code == 422 and "agency “เชียงใหม่”" in several.text

    # An English page names the place and an agency that took a step in English.
    case_en = await api.get(f"/case/{assigned['case_id']}")
    assert "<dd>Bangkok</dd>" in case_en.text and "กรุงเทพมหานคร</dd>" not in case_en.text
    assert "Agency staff · Bangkok Metropolitan Administration" in case_en.text
    api.cookies.delete("rongtuk_lang")
    case_th = await api.get(f"/case/{assigned['case_id']}")
    assert "<dd>กรุงเทพมหานคร</dd>" in case_th.text and "เจ้าหน้าที่หน่วยงาน · กรุงเทพมหานคร" in case_th.text


async def test_tracking_lookup_stays_on_this_site(api: httpx.AsyncClient) -> None:
    found = await api.get("/track", params={"code": "//evil.example/x"})
    assert found.status_code == 303 and found.headers["location"] == "/track/%2F%2Fevil.example%2Fx"


async def test_citizen_attaches_photos_on_the_form_and_a_disguised_file_files_nothing(
    api: httpx.AsyncClient, db: Database
) -> None:
    form = await api.get("/file")
    assert 'enctype="multipart/form-data"' in form.text and 'for="photos"' in form.text
    fields = {
        "csrf_token": csrf_of(form),
        "description": "ไฟถนนหน้าตลาดดับทั้งแถว กลางคืนมืดมาก มีคนถูกกระชากกระเป๋า",
        "preferred_channels": "web",
    }
    filed = await api.post("/file", data=fields, files=[("photos", ("ไฟดับ.jpg", photo(), "image/jpeg"))])
    assert filed.status_code == 303, filed.text[:300]
    code = filed.headers["location"].split("/")[2].split("?")[0]
    async with db.sessions() as s:
        case = (await s.execute(select(models.Case).where(models.Case.tracking_code == code))).scalar_one()
        files = (await s.execute(select(models.Attachment).where(models.Attachment.case_id == case.case_id))).all()
    assert len(files) == 1 and files[0][0].content_type == "image/jpeg" and files[0][0].public
    assert case.latitude == pytest.approx(LATITUDE, abs=1e-4), "the photo's position became the place"

    before = await count_cases(db)
    script = b"#!/bin/sh\nrm -rf /\n" * 10
    refused = await api.post("/file", data=fields, files=[("photos", ("photo.jpg", script, "image/jpeg"))])
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert await count_cases(db) == before, "nothing filed"


async def count_cases(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(models.Case)) or 0)


async def test_pages_name_every_code_and_show_a_deadline_as_its_last_day(api: httpx.AsyncClient, db: Database) -> None:
    """Agency staff and citizens read names, not codes: the category, the task's status, the outcome (in the
    form, on the timeline and on the tracking page), the channel; the notification's own heading is not
    repeated under the entry; a working-day deadline is the day it ends, never 00:00 of the next."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id, code = receipt["case_id"], receipt["tracking_code"]
    for action, body, who in (
        ("screen", {}, OFFICER),
        ("accept", {"category": "roads.pothole", "agencies": ["DOPA"]}, OFFICER),
        ("agency_accept", {}, DOPA),
    ):
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=who)
        assert done.status_code == 200, done.text

    await sign_in(api, db, StaffRole.AGENCY, "DOPA")
    page = (await api.get(f"/case/{case_id}")).text
    assert "ถนนชำรุด หลุมบ่อ" in page and ">roads.pothole<" not in page, "the category by its name"
    assert "(รับเรื่องแล้ว กำลังดำเนินการ)" in page and "(accepted)" not in page, "the task's status by its name"
    assert "ช่องทาง: เว็บไซต์" in page and "channel: web" not in page, "the timeline names the channel"
    assert "label:" not in page, "the notification's heading is not repeated under the timeline entry"
    assert "ประเภท: ถนนชำรุด หลุมบ่อ" in page and "ผู้ร้อง</small>" in page
    assert ">มีมูลบางส่วน</option>" in page and ">partially_upheld</option>" not in page, "outcomes by name"
    due = re.search(r"<dt>กำหนด</dt><dd>([^<]*)</dd>", page)
    assert due and due.group(1).startswith("ภายใน ") and "00:00" not in due.group(1), page[:3000]
    inbox = (await api.get("/agency")).text
    assert "ภายใน " in inbox and " 00:00</td>" not in inbox
    english = (await api.get(f"/case/{case_id}?lang=en")).text
    assert "Damaged roads and potholes" in english and "by end of " in english and "(Accepted, in hand)" in english

    done = await api.post(
        f"/api/v1/cases/{case_id}/actions/respond",
        json={"outcome": "partially_upheld", "response": "ซ่อมไฟแล้วบางส่วน"},
        headers=DOPA,
    )
    assert done.status_code == 200, done.text
    api.cookies.clear()
    track = (await api.get(f"/track/{code}")).text
    assert "ผลการพิจารณา: มีมูลบางส่วน" in track and "partially_upheld" not in track


async def test_the_agency_inbox_pages_through_every_open_task(
    api: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agency with more open tasks than a page reaches all of them (it saw the first hundred, no more)."""
    from api.routes import staff

    monkeypatch.setattr(staff, "INBOX_PAGE", 2)
    mine = set()
    for _ in range(3):
        case_id = (await api.post("/api/v1/complaints", json=complaint())).json()["case_id"]
        for action, body in (("screen", {}), ("accept", {"category": "traffic.public_transport", "agencies": ["SRT"]})):
            done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=OFFICER)
            assert done.status_code == 200, done.text
        mine.add(case_id)

    await sign_in(api, db, StaffRole.AGENCY, "SRT")
    seen: list[str] = []
    page, url = 1, "/agency"
    while True:
        text = (await api.get(url)).text
        assert "การรถไฟแห่งประเทศไทย" in text, "the agency by its name"
        rows = re.findall(r'<tr class="[^"]*" data-case="([^"]+)"', text)
        assert 1 <= len(rows) <= 2
        seen += rows
        assert ('rel="prev"' in text) == (page > 1)
        found = re.search(r'href="(/agency\?page=\d+)" rel="next"', text)
        if found is None:
            break
        page, url = page + 1, found.group(1)
    assert page >= 2 and mine <= set(seen) and len(seen) == len(set(seen)), "every task once"


async def row_on(api: httpx.AsyncClient, path: str, case_id: str, **params: str) -> tuple[str, str, str]:
    """The class and the text of the row showing ``case_id`` on a list page, and the page: read page after page
    (the database is shared with other tests, and on PostgreSQL with earlier runs)."""
    for number in range(1, 200):
        page = (await api.get(path, params={**params, "page": str(number)})).text
        found = re.search(rf'<tr class="([^"]*)" data-case="{case_id}">(.*?)</tr>', page, re.S)
        if found:
            return found.group(1), found.group(2), page
        if "data-case=" not in page:
            break
    raise AssertionError(f"{case_id} is not listed on {path} {params}")


async def test_lists_say_what_each_case_is_and_which_are_at_risk(api: httpx.AsyncClient, db: Database) -> None:
    """The board, the agency's inbox and the queue say what a case is about (urgent, its category, the start of
    its text) and mark the ones due by the end of the next working day: the board showed case numbers alone,
    and nothing between "overdue" and "-"."""
    words = f"ทดสอบ{uuid.uuid4().hex[:6]}"
    urgent = complaint(priority="urgent", description=f"{words} ถนนทรุดเป็นหลุมลึกหน้าโรงเรียน รถล้มทุกวัน")
    case_id = (await api.post("/api/v1/complaints", json=urgent)).json()["case_id"]
    waiting = (await api.post("/api/v1/complaints", json=complaint(description=f"{words} ไฟถนนดับทั้งซอย"))).json()
    await until_filed(api, waiting["tracking_code"])
    for action, body in (("screen", {}), ("accept", {"category": "roads.pothole", "agencies": ["DOPA"]})):
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=OFFICER)
        assert done.status_code == 200, done.text

    await sign_in(api, db, StaffRole.SUPERVISOR)
    _, row, board = await row_on(api, "/board", case_id, category="roads", priority="urgent")
    assert '<span class="badge urgent">เร่งด่วน</span>' in row and "ถนนชำรุด หลุมบ่อ" in row, row
    assert f'<div class="subject">{words} ถนนทรุดเป็นหลุมลึก' in row, "the board says what the case is, as the lists do"
    assert '<option value="roads" selected>' in board, "the category group is offered and kept"
    with pytest.raises(AssertionError, match="is not listed"):
        await row_on(api, "/board", waiting["case_id"], category="roads", status="received")
    # Not screened yet: due by the end of the next working day, so at risk.
    css, row, _ = await row_on(api, "/board", waiting["case_id"], status="received", at_risk="true")
    assert css == "risk" and '<span class="badge risk">ใกล้ครบกำหนด</span>' in row, row
    assert f"{words} ไฟถนนดับทั้งซอย" in row, "a case not yet screened, by the start of its text"

    api.cookies.clear()
    await sign_in(api, db, StaffRole.OFFICER)
    css, row, _ = await row_on(api, "/officer", waiting["case_id"])
    assert f"{words} ไฟถนนดับทั้งซอย" in row and (css, "ใกล้ครบกำหนด" in row) in {("risk", True), ("late", False)}

    api.cookies.clear()
    await sign_in(api, db, StaffRole.AGENCY, "DOPA")
    _, row, _ = await row_on(api, "/agency", case_id)
    assert "ถนนชำรุด หลุมบ่อ" in row and f"{words} ถนนทรุดเป็นหลุมลึก" in row and "badge urgent" in row, row


async def test_the_case_page_says_why_a_case_may_be_a_duplicate(api: httpx.AsyncClient, db: Database) -> None:
    """Every complaint of one complainant showed as a "likely duplicate" of the others, with a score and no
    reason: an officer could not tell a repeat of the same complaint from the same person's other one."""
    first = (await api.post("/api/v1/complaints", json=complaint())).json()
    second = (await api.post("/api/v1/complaints", json=complaint(description="น้ำประปาไม่ไหลมาสามวันแล้ว"))).json()
    await first_in_queue(api, db, second)
    await sign_in(api, db, StaffRole.OFFICER)
    page = (await api.get(f"/case/{second['case_id']}")).text
    found = re.search(rf'<li class="duplicate"><a href="/case/{first["case_id"]}">.*?</li>', page, re.S)
    assert found, page[:3000]
    assert "ผู้ร้องคนเดียวกัน (หมายเลขโทรศัพท์)" in found.group(0) and "ข้อความคล้ายกัน" in found.group(0)
    english = (await api.get(f"/case/{second['case_id']}?lang=en")).text
    assert "same complainant (phone) · " in english and "text similar " in english


async def test_a_list_confirms_what_a_click_did_and_nothing_else(api: httpx.AsyncClient, db: Database) -> None:
    """A one-click action on the queue or the inbox comes back to the list, which says what was done to which
    case; what the address says is shown only when it names an action and a case number."""
    await sign_in(api, db, StaffRole.OFFICER)
    said = (await api.get("/officer", params={"done": "screen", "case": "RT-20261203-ABC123"})).text
    assert '<p class="ok" role="status" id="done">เริ่มตรวจสอบเรื่อง: <a href="/case/RT-20261203-ABC123">' in said
    for done, case in (("teleport", "RT-20261203-ABC123"), ("screen", "<b>RT</b>"), ("screen", ""), ("", "RT-1")):
        page = (await api.get("/officer", params={"done": done, "case": case})).text
        assert 'id="done"' not in page, (done, case)


async def test_the_case_page_offers_centres_sla_classes_and_agencies_by_name(
    api: httpx.AsyncClient, db: Database
) -> None:
    """The receiving centre and the SLA class were text boxes wanting a code from a file staff cannot see, and
    the agencies' list offered bare codes: now each is chosen by its name."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    await sign_in(api, db, StaffRole.SUPERVISOR)
    page = await api.get(f"/case/{receipt['case_id']}")
    assert re.search(r'<select id="reclassify-centre" name="centre" >\s*<option value="">-</option>', page.text)
    assert re.search(r'<option value="DAMRONG-50" >ศูนย์ดำรงธรรมจังหวัดเชียงใหม่</option>', page.text)
    assert re.search(
        r'<select id="reclassify-sla_class"[^>]*>.*?<option value="complex" >ซับซ้อน</option>', page.text, re.S
    )
    assert '<option value="DOPA">กรมการปกครอง</option>' in page.text, "the agencies' list names them"

    done = await api.post(
        f"/case/{receipt['case_id']}/act/reclassify",
        data={"csrf_token": csrf_of(page), "centre": "DAMRONG-50", "reason": "ผู้ร้องติดต่อผ่านศูนย์ดำรงธรรม"},
    )
    assert done.status_code == 303, done.text[:500]
    async with db.sessions() as session:
        case = await session.get(models.Case, receipt["case_id"])
        assert case is not None and case.centre == "DAMRONG-50"


async def test_the_case_page_offers_the_categories_by_name_in_their_groups(
    api: httpx.AsyncClient, db: Database
) -> None:
    """Accepting asked for the category as a code in a text box (the screening's guess filled in, or nothing):
    now it is a choice of the categories by name, in their groups, the guess chosen, and no choice made for
    the officer when there is no guess. A category that does not exist is refused with the field named."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    assert (await api.post(f"/api/v1/cases/{receipt['case_id']}/actions/screen", json={}, headers=OFFICER)).is_success
    await sign_in(api, db, StaffRole.OFFICER)
    page = (await api.get(f"/case/{receipt['case_id']}")).text
    select = re.search(r'<select id="accept-category" name="category" required>(.*?)</select>', page, re.S)
    assert select, page[:3000]
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', select.group(1), re.S)
    roads = dict(groups)["ถนนและทางเท้า"]
    assert '<option value="roads.pothole"' in roads and ">ถนนชำรุด หลุมบ่อ</option>" in roads
    chosen = re.findall(r'<option value="([^"]*)"[^>]*selected[^>]*>', select.group(1))
    assert len(chosen) == 1, "the screening's guess, or the placeholder that asks for a choice"
    assert chosen[0] == "" or chosen[0] in {c for _, body in groups for c in re.findall(r'value="([^"]+)"', body)}

    form = {"csrf_token": csrf_of(await api.get(f"/case/{receipt['case_id']}")), "agencies": "BMA"}
    refused = await api.post(f"/case/{receipt['case_id']}/act/accept", data=form | {"category": "street-lights"})
    said = re.search(r'<div class="error" role="alert">(.*?)</div>', refused.text, re.S)
    assert refused.status_code == 422 and said and "ไม่พบประเภทเรื่อง street-lights" in said.group(1)
    assert "GET /api/v1/categories" in said.group(1) and "agriculture." not in said.group(1), "no list of codes"
    done = await api.post(f"/case/{receipt['case_id']}/act/accept", data=form | {"category": "roads.pothole"})
    assert done.status_code == 303, done.text[:500]
    async with db.sessions() as session:
        case = await session.get(models.Case, receipt["case_id"])
        assert case is not None and case.category == "roads.pothole"
    assert "ถนนชำรุด หลุมบ่อ" in (await api.get(f"/case/{receipt['case_id']}")).text, "the case names its category"


async def test_the_officer_sees_answers_and_reviews_back_with_the_centre(api: httpx.AsyncClient, db: Database) -> None:
    """An agency's answer waits for the centre to check it and close the case, and a review for the centre to
    acknowledge it (3 working days) and answer: the officer's console listed neither. Now the queue names how
    many are back with the centre and lists them with their status; what ends a case is never one click on a
    list (a withdrawal cannot be undone)."""

    async def act(case_id: str, action: str, body: dict[str, Any], who: dict[str, str]) -> None:
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=who)
        assert done.status_code == 200, done.text

    answered, reviewed, waiting = [await file_and_assign(api) for _ in range(3)]
    for receipt in (answered, reviewed):
        await act(receipt["case_id"], "agency_accept", {}, agency("BMA"))
        await act(receipt["case_id"], "respond", {"outcome": "resolved", "response": "ซ่อมแล้ว"}, agency("BMA"))
    await act(reviewed["case_id"], "close", {}, OFFICER)
    await act(reviewed["case_id"], "request_review", {"reason": "ยังไม่ได้ซ่อมจริง"}, OFFICER)
    fresh = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, fresh["tracking_code"])
    await sign_in(api, db, StaffRole.OFFICER)

    queue = (await api.get("/officer")).text
    back = re.search(r'<a href="/officer\?closing=1" data-view="closing">รอตรวจคำตอบและทบทวน \(([\d,]+)\)</a>', queue)
    assert back and int(back.group(1).replace(",", "")) >= 2, queue[:3000]
    _, row, _ = await row_on(api, "/officer", fresh["case_id"])
    assert 'data-action="screen"' in row and 'data-action="withdraw"' not in row, "a withdrawal is not one click"

    _, answer, closing = await row_on(api, "/officer", answered["case_id"], closing="1")
    _, review, _ = await row_on(api, "/officer", reviewed["case_id"], closing="1")
    assert '<td class="status">หน่วยงานตอบกลับแล้ว</td>' in answer
    assert '<td class="status">ขอให้ทบทวนเรื่อง (ขั้นที่ 2)</td>' in review
    for elsewhere in (waiting, fresh):
        with pytest.raises(AssertionError, match="is not listed"):
            await row_on(api, "/officer", elsewhere["case_id"], closing="1")
    assert 'data-action="close"' not in answer, "closing is done on the case page"
    assert f'href="/case/{answered["case_id"]}"' in answer
    whole = re.search(r'<a href="/officer" data-view="all">ทุกเรื่องในคิว \(([\d,]+)\)</a>', closing)
    mine = (await api.get("/officer", params={"mine": "1"})).text
    assert whole and f'data-view="all">ทุกเรื่องในคิว ({whole.group(1)})</a>' in mine, "the whole queue, not mine"
    assert '<strong aria-current="page">เรื่องที่ฉันรับไว้</strong>' in mine


async def test_the_final_answer_of_a_review_is_drafted_from_the_agencys_findings(
    api: httpx.AsyncClient, db: Database
) -> None:
    """The officer answering a review saw empty boxes beside the agency's report and copied it across by hand;
    the outcome's box had "resolved" chosen before anyone chose. Now the findings fill the answer in, and the
    outcome is asked for."""
    receipt = await file_and_assign(api)
    case_id = receipt["case_id"]
    steps: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("agency_accept", {}, agency("BMA")),
        ("respond", {"outcome": "resolved", "response": "เปลี่ยนหลอดแล้ว"}, agency("BMA")),
        ("close", {}, OFFICER),
        ("request_review", {"reason": "ดับอีกภายในสองวัน"}, OFFICER),
        ("acknowledge", {"points": "ไฟดับซ้ำ", "outcome_wanted": "ซ่อมทั้งซอย"}, OFFICER),
        ("report_findings", {"findings": "สายไฟใต้ดินชำรุด", "action_taken": "เปลี่ยนสายทั้งซอย"}, agency("BMA")),
    ]
    for action, body, who in steps:
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=who)
        assert done.status_code == 200, (action, done.text)
    await sign_in(api, db, StaffRole.OFFICER)
    page = (await api.get(f"/case/{case_id}")).text
    assert re.search(r'<textarea id="respond_stage2-response"[^>]*>สายไฟใต้ดินชำรุด</textarea>', page), page[:4000]
    assert re.search(r'<textarea id="respond_stage2-action_taken"[^>]*>เปลี่ยนสายทั้งซอย</textarea>', page)
    assert re.search(r'<textarea id="respond_stage2-root_cause"[^>]*></textarea>', page), "nothing reported, nothing"
    outcome = re.search(r'<select id="respond_stage2-outcome" name="outcome" required>(.*?)</select>', page, re.S)
    assert outcome and '<option value="" selected disabled>เลือก</option>' in outcome.group(1)
    assert outcome.group(1).count("selected") == 1, "no outcome is chosen for the officer"

    final = {"outcome": "resolved", "response": "สายไฟใต้ดินชำรุด เปลี่ยนแล้ว"}
    done = await api.post(f"/api/v1/cases/{case_id}/actions/respond_stage2", json=final, headers=OFFICER)
    assert done.status_code == 200, done.text
    # The right to go to the Ombudsman, with its last day as a person writes it (it read "2027-12-03").
    answer = (await api.get(f"/api/v1/track/{receipt['tracking_code']}")).json()["timeline"][-1]
    until = date.fromisoformat(answer["ombudsman_until"])
    assert answer["notice_th"].endswith(f"ได้ภายในวันที่ {format_date(until, 'th')}"), answer["notice_th"]
    assert answer["notice_en"].endswith(f"until {format_date(until, 'en')}."), answer["notice_en"]


async def test_the_board_lists_the_extension_requests_waiting_for_a_supervisor(
    api: httpx.AsyncClient, db: Database
) -> None:
    """An agency's request for more time waited for a supervisor who could learn of it only from a message:
    the board now lists the requests that wait, with the agency, the days asked and the deadline they would
    move, until they are answered."""
    receipt = await file_and_assign(api)
    case_id = receipt["case_id"]
    gone = (await api.post("/api/v1/complaints", json=complaint())).json()  # withdrawn: not an open case
    assert (await api.post(f"/api/v1/track/{gone['tracking_code']}/actions/withdraw", json={})).status_code == 200
    for action, body in (("agency_accept", {}), ("request_extension", {"reason": "รอผู้รับจ้าง", "working_days": 5})):
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=agency("BMA"))
        assert done.status_code == 200, done.text
    await sign_in(api, db, StaffRole.SUPERVISOR)
    board = (await api.get("/board")).text
    # The page says what it lists (every case; it was titled "overdue and at risk"), with those two one click away.
    assert "<h1>กระดานติดตามเรื่อง</h1>" in board and '<strong aria-current="page">ทุกเรื่อง</strong>' in board
    assert '<a href="/board?overdue=true" data-view="overdue=true">เกินกำหนด</a>' in board
    overdue = (await api.get("/board", params={"overdue": "true"})).text
    assert '<strong aria-current="page">เกินกำหนด</strong>' in overdue and 'data-view="all">ทุกเรื่อง</a>' in overdue
    # The cases still in hand, one click away too, as a filter of the form as well.
    assert '<a href="/board?open_only=true" data-view="open_only=true">ยังไม่ยุติ</a>' in board
    open_only = (await api.get("/board", params={"open_only": "true"})).text
    assert '<strong aria-current="page">ยังไม่ยุติ</strong>' in open_only
    assert '<label for="f-open_only">เฉพาะเรื่องที่ยังไม่ยุติ</label>' in open_only
    # The page lists what the API's open_only lists (this module's database holds other tests' cases too),
    # which leaves out the case withdrawn above.
    open_only = (await api.get("/board", params={"open_only": "true"})).text
    listed = (await api.get("/api/v1/cases", params={"open_only": "true"}, headers=SUPERVISOR)).json()["total"]
    every = (await api.get("/api/v1/cases", headers=SUPERVISOR)).json()["total"]
    assert listed < every and f'<strong id="total">{listed:,}</strong>' in open_only
    ended = (await api.get("/board", params={"open_only": "false"})).text
    assert f'data-case="{case_id}">' not in ended  # its row (the request's row names an agency too)
    section = re.search(
        r'<section class="card" aria-labelledby="req-h" id="extension-requests">(.*?)</section>', board, re.S
    )
    assert section and "คำขอขยายเวลาที่รอท่านพิจารณา" in section.group(1), board[:3000]
    row = re.search(rf'<tr data-case="{case_id}" data-agency="BMA">(.*?)</tr>', section.group(1), re.S)
    assert row and "<td>กรุงเทพมหานคร</td><td>5 วันทำการ</td>" in row.group(1)
    assert "<small>ไฟถนนในซอยดับมาสองสัปดาห์" in row.group(1), "what the case is about"
    assert f'href="/case/{case_id}#form-approve_extension"' in row.group(1)

    approved = await api.post(
        f"/api/v1/cases/{case_id}/actions/approve_extension", json={"agency": "BMA"}, headers=SUPERVISOR
    )
    assert approved.status_code == 200, approved.text
    assert f'<tr data-case="{case_id}" data-agency="BMA">' not in (await api.get("/board")).text, "answered: gone"


async def test_the_extension_requests_are_read_from_their_own_index(db: Database) -> None:
    """The requests are a handful among every task: read in order from the index that holds only them, not
    every open task through the status index and sorted."""
    plan = await query_plan(db, queries.extension_requests_statement())
    assert "ix_agency_tasks_extension_pending" in plan and "ix_agency_tasks_status" not in plan, plan
    # SQLite reads them in order; PostgreSQL, planning a test's tiny table, may take a bitmap of the same index
    # and sort its few rows.
    assert "TEMP B-TREE" not in plan, plan


async def test_the_status_page_counts_open_cases_in_the_process_order_with_their_boards(
    api: httpx.AsyncClient, db: Database
) -> None:
    """The open cases were listed by state code (assignment, awaiting_info, received, ...) under "Open": now in
    the order a case goes through them, each a link to its board for a supervisor, with the total."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    await until_filed(api, receipt["tracking_code"])
    await sign_in(api, db, StaffRole.SUPERVISOR)
    page = (await api.get("/status")).text
    states = re.findall(r'<tr data-state="([a-z0-9_]+)">', page)
    process = [s.value for s in State]
    assert states and states == sorted(states, key=process.index), states
    assert '<a href="/board?status=received">รับเรื่องแล้ว</a>' in page
    assert "เรื่องที่ยังไม่ยุติ ตามขั้นตอน" in page and "<td>ฐานข้อมูล</td>" in page
    counts = [
        int(n.replace(",", "")) for n in re.findall(r'<tr data-state="[a-z0-9_]+"><td>.*?</td><td>([\d,]+)</td>', page)
    ]
    total = re.search(r'<tfoot><tr><th scope="row">ทั้งหมด</th><td>([\d,]+)</td>', page)
    assert total and int(total.group(1).replace(",", "")) == sum(counts) >= 1


async def test_every_link_a_message_carries_opens_its_page(api: httpx.AsyncClient, db: Database) -> None:
    """Staff messages linked /cases/<id> and the closing message /track/<code>/rate: both answered 404. Each
    link now opens its page, and the links already sent redirect there."""
    from delivery.dispatcher import public_links

    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id, code = receipt["case_id"], receipt["tracking_code"]
    await until_filed(api, code)
    links = public_links("http://rongtuk/", tracking_code=code, case_id=case_id)
    assert links["survey"].endswith("#form-rate")
    for url in links.values():
        path = url.removeprefix("http://rongtuk").split("#")[0]
        opened = await api.get(path)
        assert opened.status_code in {200, 303}, (url, opened.status_code)
        if opened.status_code == 303:  # the staff case page, for someone not signed in
            assert opened.headers["location"] == f"/login?next=/case/{case_id}"
    old = await api.get(f"/cases/{case_id}")
    assert old.status_code == 303 and old.headers["location"] == f"/case/{case_id}"
    rate = await api.get(f"/track/{code}/rate")
    assert rate.status_code == 303 and rate.headers["location"] == f"/track/{code}#form-rate"
    await sign_in(api, db, StaffRole.OFFICER)
    assert (await api.get(links["case"].removeprefix("http://rongtuk"))).status_code == 200


async def test_staff_read_every_steps_messages_on_a_page_of_their_own(api: httpx.AsyncClient, db: Database) -> None:
    """The web copy of each staff message (new case, due soon, overdue, escalated, ...) was only in the JSON
    API: agency staff and the centre's staff read them on /messages, newest first, each linked to its case."""
    receipt = (await api.post("/api/v1/complaints", json=complaint())).json()
    case_id = receipt["case_id"]
    for action, body in (("screen", {}), ("accept", {"category": "roads.pothole", "agencies": ["DOH"]})):
        done = await api.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=OFFICER)
        assert done.status_code == 200, done.text

    await sign_in(api, db, StaffRole.AGENCY, "DOH")
    page = await api.get("/messages")
    assert page.status_code == 200 and '<a href="/messages">ข้อความ</a>' in page.text, "in the menu"
    mine = re.search(
        rf'<article class="message" data-case="{case_id}" data-event="accept">(.*?)</article>', page.text, re.S
    )
    assert mine and f'<a href="/case/{case_id}">' in mine.group(1) and "กรมทางหลวง" in mine.group(1), page.text[:3000]
    english = (await api.get("/messages", params={"lang": "en"})).text
    assert "Messages" in english and f"[Rongtuk] new case {case_id}" in english
    api.cookies.clear()
    await sign_in(api, db, StaffRole.AUDITOR)
    assert (await api.get("/messages")).status_code == 403
